import { sql } from 'kysely';
import { listGatewayAccounts } from '../accounts/accounts.ts';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import { raiseException, resolveUnreadSettlements } from '../exceptions/exceptions.ts';
import type { AccountRegistry, GatewayRegistry } from '../gateways/registry.ts';
import type { SettlementRange, SettlementReport, SettlementSource } from '../gateways/settlement.ts';
import { balancesOfCodes } from '../ledger/balances.ts';
import { chart } from '../ledger/chart.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { DAY_MS } from '../time.ts';
import { raiseChargesNotPaidOut, raiseUnexpectedFees } from './checks.ts';
import { accountName, ofAccount, type SettlementAccount } from './lines.ts';
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
 * is reported and the others go on. A report that left something out (`unread`: an Authorize.Net
 * batch or eWAY settlement billhook cannot read) is recorded, each item left out raised as a
 * `settlement_unread` exception for a person (once per account and item, `noteUnread`), and its
 * account then reported failed, naming what was left out and what was recorded. An account's range
 * starts no later than the settlement of its oldest item still unread (an open `settlement_unread`,
 * `unreadSince`), so the sweep's window never moves past it: it is asked for again on every sweep
 * until it is booked (its exception then resolved) or a person resolves the exception.
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
      const since = await unreadSince(db, account);
      const asked = since && since < range.from ? { from: since, to: range.to } : range;
      const report = await source.fetchSettlements(asked);
      const totals = await recordSettlementReport(db, actor, account, report);
      await noteUnread(db, actor, account, report);
      if (report.unread && report.unread.length > 0) {
        const recorded = `${totals.payouts} payout(s) and ${totals.lines} line(s) recorded, ${totals.unmatched} line(s) unmatched`;
        results.push({
          account,
          error: new Error(`${report.unread.map((item) => item.message).join('; ')} (the rest: ${recorded})`),
        });
      } else {
        results.push({ account, totals });
      }
    } catch (error) {
      results.push({ account, error: error instanceof Error ? error : new Error(String(error)) });
    }
  }
  return results;
}

/**
 * When the oldest item `account`'s sources left out unread settled (the `settled_at` of its open
 * `settlement_unread` exceptions), or undefined when none is open.
 */
async function unreadSince(db: Db, account: SettlementAccount): Promise<Date | undefined> {
  const row = await db
    .selectFrom('reconciliation_exceptions')
    .select(sql<string | null>`min((details->>'settled_at')::timestamptz)::text`.as('since'))
    .where('kind', '=', 'settlement_unread')
    .where('status', '=', 'open')
    .where(ofAccount(account))
    .executeTakeFirst();
  return row?.since ? new Date(row.since) : undefined;
}

/**
 * Raises each item `report` left out (`unread`) as a `settlement_unread` exception of `account`, once
 * per account and item id (`occurrence` `<account>:<id>`; details `id`, `settled_at`), and resolves
 * the open ones whose item the report now pays out (a payout of that gateway id, recorded by
 * `recordSettlementReport` just before).
 */
async function noteUnread(
  db: Db,
  actor: Actor,
  account: SettlementAccount,
  report: SettlementReport,
): Promise<void> {
  const unread = report.unread ?? [];
  const paid = report.payouts.map((payout) => payout.gatewayPayoutId);
  if (unread.length === 0 && paid.length === 0) return;
  await inUnitOfWork(db, { actor }, async (work) => {
    for (const item of unread) {
      await raiseException(work, {
        kind: 'settlement_unread',
        gateway: account.gateway,
        gatewayAccount: account.gatewayAccount,
        occurrence: `${accountName(account)}:${item.id}`,
        message: `${item.message}: not in the books; every settlement sync of ${accountName(account)} asks for it again until it is booked (this exception then resolved), or until a person resolves this exception`,
        details: { id: item.id, settled_at: item.settledAt.toISOString() },
      });
    }
    await resolveUnreadSettlements(
      work,
      account,
      paid,
      'read and booked as a payout by a later settlement sync',
    );
  });
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
