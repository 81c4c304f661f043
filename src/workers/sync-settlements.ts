import { accountName } from '../settlement/lines.ts';
import { lastDays, runSettlement, settlementSources } from '../settlement/sync.ts';
import type { JobHandler } from './context.ts';

/**
 * `settlement.sync` (daily): asks each gateway account that can be asked for its settlement data over
 * the last `SETTLEMENT_SYNC_DAYS` days and records it (fees, payouts and their lines; src/settlement/),
 * then raises the settlement exceptions: charges in no payout after their gateway's delay plus the
 * margin, and fees off their expectation. A gateway account that fails (its gateway, or its
 * credentials that do not decrypt) is logged and does not stop the others; the job then fails after
 * them (`billhook_job_failures_total`), and pg-boss retries it (recording is idempotent). What an
 * account's source could not read is also a `settlement_unread` exception, asked for again on every
 * run until it is booked (`syncSettlements`).
 */
export const syncSettlementsJob: JobHandler = async (
  _jobs,
  { db, registry, accounts, config, log, actor },
) => {
  const sources = await settlementSources(db, registry, accounts);
  const run = await runSettlement(db, actor, sources, lastDays(config.SETTLEMENT_SYNC_DAYS), config);
  const failed = run.results.flatMap((r) =>
    'error' in r ? [`${accountName(r.account)}: ${r.error.message}`] : [],
  );
  for (const message of failed) log.warn({ failure: message }, 'settlement.sync failed for an account');
  log.info(
    {
      accounts: run.results.length,
      failed: failed.length,
      notPaidOut: run.notPaidOut,
      unexpectedFees: run.unexpectedFees,
    },
    'settlement.sync done',
  );
  if (failed.length > 0) throw new Error(`settlement.sync failed for ${failed.join('; ')}`);
};
