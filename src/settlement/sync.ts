import { listGatewayAccounts } from '../accounts/accounts.ts';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import type { AccountRegistry, GatewayRegistry } from '../gateways/registry.ts';
import type { SettlementRange, SettlementSource } from '../gateways/settlement.ts';
import { balancesOfCodes } from '../ledger/balances.ts';
import { chart } from '../ledger/chart.ts';
import type { Actor } from '../ledger/unit-of-work.ts';
import { DAY_MS } from '../time.ts';
import { raiseChargesNotPaidOut, raiseUnexpectedFees } from './checks.ts';
import type { SettlementAccount } from './lines.ts';
import { recordSettlementReport, type SettlementTotals } from './record.ts';

/** A gateway account that can be asked for its settlement data, with its adapter's source. */
export interface AccountSource {
  account: SettlementAccount;
  source: SettlementSource;
}

/**
 * The days after its disabling that a gateway account is swept whatever its balances
 * (`stillSettling`): the card networks' chargeback window (120 days) and the payouts that follow it.
 */
export const DISABLED_SWEEP_DAYS = 180;

/**
 * Whether disabled gateway account `account` (disabled at `disabledAt`) is still swept for settlement
 * data as of `now`: disabling stops new charges, refunds and voids, not the bookkeeping of what is
 * already in flight or may still come — the last payouts, their fees, refunds, and disputes opened
 * up to the chargeback window later, which billhook may learn of only by the sweep (a disabled
 * account's webhooks are not relied on). So it is swept for `DISABLED_SWEEP_DAYS` after it was
 * disabled whatever its balances, and after that only while the gateway still holds or sends it money
 * in billhook's books (its clearing or payouts in transit not 0 in some currency: charges not paid
 * out, a payout not arrived, a refund or dispute booked but not settled).
 */
async function stillSettling(
  db: Db,
  account: SettlementAccount,
  disabledAt: Date,
  now: Date,
): Promise<boolean> {
  if (now.getTime() - disabledAt.getTime() <= DISABLED_SWEEP_DAYS * DAY_MS) return true;
  const balances = await balancesOfCodes(db, [
    chart.gatewayClearing(account.gateway, account.gatewayAccount).code,
    chart.payoutsInTransit(account.gateway, account.gatewayAccount).code,
  ]);
  return balances.some((balance) => balance.balance !== 0n);
}

/**
 * Every configured gateway account whose adapter can be asked for settlement data
 * (`GatewayAdapter.settlement`): each gateway's default account (the environment), each enabled
 * gateway account (`gwa_…`) and each disabled one still settling (`stillSettling` as of `now`),
 * optionally only those of `only`. An account whose adapter cannot be made (its credentials do not
 * decrypt: `secret_key_unknown`, …) is listed with a source failing with that error (`failingSource`),
 * so that its sync fails alone, reported like a gateway that fails, and the others are swept.
 */
export async function settlementSources(
  db: Db,
  registry: GatewayRegistry,
  accounts: AccountRegistry,
  only?: Partial<SettlementAccount>,
  now: Date = new Date(),
): Promise<AccountSource[]> {
  const sources: AccountSource[] = [];
  const wanted = (account: SettlementAccount) =>
    (only?.gateway === undefined || only.gateway === account.gateway) &&
    (only?.gatewayAccount === undefined || only.gatewayAccount === account.gatewayAccount);
  for (const [gateway, adapter] of registry) {
    const account = { gateway, gatewayAccount: null };
    if (adapter.settlement && wanted(account)) sources.push({ account, source: adapter.settlement });
  }
  for (const row of await listGatewayAccounts(db)) {
    const account = { gateway: row.gateway, gatewayAccount: row.id };
    if (!wanted(account)) continue;
    if (row.disabled_at !== null && !(await stillSettling(db, account, row.disabled_at, now))) continue;
    let source: SettlementSource | undefined;
    try {
      source = (await accounts.adapterOf(row.gateway, row.id, { includeDisabled: true }))?.settlement;
    } catch (error) {
      source = failingSource(error instanceof Error ? error : new Error(String(error)));
    }
    if (source) sources.push({ account, source });
  }
  return sources;
}

/** A settlement source whose every fetch fails with `error`: an account that cannot be asked. */
function failingSource(error: Error): SettlementSource {
  return {
    fetchSettlements: () => Promise.reject(error),
  };
}

/** One account's sync: what it recorded, or why it failed (the other accounts still sync). */
export type SyncResult = { account: SettlementAccount } & ({ totals: SettlementTotals } | { error: Error });

/**
 * Asks each source for its settlement data over `range` and records it (`recordSettlementReport`:
 * idempotent, so overlapping ranges on successive days change nothing twice). A gateway that fails
 * is reported and the others go on. A report that left something out (`unread`) is recorded, and its
 * account then reported failed, naming what was left out and what was recorded.
 */
export async function syncSettlements(
  db: Db,
  actor: Actor,
  sources: readonly AccountSource[],
  range: SettlementRange,
): Promise<SyncResult[]> {
  const results: SyncResult[] = [];
  for (const { account, source } of sources) {
    try {
      const report = await source.fetchSettlements(range);
      const totals = await recordSettlementReport(db, actor, account, report);
      if (report.unread && report.unread.length > 0) {
        const recorded = `${totals.payouts} payout(s) and ${totals.lines} line(s) recorded, ${totals.unmatched} line(s) unmatched`;
        results.push({ account, error: new Error(`${report.unread.join('; ')} (the rest: ${recorded})`) });
      } else {
        results.push({ account, totals });
      }
    } catch (error) {
      results.push({ account, error: error instanceof Error ? error : new Error(String(error)) });
    }
  }
  return results;
}

/** What a settlement run did: each account's sync, and the exceptions the checks raised. */
export interface SettlementRun {
  results: SyncResult[];
  notPaidOut: number;
  unexpectedFees: number;
}

/**
 * A settlement run (the daily `settlement.sync`, or `billhook settlement sync`): syncs `sources` over
 * `range`, then raises `charge_not_paid_out` (the gateway's delay plus the margin passed, as of
 * `range.to`) and `unexpected_fee` (for lines recorded since `range.from`) with the configuration's
 * settings.
 */
export async function runSettlement(
  db: Db,
  actor: Actor,
  sources: readonly AccountSource[],
  range: SettlementRange,
  config: Pick<
    Config,
    | 'SETTLEMENT_PAYOUT_DELAY_DAYS'
    | 'SETTLEMENT_MARGIN_DAYS'
    | 'SETTLEMENT_FEE_EXPECTATIONS'
    | 'SETTLEMENT_FEE_TOLERANCE'
  >,
): Promise<SettlementRun> {
  const results = await syncSettlements(db, actor, sources, range);
  const notPaidOut = await raiseChargesNotPaidOut(
    db,
    actor,
    config.SETTLEMENT_PAYOUT_DELAY_DAYS,
    config.SETTLEMENT_MARGIN_DAYS,
    range.to,
  );
  const unexpectedFees = await raiseUnexpectedFees(
    db,
    actor,
    config.SETTLEMENT_FEE_EXPECTATIONS,
    BigInt(config.SETTLEMENT_FEE_TOLERANCE),
    range.from,
  );
  return { results, notPaidOut, unexpectedFees };
}

/** The `days` whole days (of 24 h) before `to`: the range a settlement run asks for. */
export function lastDays(days: number, to: Date = new Date()): SettlementRange {
  return { from: new Date(to.getTime() - days * DAY_MS), to };
}
