import { listGatewayAccounts } from '../accounts/accounts.ts';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import type { AccountRegistry, GatewayRegistry } from '../gateways/registry.ts';
import type { SettlementRange, SettlementSource } from '../gateways/settlement.ts';
import type { Actor } from '../ledger/unit-of-work.ts';
import { raiseChargesNotPaidOut, raiseUnexpectedFees } from './checks.ts';
import type { SettlementAccount } from './lines.ts';
import { recordSettlementReport, type SettlementTotals } from './record.ts';

/** A gateway account that can be asked for its settlement data, with its adapter's source. */
export interface AccountSource {
  account: SettlementAccount;
  source: SettlementSource;
}

/**
 * Every configured gateway account whose adapter can be asked for settlement data
 * (`GatewayAdapter.settlement`): each gateway's default account (the environment) and each enabled
 * gateway account (`gwa_…`), optionally only those of `only`.
 */
export async function settlementSources(
  db: Db,
  registry: GatewayRegistry,
  accounts: AccountRegistry,
  only?: Partial<SettlementAccount>,
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
    if (row.disabled_at !== null || !wanted(account)) continue;
    const source = (await accounts.adapterOf(row.gateway, row.id))?.settlement;
    if (source) sources.push({ account, source });
  }
  return sources;
}

/** One account's sync: what it recorded, or why it failed (the other accounts still sync). */
export type SyncResult = { account: SettlementAccount } & ({ totals: SettlementTotals } | { error: Error });

/**
 * Asks each source for its settlement data over `range` and records it (`recordSettlementReport`:
 * idempotent, so overlapping ranges on successive days change nothing twice). A gateway that fails
 * is reported and the others go on.
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
      results.push({ account, totals: await recordSettlementReport(db, actor, account, report) });
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
  return { from: new Date(to.getTime() - days * 86_400_000), to };
}
