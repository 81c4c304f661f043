import { sql } from 'kysely';
import { clientForAccount, type GatewayClients } from '../accounts/clients.ts';
import { DEFAULT_RENEWAL_POLICY, type RenewalPolicy } from '../billing/renewal.ts';
import type { Db } from '../db/database.ts';
import type { TransactionRow } from '../db/schema.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import { attemptCreatedAt } from '../gateways/attempts.ts';
import { capabilitiesOf } from '../gateways/registry.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { chargeRequestOf, chargeResultOf } from './charges.ts';
import { type OnOverpaid, recordChargeResult } from './transactions.ts';

/** How long after an attempt a gateway's "no such charge" is believed: its index may trail writes. */
const NOT_FOUND_IS_FINAL_AFTER_MS = 10 * 60 * 1000;

/**
 * The longest a charge's own call may last, milliseconds, when each request to the gateway times out
 * after `gatewayTimeoutMs` (`GATEWAY_TIMEOUT_MS`): PayPal's and SecurePay's clients fetch an OAuth
 * token, make the call, and after a 401 do both once more.
 */
export function longestChargeExchangeMs(gatewayTimeoutMs: number): number {
  return 4 * gatewayTimeoutMs;
}

/**
 * Whether a status check must leave `transaction` alone at `now` because its own charge call may
 * still be running: on a gateway whose status check repeats the charge (its capabilities'
 * `statusCheck` `repeat`: PayPal without a capture id, SecurePay), a `pending` attempt the gateway has
 * not named yet, or an `unknown` one (its call timed out on our side, which does not stop the
 * gateway's work on it), younger (from when its call could start: `callCouldStart`) than the schedule's
 * first check (`schedule[0]` seconds) or than `inFlightMs`
 * (`longestChargeExchangeMs`), whichever is longer. A check then would send the same payment a second
 * time while the first is still at the gateway (a slow gateway, or `billhook reconcile` run the moment
 * it is slow); a later sweep checks it once that age is reached. A gateway checked by query is asked
 * as always (a question, not a payment).
 */
export function mayStillBeInFlight(
  transaction: TransactionRow,
  schedule: readonly number[],
  inFlightMs: number,
  now: Date,
): boolean {
  const wait = Math.max((schedule[0] ?? 0) * 1000, inFlightMs);
  return (
    capabilitiesOf(transaction.gateway).statusCheck === 'repeat' &&
    (transaction.status === 'pending' || transaction.status === 'unknown') &&
    transaction.gateway_transaction_id === null &&
    now.getTime() - callCouldStart(transaction).getTime() < wait
  );
}

/**
 * The earliest its charge call could have started: when its id was made (`attemptCreatedAt`), after
 * `startCharge` took the invoice's lock, rather than its row's `created_at`, the start of that
 * transaction, which a wait for the lock may put long before (a call after a 69 ms wait was repeated
 * 119.999 s after it could start). Its `created_at` for an id without a time.
 */
function callCouldStart(transaction: TransactionRow): Date {
  return attemptCreatedAt(transaction.id) ?? transaction.created_at;
}

/** Two-key advisory lock namespace of status checks ("poll" as a 32-bit constant), one key per attempt. */
const STATUS_CHECK_LOCK = 0x706f6c6c;

/**
 * Runs `check` unless another status check of attempt `transactionId` (`txn_…`) is running: two
 * sweeps that overlap (one slower than the minute between them, or one per worker process) or
 * `billhook reconcile` beside the sweep. Held by a transaction of its own (a transaction-scoped
 * advisory lock, no row) for the length of the check, its gateway call included, so a check that
 * repeats the charge (SecurePay, PayPal without a capture id) never sends it twice at once; the
 * check itself writes through connections of its own (the pool needs two).
 * @returns what `check` returns, or undefined when another check holds the attempt (a later sweep
 * checks it)
 */
export function checkingAlone<T>(
  db: Db,
  transactionId: string,
  check: () => Promise<T>,
): Promise<T | undefined> {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ alone: boolean }>`
      SELECT pg_try_advisory_xact_lock(${STATUS_CHECK_LOCK}, hashtext(${transactionId})) AS alone`.execute(
      trx,
    );
    return rows[0]?.alone ? check() : undefined;
  });
}

/** What one status check did. `exhausted` means the schedule is used up and the outcome is still open. */
export type PollResult = { transactionId: string; status: TransactionRow['status']; exhausted: boolean };

/**
 * The pending or unknown charges whose next status check is due at `now`: the k-th check comes
 * `schedule[k]` seconds after the attempt was created.
 * @param schedule seconds after creation, e.g. `[60, 300, 3600, 86400]`
 */
export async function dueForPoll(
  db: Db,
  schedule: readonly number[],
  now: Date,
  limit = 100,
): Promise<TransactionRow[]> {
  const steps = sql.join(schedule.map((s) => sql`${s}::int`));
  return db
    .selectFrom('transactions')
    .selectAll()
    .where('status', 'in', ['pending', 'unknown'])
    .where('poll_attempts', '<', schedule.length)
    .where(sql<boolean>`created_at + make_interval(secs => (ARRAY[${steps}])[poll_attempts + 1]) <= ${now}`)
    .orderBy('created_at')
    .limit(limit)
    .execute();
}

/**
 * Asks the gateway account the charge was made on (its `gateway_account`) what became of one pending
 * or unknown charge (`fetchTransaction` by our reference) and records the answer. Only a confirmed answer changes the state: a decline or a
 * "no such charge" older than ten minutes frees the invoice; an unclear answer leaves it as it is.
 * A success the gateway reports for another amount or currency than the charge's (an unknown
 * outcome's `reported`) books nothing and raises an `amount_mismatch` (or `currency_mismatch`)
 * exception naming what the gateway reports (`details`: `amount` in minor units, `currency`), once
 * per charge, as a notification saying so does (src/reconcile/apply.ts).
 * @param scheduled true for a check of the poll schedule, which counts as one of its
 * `schedule.length` attempts; false for a check asked for by hand (`billhook reconcile`), which
 * leaves the schedule as it was and never reports `exhausted`
 * @param policy the configuration's renewal policy (`BILL_SUSPENDED_SUBSCRIPTIONS`), under which a
 * success that reinstates its subscription resumes it (billing/reinstate.ts)
 */
export async function pollTransaction(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  transaction: TransactionRow,
  schedule: readonly number[],
  now: Date,
  onOverpaid: OnOverpaid,
  scheduled = true,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<PollResult> {
  // The account the charge was made on, even if disabled since: its outcome may have happened there.
  const client = await clientForAccount(gateways, transaction.gateway, transaction.gateway_account, {
    includeDisabled: true,
  });
  const outcome = await client.fetchTransaction({
    reference: transaction.id,
    gatewayTransactionId: transaction.gateway_transaction_id ?? undefined,
    charge: await chargeRequestOf(db, transaction),
    attempt: scheduled ? transaction.poll_attempts + 1 : undefined,
    at: now,
  });
  return inUnitOfWork(db, { actor }, async (work) => {
    if (outcome.status === 'not_found') {
      if (now.getTime() - transaction.created_at.getTime() >= NOT_FOUND_IS_FINAL_AFTER_MS) {
        await recordChargeResult(work, transaction, {
          status: 'failed',
          failureCode: 'not_found_at_gateway',
          failureMessage: 'the gateway has no charge with this reference: the request never reached it',
        });
      }
    } else if (outcome.status !== 'unknown') {
      await recordChargeResult(work, transaction, chargeResultOf(outcome), onOverpaid, policy);
    } else if (outcome.reported) {
      const { amount, currency } = outcome.reported;
      await raiseException(work, {
        kind: currency === transaction.currency.toUpperCase() ? 'amount_mismatch' : 'currency_mismatch',
        gateway: transaction.gateway,
        gatewayAccount: transaction.gateway_account,
        transactionId: transaction.id,
        message: `status check of ${transaction.id} (${transaction.amount} ${transaction.currency.toUpperCase()}, minor units): ${outcome.message}; nothing was booked`,
        details: { amount, currency },
      });
    }
    const row = await work.trx
      .updateTable('transactions')
      .set((eb) => ({ poll_attempts: eb('poll_attempts', '+', scheduled ? 1 : 0) }))
      .where('id', '=', transaction.id)
      .returning(['status', 'poll_attempts'])
      .executeTakeFirstOrThrow();
    const open = row.status === 'pending' || row.status === 'unknown';
    return {
      transactionId: transaction.id,
      status: row.status,
      exhausted: scheduled && open && row.poll_attempts >= schedule.length,
    };
  });
}
