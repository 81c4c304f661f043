import type { Logger } from 'pino';
import type { GatewayClients } from '../accounts/clients.ts';
import type { RenewalPolicy } from '../billing/renewal.ts';
import type { Db } from '../db/database.ts';
import { flagDuplicatePayment, raiseException } from '../exceptions/exceptions.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import {
  checkingAlone,
  dueForPoll,
  longestChargeExchangeMs,
  mayStillBeInFlight,
  type PollResult,
  pollTransaction,
} from '../payments/poll.ts';
import type { JobHandler } from './context.ts';

/**
 * One sweep of `transaction.poll`: asks the gateways about every pending or unknown charge whose next
 * check is due (`schedule`, seconds after the attempt) and records what they confirm. A charge still
 * open after the last check becomes an `unknown_outcome` reconciliation exception for a person; it
 * is never charged again automatically.
 * @param options.now the sweep's clock (default now)
 * @param options.all check every open charge now, whatever the schedule (the `reconcile` command):
 * these checks are not the schedule's, so they use none of its attempts and raise no exception
 * @param options.inFlightMs how long a charge's own call may last (`longestChargeExchangeMs` of
 * `GATEWAY_TIMEOUT_MS`; default 0): in either mode, a charge whose call may still be running, on a
 * gateway checked by repeating it, is left for a later sweep (`mayStillBeInFlight`)
 * @param options.progress told after each check, with how many are done out of how many
 * An attempt another check is checking right now (an overlapping sweep, a check by hand) is left to a
 * later sweep (`checkingAlone`).
 * @returns what each check did
 */
export async function pollDueTransactions(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  schedule: readonly number[],
  log: Logger,
  options: {
    now?: Date;
    all?: boolean;
    inFlightMs?: number;
    /** `BILL_SUSPENDED_SUBSCRIPTIONS`, for a success that reinstates a subscription (default off). */
    policy?: RenewalPolicy;
    progress?: (result: PollResult, done: number, total: number) => void;
  } = {},
): Promise<PollResult[]> {
  const now = options.now ?? new Date();
  const results: PollResult[] = [];
  const due = (await dueForPoll(db, options.all ? schedule.map(() => 0) : schedule, now)).filter(
    (transaction) => !mayStillBeInFlight(transaction, schedule, options.inFlightMs ?? 0, now),
  );
  for (const transaction of due) {
    try {
      const result = await checkingAlone(db, transaction.id, () =>
        pollTransaction(
          db,
          actor,
          gateways,
          transaction,
          schedule,
          now,
          flagDuplicatePayment,
          !options.all,
          options.policy,
        ),
      );
      // Another sweep, or a check by hand, is checking it right now.
      if (!result) continue;
      results.push(result);
      options.progress?.(result, results.length, due.length);
      if (result.exhausted) {
        await inUnitOfWork(db, { actor }, (work) =>
          raiseException(work, {
            kind: 'unknown_outcome',
            gateway: transaction.gateway,
            transactionId: transaction.id,
            message: `the outcome of ${transaction.id} is still ${result.status} after ${schedule.length} status checks: ask ${transaction.gateway}`,
          }),
        );
      }
    } catch (error) {
      log.warn(
        { transactionId: transaction.id, err: error instanceof Error ? error.message : String(error) },
        'status check failed',
      );
    }
  }
  if (results.length) log.info({ polled: results.length }, 'transaction.poll sweep');
  return results;
}

/**
 * `transaction.poll` (every minute): one {@link pollDueTransactions} sweep on `POLL_SCHEDULE_SECONDS`.
 */
export const pollTransactions: JobHandler = async (_jobs, { db, registry, accounts, config, log, actor }) => {
  await pollDueTransactions(db, actor, { registry, accounts }, config.POLL_SCHEDULE_SECONDS, log, {
    policy: { billSuspended: config.BILL_SUSPENDED_SUBSCRIPTIONS },
    inFlightMs: longestChargeExchangeMs(config.GATEWAY_TIMEOUT_MS),
  });
};
