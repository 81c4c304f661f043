import type { Db } from '../db/database.ts';
import type { UnitOfWork } from '../ledger/unit-of-work.ts';

/**
 * An invoice's charge schedule — `charge_at` (when the collection sweep charges it next, null for
 * none), `payment_attempts` and `dunning_started_at` — written here, by billing (the invoices'
 * owner), on behalf of the charge scheduler in payments/ (collection.ts, dunning.ts, charges.ts),
 * which decides when.
 */

/**
 * Locks up to `limit` OPEN invoices whose `charge_at` has come, of customers not closed
 * (billing/customer-status.ts: theirs wait until reopened), and not of a period after the current
 * one of a SUSPENDED subscription (a settled term's periods invoiced ahead: not served while it is
 * suspended, they wait, still owed, until it is reactivated, which voids the unpaid ones of the
 * periods wholly missed meanwhile, or cancelled, which voids them all)
 * (`FOR UPDATE SKIP LOCKED`, so
 * concurrent sweeps take disjoint sets) and moves their `charge_at` to `lease`, in one transaction.
 * @returns the claimed invoice ids, earliest due first
 */
export function claimInvoicesDue(db: Db, now: Date, lease: Date, limit: number): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    const due = await trx
      .selectFrom('invoices')
      .select('id')
      .where('status', '=', 'OPEN')
      .where('charge_at', '<=', now)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('customers')
              .select('customers.id')
              .whereRef('customers.id', '=', 'invoices.customer_id')
              .where('customers.closed_at', 'is not', null),
          ),
        ),
      )
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('subscriptions')
              .select('subscriptions.id')
              .whereRef('subscriptions.id', '=', 'invoices.subscription_id')
              .where('subscriptions.status', '=', 'SUSPENDED')
              .where((eb) =>
                eb(
                  'invoices.period_index',
                  '>',
                  eb.fn.coalesce('subscriptions.current_period_index', eb.lit(-1)),
                ),
              ),
          ),
        ),
      )
      .orderBy('charge_at')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute();
    const ids = due.map((row) => row.id);
    if (ids.length) {
      await trx.updateTable('invoices').set({ charge_at: lease }).where('id', 'in', ids).execute();
    }
    return ids;
  });
}

/** Takes the invoice off the schedule (`charge_at` null) if it still carries the sweep's `lease`. */
export async function releaseChargeLease(db: Db, invoiceId: string, lease: Date): Promise<void> {
  await db
    .updateTable('invoices')
    .set({ charge_at: null })
    .where('id', '=', invoiceId)
    .where('charge_at', '=', lease)
    .execute();
}

/** Takes a locked invoice off the schedule (`charge_at` null) inside `work`. */
export async function unscheduleCharge(work: UnitOfWork, invoiceId: string, now: Date): Promise<void> {
  await work.trx
    .updateTable('invoices')
    .set({ charge_at: null, updated_at: now })
    .where('id', '=', invoiceId)
    .execute();
}

/**
 * Puts a locked OPEN invoice back on the schedule inside `work`: the collection sweep charges it from
 * `at` (`charge_at`), its `payment_attempts` and `dunning_started_at` kept, so dunning goes on from
 * where it was (an invoice whose retries were used up is suspended or cancelled on its next failure).
 */
export async function rescheduleCharge(work: UnitOfWork, invoiceId: string, at: Date): Promise<void> {
  await work.trx
    .updateTable('invoices')
    .set({ charge_at: at, updated_at: at })
    .where('id', '=', invoiceId)
    .where('status', '=', 'OPEN')
    .execute();
}

/**
 * Records a failed automatic collection of a locked invoice inside `work`: its attempt count, when
 * dunning started and the next charge (`null`: no more retries).
 */
export async function recordFailedCollection(
  work: UnitOfWork,
  invoiceId: string,
  step: { attempts: number; dunningStartedAt: Date; nextChargeAt: Date | null },
  now: Date,
): Promise<void> {
  await work.trx
    .updateTable('invoices')
    .set({
      payment_attempts: step.attempts,
      dunning_started_at: step.dunningStartedAt,
      charge_at: step.nextChargeAt,
      updated_at: now,
    })
    .where('id', '=', invoiceId)
    .execute();
}
