import { raiseChargesNotPaidOut, raiseUnexpectedFees } from '../settlement/checks.ts';
import { settlementSources, syncSettlements } from '../settlement/sync.ts';
import type { JobHandler } from './context.ts';

const DAY_MS = 86_400_000;

/**
 * `settlement.sync` (daily): asks each gateway account that can be asked for its settlement data over
 * the last `SETTLEMENT_SYNC_DAYS` days and records it (fees, payouts and their lines; src/settlement/),
 * then raises the settlement exceptions: charges in no payout after their gateway's delay plus the
 * margin, and fees off their expectation. A gateway that fails does not stop the others; the job then
 * fails after them, and pg-boss retries it (recording is idempotent).
 */
export const syncSettlementsJob: JobHandler = async (
  _jobs,
  { db, registry, accounts, config, log, actor },
) => {
  const now = new Date();
  const from = new Date(now.getTime() - config.SETTLEMENT_SYNC_DAYS * DAY_MS);
  const sources = await settlementSources(db, registry, accounts);
  const results = await syncSettlements(db, actor, sources, { from, to: now });
  const notPaidOut = await raiseChargesNotPaidOut(
    db,
    actor,
    config.SETTLEMENT_PAYOUT_DELAY_DAYS,
    config.SETTLEMENT_MARGIN_DAYS,
    now,
  );
  const fees = await raiseUnexpectedFees(
    db,
    actor,
    config.SETTLEMENT_FEE_EXPECTATIONS,
    BigInt(config.SETTLEMENT_FEE_TOLERANCE),
    from,
  );
  const failed = results.filter((result) => 'error' in result);
  log.info(
    { accounts: results.length, failed: failed.length, notPaidOut, unexpectedFees: fees },
    'settlement.sync done',
  );
  if (failed.length > 0) {
    throw new Error(
      `settlement.sync failed for ${failed
        .map(
          (r) =>
            `${r.account.gateway}${r.account.gatewayAccount ? `:${r.account.gatewayAccount}` : ''}: ${'error' in r ? r.error.message : ''}`,
        )
        .join('; ')}`,
    );
  }
};
