import { listGatewayAccounts } from '../accounts/accounts.ts';
import type { Db } from '../db/database.ts';
import type { AccountRegistry, GatewayRegistry } from '../gateways/registry.ts';
import type { SettlementRange, SettlementSource } from '../gateways/settlement.ts';
import type { Actor } from '../ledger/unit-of-work.ts';
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
