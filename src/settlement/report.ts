import { type Kysely, sql } from 'kysely';
import type { GatewayName } from '../config/gateways.ts';
import type { Database } from '../db/schema.ts';
import { chart } from '../ledger/chart.ts';

/**
 * Which books the settlement report covers: journal entries created in [`from`, `to`), optionally of
 * one gateway, one gateway account (`gwa_…`; null: the gateway's default account) and one currency.
 */
export interface SettlementReportQuery {
  from: Date;
  to: Date;
  gateway?: GatewayName;
  gatewayAccount?: string | null;
  currency?: string;
}

/** A ledger account over the period: its balance at `from`, what moved in the period, its balance at `to` (minor units; debit positive). */
export interface AccountPeriod {
  opening: bigint;
  movements: bigint;
  closing: bigint;
}

/**
 * A gateway account's clearing account (the money the gateway holds for us, asset) over the period,
 * its movements grouped by what posted them: `charges` (payments, entries of source `transaction`),
 * `refunds` (`refund`), `disputes` (`dispute`), `payouts` (`payout`); what the gateway's balance lines
 * booked (`settlement_line` entries) by the account on the other side: `fees` (against gateway fees:
 * −their movement, so fees taken are negative here), `conversions` (against the FX account: a
 * conversion credits clearing in the payment's currency and debits it in the settlement currency),
 * `adjustments` (against settlement adjustments); `other` (any other source, or a line's posting
 * against another account; none in billhook's movements today). `closing` is what the gateway still
 * holds to pay out, read on its own from the postings; `balances`: opening + movements = closing.
 */
export interface ClearingPeriod {
  opening: bigint;
  charges: bigint;
  refunds: bigint;
  disputes: bigint;
  fees: bigint;
  conversions: bigint;
  adjustments: bigint;
  payouts: bigint;
  other: bigint;
  closing: bigint;
  balances: boolean;
}

/** The settlement report of one gateway account in one currency (minor units). */
export interface SettlementReportRow {
  gateway: string;
  /** `gwa_…`, or null for the gateway's default account. */
  gatewayAccount: string | null;
  currency: string;
  clearing: ClearingPeriod;
  gatewayFees: AccountPeriod;
  /** The FX account (`fx:<gateway>[:<gwa_…>]`): the other side of the conversions. */
  fx: AccountPeriod;
  payoutsInTransit: AccountPeriod;
  bank: AccountPeriod;
}

/** The groups of clearing movements. */
const MOVEMENT_GROUPS = [
  'charges',
  'refunds',
  'disputes',
  'fees',
  'conversions',
  'adjustments',
  'payouts',
  'other',
] as const;
type MovementGroup = (typeof MOVEMENT_GROUPS)[number];

/**
 * The clearing movement group of each journal entry source type (`other` for any else); a
 * `settlement_line` entry's clearing movement is split by its other side (`LINE_GROUPS`).
 */
const GROUPS: Readonly<Record<string, MovementGroup>> = {
  transaction: 'charges',
  refund: 'refunds',
  dispute: 'disputes',
  payout: 'payouts',
};

/** The source type of a settlement line's entries (`settlementLineBooked`). */
const LINE_SOURCE = 'settlement_line';

/** The accounts on the other side of a settlement line's clearing postings, and their group. */
const LINE_GROUPS = [
  ['gatewayFees', 'fees'],
  ['fx', 'conversions'],
  ['settlementAdjustments', 'adjustments'],
] as const;

const CLEARING_PREFIX = 'gateway_clearing:';

/** The gateway and account of a clearing account's code (`gateway_clearing:<gateway>[:<gwa_…>]`). */
function accountOf(code: string): { gateway: string; gatewayAccount: string | null } {
  const [gateway = '', account] = code.slice(CLEARING_PREFIX.length).split(':');
  return { gateway, gatewayAccount: account ?? null };
}

/** The codes of the accounts a gateway account's report reads, by what the report calls them. */
function codesOf(gateway: string, account: string | null) {
  return {
    clearing: chart.gatewayClearing(gateway, account).code,
    gatewayFees: chart.gatewayFees(gateway, account).code,
    fx: chart.fx(gateway, account).code,
    settlementAdjustments: chart.settlementAdjustments(gateway, account).code,
    payoutsInTransit: chart.payoutsInTransit(gateway, account).code,
    bank: chart.bank(gateway, account).code,
  };
}

/**
 * The settlement report (PRODUCT.md §13), per gateway account and currency: what moved through its
 * clearing account in [`from`, `to`) by source, its balance at both ends, and its gateway fees, FX,
 * payouts in transit and bank accounts over the period, read from the ledger's postings (a journal
 * entry is dated by its `created_at`, the start of the transaction that wrote it). The gateway
 * accounts are those the ledger has a clearing account for (`gateway_clearing:<gateway>[:<gwa_…>]`),
 * ordered by gateway, account (the default first) and currency. Read in one repeatable-read snapshot,
 * so the movements and the balances are of the same books.
 */
export async function settlementReport(
  db: Kysely<Database>,
  query: SettlementReportQuery,
): Promise<SettlementReportRow[]> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      let clearing = trx
        .selectFrom('ledger_accounts')
        .select(['code', 'currency'])
        .where('code', 'like', `${CLEARING_PREFIX}%`);
      if (query.currency) clearing = clearing.where('currency', '=', query.currency);
      const accounts = (await clearing.execute())
        .map((row) => ({ ...accountOf(row.code), currency: row.currency }))
        .filter(
          (a) =>
            (query.gateway === undefined || a.gateway === query.gateway) &&
            (query.gatewayAccount === undefined || a.gatewayAccount === query.gatewayAccount),
        )
        .sort(
          (a, b) =>
            a.gateway.localeCompare(b.gateway) ||
            (a.gatewayAccount ?? '').localeCompare(b.gatewayAccount ?? '') ||
            a.currency.localeCompare(b.currency),
        );
      if (accounts.length === 0) return [];
      const codes = [
        ...new Set(accounts.flatMap((a) => Object.values(codesOf(a.gateway, a.gatewayAccount)))),
      ];
      const currencies = [...new Set(accounts.map((a) => a.currency))];
      // What each account moved before and during the period, by the source of the entry.
      const moved = await trx
        .selectFrom('postings as p')
        .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
        .innerJoin('journal_entries as e', 'e.id', 'p.journal_entry_id')
        .select([
          'a.code',
          'a.currency',
          'e.source_type',
          sql<bigint>`coalesce(sum(p.amount) FILTER (WHERE e.created_at < ${query.from}), 0)`.as('before'),
          sql<bigint>`coalesce(sum(p.amount) FILTER (WHERE e.created_at >= ${query.from}), 0)`.as('during'),
        ])
        .where('a.code', 'in', codes)
        .where('a.currency', 'in', currencies)
        .where('e.created_at', '<', query.to)
        .groupBy(['a.code', 'a.currency', 'e.source_type'])
        .execute();
      // Each account's balance at `to`, summed on its own.
      const closing = await trx
        .selectFrom('postings as p')
        .innerJoin('ledger_accounts as a', 'a.id', 'p.account_id')
        .innerJoin('journal_entries as e', 'e.id', 'p.journal_entry_id')
        .select(['a.code', 'a.currency', sql<bigint>`sum(p.amount)`.as('balance')])
        .where('a.code', 'in', codes)
        .where('a.currency', 'in', currencies)
        .where('e.created_at', '<', query.to)
        .groupBy(['a.code', 'a.currency'])
        .execute();
      const closingOf = (code: string, currency: string) =>
        closing.find((row) => row.code === code && row.currency === currency)?.balance ?? 0n;
      const movedOf = (code: string, currency: string) =>
        moved.filter((row) => row.code === code && row.currency === currency);
      const period = (code: string, currency: string): AccountPeriod => {
        const rows = movedOf(code, currency);
        return {
          opening: rows.reduce((sum, row) => sum + row.before, 0n),
          movements: rows.reduce((sum, row) => sum + row.during, 0n),
          closing: closingOf(code, currency),
        };
      };
      return accounts.map(({ gateway, gatewayAccount, currency }) => {
        const code = codesOf(gateway, gatewayAccount);
        const rows = movedOf(code.clearing, currency);
        const clearing: ClearingPeriod = {
          opening: rows.reduce((sum, row) => sum + row.before, 0n),
          charges: 0n,
          refunds: 0n,
          disputes: 0n,
          fees: 0n,
          conversions: 0n,
          adjustments: 0n,
          payouts: 0n,
          other: 0n,
          closing: closingOf(code.clearing, currency),
          balances: false,
        };
        for (const row of rows) {
          if (row.source_type !== LINE_SOURCE) clearing[GROUPS[row.source_type] ?? 'other'] += row.during;
        }
        // A settlement line's entry balances in each currency: its clearing postings are the negated
        // postings of the accounts on their other side; what none of those explains is `other`.
        let lines = rows.find((row) => row.source_type === LINE_SOURCE)?.during ?? 0n;
        for (const [account, group] of LINE_GROUPS) {
          const against = movedOf(code[account], currency).find((row) => row.source_type === LINE_SOURCE);
          clearing[group] = -(against?.during ?? 0n);
          lines -= clearing[group];
        }
        clearing.other += lines;
        const movements = MOVEMENT_GROUPS.reduce((sum, group) => sum + clearing[group], 0n);
        clearing.balances = clearing.opening + movements === clearing.closing;
        return {
          gateway,
          gatewayAccount,
          currency,
          clearing,
          gatewayFees: period(code.gatewayFees, currency),
          fx: period(code.fx, currency),
          payoutsInTransit: period(code.payoutsInTransit, currency),
          bank: period(code.bank, currency),
        };
      });
    });
}
