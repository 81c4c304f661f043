import type { Kysely } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import type { Db } from '../db/database.ts';
import type { CustomerRow, Database } from '../db/schema.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { LIVE_STATUSES } from './subscription-status.ts';

/**
 * Closing and reopening a customer (BillaBear's disable / enable; PRODUCT §14 archival): a closed
 * customer (`closed_at` set) gets no new invoice, subscription or charge by any path — manual
 * invoices and their finalization, subscriptions, renewals, proration and usage invoices (all
 * through `insertInvoice`), manual charges, the collection sweep and dunning retries (all through
 * `startCharge`; the sweep does not even claim their invoices). Everything already there stays and
 * reads as before; money still coming in (a webhook settling a charge already sent, an offline
 * payment, a refund) is recorded as usual. Reopening lets the OPEN invoices whose `charge_at` has
 * come be collected again.
 */

/**
 * What invoicing reads of its customer: where they are taxed (`address_country`, `address_state`,
 * `tax_exempt`), their invoice number prefix and payment terms (days).
 */
export type BilledCustomer = Pick<
  CustomerRow,
  'id' | 'address_country' | 'address_state' | 'tax_exempt' | 'invoice_prefix' | 'payment_terms_days'
>;

/**
 * Refuses new billing for a closed customer. Reads the customer `FOR KEY SHARE` — the lock inserting
 * their invoice or transaction takes anyway (its foreign key), which conflicts with `closeCustomer`'s
 * `FOR UPDATE` but not with the `FOR NO KEY UPDATE` of their credit (`lockCustomerCredit`), so two
 * invoices of one customer never wait on each other here: a concurrent close waits for this unit of
 * work, and a close that committed first is seen. Every change of a customer row locks it `FOR
 * UPDATE` first (close, reopen, `updateCustomer`), so the row returned stays as it is until the
 * transaction ends.
 * @returns what invoicing reads of the customer (`BilledCustomer`)
 * @throws NotFoundError when there is no customer `customerId`; ConflictError `customer_closed`
 */
export async function assertCustomerOpen(trx: Kysely<Database>, customerId: string): Promise<BilledCustomer> {
  const row = await trx
    .selectFrom('customers')
    .select([
      'id',
      'closed_at',
      'address_country',
      'address_state',
      'tax_exempt',
      'invoice_prefix',
      'payment_terms_days',
    ])
    .where('id', '=', customerId)
    .forKeyShare()
    .executeTakeFirst();
  if (!row) throw new NotFoundError('customer', customerId);
  const { closed_at, ...customer } = row;
  if (closed_at !== null) {
    throw new ConflictError(
      'customer_closed',
      `customer ${customerId} is closed: reopen it (POST /v1/customers/${customerId}/reopen) to bill or charge it`,
    );
  }
  return customer;
}

/** An open customer read at most once (`openCustomerOnce`). */
export type OpenCustomer = () => Promise<BilledCustomer>;

/**
 * `assertCustomerOpen` of `customerId` done at the first call only, in `trx`: later calls return the
 * same row. Its `FOR KEY SHARE` lock, held until the transaction ends, keeps the row as it was read
 * (see `assertCustomerOpen`), so the invoices of one unit of work (a renewal's) read their customer
 * once and still see what a read of their own would.
 */
export function openCustomerOnce(trx: Kysely<Database>, customerId: string): OpenCustomer {
  let read: BilledCustomer | undefined;
  return async () => {
    read ??= await assertCustomerOpen(trx, customerId);
    return read;
  };
}

/**
 * Closes customer `id`: sets `closed_at` and logs `customer.closed`. Refused while a subscription
 * of theirs is live (IN_TRIAL, ACTIVE, PAST_DUE or SUSPENDED), as Billby's Close Account ("you may
 * only close accounts that have no live subscriptions", seeds/001): cancelling it is a decision about
 * money (a final usage invoice, what to refund) that closing must not take silently. OPEN invoices
 * stay OPEN and owed; they are not charged while the customer is closed.
 * @throws NotFoundError; ConflictError `customer_closed` (already closed), `customer_has_subscriptions`
 */
export async function closeCustomer(db: Db, actor: Actor, id: string, now: Date): Promise<CustomerRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const customer = await lockCustomer(work.trx, id);
    if (customer.closed_at !== null)
      throw new ConflictError('customer_closed', `customer ${id} is already closed`);
    const live = await work.trx
      .selectFrom('subscriptions')
      .select('id')
      .where('customer_id', '=', id)
      .where('status', 'in', LIVE_STATUSES)
      .orderBy('id')
      .execute();
    if (live.length) {
      throw new ConflictError(
        'customer_has_subscriptions',
        `customer ${id} has live subscriptions (${live.map((s) => s.id).join(', ')}): cancel them before closing the customer`,
      );
    }
    const closed = await work.trx
      .updateTable('customers')
      .set({ closed_at: now, updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'customer',
      resourceId: id,
      action: 'customer.closed',
      customerId: id,
      data: { closed_at: now },
    });
    return closed;
  });
}

/**
 * Reopens closed customer `id`: clears `closed_at` and logs `customer.reopened`.
 * @throws NotFoundError; ConflictError `customer_not_closed`
 */
export async function reopenCustomer(db: Db, actor: Actor, id: string, now: Date): Promise<CustomerRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const customer = await lockCustomer(work.trx, id);
    if (customer.closed_at === null)
      throw new ConflictError('customer_not_closed', `customer ${id} is not closed`);
    const reopened = await work.trx
      .updateTable('customers')
      .set({ closed_at: null, updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'customer',
      resourceId: id,
      action: 'customer.reopened',
      customerId: id,
      data: { closed_at: customer.closed_at },
    });
    return reopened;
  });
}

async function lockCustomer(trx: Kysely<Database>, id: string): Promise<CustomerRow> {
  const row = await trx
    .selectFrom('customers')
    .selectAll()
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new NotFoundError('customer', id);
  return row;
}
