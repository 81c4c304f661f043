import type { Db } from '../db/database.ts';
import type { CustomerRow, PaymentMethodRow } from '../db/schema.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { insertCustomer, insertPaymentMethod, type NewCustomer, type NewPaymentMethod } from './customers.ts';
import { insertSubscription, type NewSubscription, type SubscriptionChange } from './subscriptions.ts';

/**
 * A signup (Billby's "signup: account + subscription in one call"): a new customer, the gateway
 * token of their payment method (it becomes their default) and the subscription it pays for.
 */
export interface NewSignup {
  customer: NewCustomer;
  paymentMethod: Omit<NewPaymentMethod, 'customerId' | 'isDefault'>;
  subscription: Omit<NewSubscription, 'customerId' | 'paymentMethodId'>;
}

/** What a signup created; `subscription.invoices` holds the first period's invoice when it starts now. */
export interface Signup {
  customer: CustomerRow;
  paymentMethod: PaymentMethodRow;
  subscription: SubscriptionChange;
}

/**
 * Creates the customer, their payment method (default) and the subscription charging it, in one
 * unit of work: each logs its usual activity (`customer.created`, `payment_method.created`,
 * `subscription.created`, …), and any refusal — a taken external id, an unknown or disabled gateway
 * account, an inactive plan, a coupon that cannot be redeemed, a start in the past — rolls all of it
 * back. Nothing here calls a gateway: the first invoice is charged by the collection sweep like any
 * subscription's (`charge_at` now). Repeats with the same Idempotency-Key are answered by the HTTP
 * layer's store (src/http/idempotency.ts).
 * @throws as `createCustomer`, `createPaymentMethod` and `createSubscription`
 */
export async function signUp(db: Db, actor: Actor, input: NewSignup, now: Date): Promise<Signup> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const customer = await insertCustomer(work, input.customer);
    const paymentMethod = await insertPaymentMethod(work, {
      ...input.paymentMethod,
      customerId: customer.id,
      isDefault: true,
    });
    const subscription = await insertSubscription(
      work,
      { ...input.subscription, customerId: customer.id, paymentMethodId: paymentMethod.id },
      now,
    );
    return { customer, paymentMethod, subscription };
  });
}
