import { recordActivity } from '../activities/activities.ts';
import { changedFields } from '../activities/changes.ts';
import type { Db } from '../db/database.ts';
import type { PaymentMethodRow } from '../db/schema.ts';
import { ConflictError } from '../errors.ts';
import type { CardDetails } from '../gateways/types.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { getPaymentMethod } from './customers.ts';
import { LIVE_STATUSES } from './subscription-status.ts';

/**
 * Changing and detaching stored payment methods (the seeds' "update payment details" and "delete
 * payment details"), and the card details gateways report. A payment method is never deleted: its
 * charges, refunds and disputes name it. Detached (`detached_at`), it is never charged again.
 */

/**
 * What may change on a payment method: `default: true` makes it the customer's only default;
 * `gatewayToken` / `gatewayCustomerId` point it at another stored card of the same gateway and
 * account (the gateway replaced the card, e.g. a new card number or an account updater).
 */
export interface PaymentMethodUpdate {
  default?: true;
  gatewayToken?: string;
  gatewayCustomerId?: string | null;
}

/**
 * Updates payment method `id` with its customer row locked (so two updates never leave two defaults)
 * and logs `payment_method.updated` with the changed fields (the token is named, never logged). A new
 * token clears the card details, which described the old card, until the gateway reports the new
 * one's. Nothing changing: nothing is written or logged.
 * @throws NotFoundError when there is no payment method `id`
 * @throws ConflictError `payment_method_detached`; `charge_in_progress` when the token would change
 *   while a charge of this method is pending or unknown (its status check repeats the request with
 *   the token it was sent with: payments/charges.ts `chargeRequestOf`)
 */
export async function updatePaymentMethod(
  db: Db,
  actor: Actor,
  id: string,
  update: PaymentMethodUpdate,
): Promise<PaymentMethodRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const current = await lockWithCustomer(work, id);
    const changes = changedFields(current, {
      is_default: update.default,
      gateway_token: update.gatewayToken,
      gateway_customer_id: update.gatewayCustomerId,
    });
    if (Object.keys(changes).length === 0) return current;
    if (current.detached_at !== null)
      throw new ConflictError('payment_method_detached', `payment method ${id} is detached`);
    if (changes.gateway_token) await assertNoChargeInFlight(work, id);
    let previous: string | null = null;
    if (changes.is_default) {
      const cleared = await work.trx
        .updateTable('payment_methods')
        .set({ is_default: false, updated_at: new Date() })
        .where('customer_id', '=', current.customer_id)
        .where('is_default', '=', true)
        .returning('id')
        .executeTakeFirst();
      previous = cleared?.id ?? null;
    }
    const updated = await work.trx
      .updateTable('payment_methods')
      .set({
        ...(changes.is_default ? { is_default: true } : {}),
        ...(changes.gateway_token
          ? {
              gateway_token: update.gatewayToken,
              card_brand: null,
              card_last4: null,
              card_exp_month: null,
              card_exp_year: null,
            }
          : {}),
        ...(changes.gateway_customer_id ? { gateway_customer_id: update.gatewayCustomerId } : {}),
        updated_at: new Date(),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'payment_method',
      resourceId: id,
      action: 'payment_method.updated',
      customerId: current.customer_id,
      data: {
        ...(changes.is_default ? { default: { from: false, to: true }, previous_default: previous } : {}),
        ...(changes.gateway_token ? { gateway_token: 'replaced' } : {}),
        ...(changes.gateway_customer_id ? { gateway_customer_id: changes.gateway_customer_id } : {}),
      },
    });
    return updated;
  });
}

/**
 * Detaches payment method `id`: sets `detached_at`, clears `default` (no other method is made the
 * default: which card to charge is the customer's choice) and logs `payment_method.detached`. The
 * row stays, with the history of its charges; a charge already in flight is still settled by its
 * webhook or status check. Refused while it pays for a live subscription (IN_TRIAL, ACTIVE, PAST_DUE,
 * SUSPENDED), named on it or, as the customer's default, for one naming none: as at Stripe, a card
 * that still pays a subscription is replaced first (`POST /v1/subscriptions/:id {payment_method}`
 * or another default), so no renewal fails for want of a card. Detached already: returned unchanged.
 * @throws NotFoundError; ConflictError `payment_method_in_use` (naming the subscriptions)
 */
export async function detachPaymentMethod(
  db: Db,
  actor: Actor,
  id: string,
  now: Date,
): Promise<PaymentMethodRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const method = await lockWithCustomer(work, id);
    if (method.detached_at !== null) return method;
    const paying = await work.trx
      .selectFrom('subscriptions')
      .select('id')
      .where('customer_id', '=', method.customer_id)
      .where('status', 'in', LIVE_STATUSES)
      .where((eb) =>
        method.is_default
          ? eb.or([eb('payment_method_id', '=', id), eb('payment_method_id', 'is', null)])
          : eb('payment_method_id', '=', id),
      )
      .orderBy('id')
      .execute();
    if (paying.length) {
      throw new ConflictError(
        'payment_method_in_use',
        `payment method ${id} pays for live subscriptions (${paying.map((s) => s.id).join(', ')}): ` +
          'give them another payment method (or make another one the default) first',
      );
    }
    const detached = await work.trx
      .updateTable('payment_methods')
      .set({ detached_at: now, is_default: false, updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'payment_method',
      resourceId: id,
      action: 'payment_method.detached',
      customerId: method.customer_id,
      data: { was_default: method.is_default },
    });
    return detached;
  });
}

/**
 * Stores the card details a gateway reported on a charge of payment method `id` (only the parts it
 * reported; null parts are left as they were). Logs nothing: it is the gateway's description of the
 * card, not a change anyone made.
 */
export async function recordCardDetails(work: UnitOfWork, id: string, card: CardDetails): Promise<void> {
  const set = {
    ...(card.brand !== null ? { card_brand: card.brand } : {}),
    ...(card.last4 !== null ? { card_last4: card.last4 } : {}),
    ...(card.expMonth !== null ? { card_exp_month: card.expMonth } : {}),
    ...(card.expYear !== null ? { card_exp_year: card.expYear } : {}),
  };
  if (Object.keys(set).length === 0) return;
  await work.trx.updateTable('payment_methods').set(set).where('id', '=', id).execute();
}

/** Locks the customer of payment method `id`, then reads the method. @throws NotFoundError */
async function lockWithCustomer(work: UnitOfWork, id: string): Promise<PaymentMethodRow> {
  const method = await getPaymentMethod(work.trx, id);
  await work.trx
    .selectFrom('customers')
    .select('id')
    .where('id', '=', method.customer_id)
    .forUpdate()
    .execute();
  return getPaymentMethod(work.trx, id);
}

async function assertNoChargeInFlight(work: UnitOfWork, id: string): Promise<void> {
  const inFlight = await work.trx
    .selectFrom('transactions')
    .select(['id', 'status'])
    .where('payment_method_id', '=', id)
    .where('status', 'in', ['pending', 'unknown'])
    .executeTakeFirst();
  if (inFlight) {
    throw new ConflictError(
      'charge_in_progress',
      `payment method ${id} has charge ${inFlight.id} still ${inFlight.status}: its token cannot change until it settles`,
    );
  }
}
