import type { Kysely } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { CustomerRow, Database, PaymentMethodRow } from '../db/schema.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import type { GatewayName } from '../gateways/types.ts';
import { joinLedgerWriters } from '../ledger/journal.ts';

/** A new customer. `externalId` is the caller's own id for it, unique when given. */
export interface NewCustomer {
  email: string;
  name?: string;
  externalId?: string;
  metadata?: Record<string, string>;
}

/**
 * Creates a customer.
 * @throws ConflictError `external_id_taken` when another customer has the same external id
 */
export async function createCustomer(db: Db, input: NewCustomer): Promise<CustomerRow> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('customers')
      .values({
        id: newId('cus'),
        email: input.email,
        name: input.name ?? null,
        external_id: input.externalId ?? null,
        metadata: JSON.stringify(input.metadata ?? {}),
      })
      .onConflict((oc) => oc.column('external_id').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row)
      throw new ConflictError('external_id_taken', `a customer with external_id ${input.externalId} exists`);
    await recordActivity(trx, {
      resourceType: 'customer',
      resourceId: row.id,
      action: 'customer.created',
      customerId: row.id,
      data: { email: row.email, external_id: row.external_id },
    });
    return row;
  });
}

/** @throws NotFoundError when there is no customer `id` */
export async function getCustomer(db: Db, id: string): Promise<CustomerRow> {
  const row = await db.selectFrom('customers').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('customer', id);
  return row;
}

/** A stored payment method: a gateway token, never card data. */
export interface NewPaymentMethod {
  customerId: string;
  gateway: GatewayName;
  /** The gateway's stored-card token (Stripe `pm_…`, PayPal vault id, …). */
  gatewayToken: string;
  gatewayCustomerId?: string;
  isDefault?: boolean;
}

/**
 * Stores a payment method for a customer. The first one, or one marked default, becomes the
 * customer's default.
 * @throws NotFoundError when the customer does not exist
 */
export async function createPaymentMethod(db: Db, input: NewPaymentMethod): Promise<PaymentMethodRow> {
  return db.transaction().execute(async (trx) => {
    await joinLedgerWriters(trx);
    const customer = await trx
      .selectFrom('customers')
      .select('id')
      .where('id', '=', input.customerId)
      .forUpdate()
      .executeTakeFirst();
    if (!customer) throw new NotFoundError('customer', input.customerId);
    const existingDefault = await trx
      .selectFrom('payment_methods')
      .select('id')
      .where('customer_id', '=', input.customerId)
      .where('is_default', '=', true)
      .executeTakeFirst();
    const makeDefault = input.isDefault === true || !existingDefault;
    if (makeDefault && existingDefault) {
      await trx
        .updateTable('payment_methods')
        .set({ is_default: false })
        .where('id', '=', existingDefault.id)
        .execute();
    }
    const method = await trx
      .insertInto('payment_methods')
      .values({
        id: newId('pm'),
        customer_id: input.customerId,
        gateway: input.gateway,
        gateway_token: input.gatewayToken,
        gateway_customer_id: input.gatewayCustomerId ?? null,
        is_default: makeDefault,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(trx, {
      resourceType: 'payment_method',
      resourceId: method.id,
      action: 'payment_method.created',
      customerId: method.customer_id,
      data: { gateway: method.gateway, default: method.is_default },
    });
    return method;
  });
}

/**
 * The payment method to charge for a customer: `id` when given (it must belong to the customer),
 * otherwise the customer's default.
 * @throws NotFoundError when there is none
 */
export async function paymentMethodFor(db: Db, customerId: string, id?: string): Promise<PaymentMethodRow> {
  let query = db.selectFrom('payment_methods').selectAll().where('customer_id', '=', customerId);
  query = id ? query.where('id', '=', id) : query.where('is_default', '=', true);
  const row = await query.executeTakeFirst();
  if (!row) throw new NotFoundError('payment_method', id ?? `(default of ${customerId})`);
  return row;
}

/**
 * The stored payment method `id`, as the gateway call needs it.
 * @throws NotFoundError when there is none
 */
export async function getPaymentMethod(db: Kysely<Database>, id: string): Promise<PaymentMethodRow> {
  const row = await db.selectFrom('payment_methods').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('payment_method', id);
  return row;
}

/** A payment method as adapters take it: the gateway's token and customer id. */
export function gatewayPaymentMethod(method: PaymentMethodRow): { token: string; customerId: string | null } {
  return { token: method.gateway_token, customerId: method.gateway_customer_id };
}
