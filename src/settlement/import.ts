import { createHash } from 'node:crypto';
import { recordActivity } from '../activities/activities.ts';
import type { Db } from '../db/database.ts';
import { ValidationError } from '../errors.ts';
import { CURRENCY_TABLES } from '../gateways/currencies.ts';
import { parseSecurePaySettlementCsv } from '../gateways/securepay/settlement.ts';
import type { SettlementReport } from '../gateways/settlement.ts';
import { parseSettlementCsv } from '../gateways/settlement-csv.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { ofAccount, type SettlementAccount } from './lines.ts';
import { recordSettlementReport, type SettlementTotals } from './record.ts';

/**
 * The settlement file formats billhook imports: `billhook` (its own CSV, docs/settlement-csv.md, for
 * any gateway; a row's currency must be one the gateway takes, by its currency rules in
 * gateways/currencies.ts, and every amount exact in the currency's ISO 4217 exponent, not in the
 * gateway's charge step: a fee or a converted amount may be finer than a charge can be, e.g. a Stripe
 * KWD fee of 0.005 where Stripe charges KWD in steps of 0.010) and `securepay` (SecurePay's ids mapped
 * onto it, src/gateways/securepay/settlement.ts).
 */
export const SETTLEMENT_FILE_FORMATS = ['billhook', 'securepay'] as const;
export type SettlementFileFormat = (typeof SETTLEMENT_FILE_FORMATS)[number];

/**
 * Reads a settlement file of `format` for `gateway` into lines and payouts.
 * @throws ValidationError (422) when the format is not the gateway's, or anything in the file is
 * refused (each problem keyed by row and column; nothing is read)
 */
export function parseSettlementFile(
  account: SettlementAccount,
  format: SettlementFileFormat,
  file: string | Uint8Array,
): SettlementReport {
  if (format === 'securepay') {
    if (account.gateway !== 'securepay') {
      throw new ValidationError('the securepay format is for SecurePay settlements', {
        format: `securepay files are imported for gateway securepay, not ${account.gateway}`,
      });
    }
    return parseSecurePaySettlementCsv(file);
  }
  return parseSettlementCsv(file, { currencies: CURRENCY_TABLES[account.gateway] });
}

/** What an import read and what it changed. */
export interface SettlementImport {
  /** SHA-256 of the file (hex): the same file imported twice shows the same digest. */
  sha256: string;
  /** Lines and payouts the file holds. */
  read: { lines: number; payouts: number };
  /** What was new (0 and 0 for a file imported before). */
  recorded: SettlementTotals;
}

/**
 * Imports a settlement report file for a gateway account (PRODUCT.md §13): parsed whole first (a file
 * with any refused row changes nothing), then recorded like a sync (`recordSettlementReport`:
 * idempotent by the gateway's line and payout ids, so importing one file twice changes nothing the
 * second time), with a `settlement.imported` activity naming the file's digest and what it changed.
 * A file stating another currency or amount for a payout the account recorded already (a sign
 * corrected: `-30.00` recorded, `30.00` now) is refused whole (`changedPayouts`): a payout's money is
 * booked once, as first recorded, and the file's other figure would otherwise be dropped unsaid.
 * @throws ValidationError (422) for a refused file; for a changed payout keyed
 * `payout <payout_id>, column payout_amount` (or `currency`), naming both figures in minor units
 */
export async function importSettlementFile(
  db: Db,
  actor: Actor,
  account: SettlementAccount,
  format: SettlementFileFormat,
  file: string | Uint8Array,
): Promise<SettlementImport> {
  const report = parseSettlementFile(account, format, file);
  const changed = await changedPayouts(db, account, report);
  if (Object.keys(changed).length > 0) {
    throw new ValidationError(
      'the file states other money for payouts recorded already: nothing was imported',
      changed,
    );
  }
  const sha256 = createHash('sha256').update(file).digest('hex');
  const recorded = await recordSettlementReport(db, actor, account, report);
  const read = {
    lines: report.lines.length + report.payouts.reduce((sum, payout) => sum + (payout.lines?.length ?? 0), 0),
    payouts: report.payouts.length,
  };
  await inUnitOfWork(db, { actor }, (work) =>
    recordActivity(work, {
      resourceType: 'settlement_import',
      resourceId: sha256,
      action: 'settlement.imported',
      data: { gateway: account.gateway, gateway_account: account.gatewayAccount, format, read, recorded },
    }),
  );
  return { sha256, read, recorded };
}

/**
 * The payouts of `report` that `account` recorded already with another currency or amount (minor
 * units), each as a field-level problem `payout <id>, column payout_amount` (or `currency`) naming
 * what was recorded and what the file says; empty when none.
 */
async function changedPayouts(
  db: Db,
  account: SettlementAccount,
  report: SettlementReport,
): Promise<Record<string, string>> {
  const problems: Record<string, string> = {};
  if (report.payouts.length === 0) return problems;
  const recorded = await db
    .selectFrom('payouts')
    .select(['gateway_payout_id', 'currency', 'amount'])
    .where(ofAccount(account))
    .where(
      'gateway_payout_id',
      'in',
      report.payouts.map((payout) => payout.gatewayPayoutId),
    )
    .execute();
  const byId = new Map(recorded.map((row) => [row.gateway_payout_id, row]));
  for (const payout of report.payouts) {
    const row = byId.get(payout.gatewayPayoutId);
    if (!row) continue;
    const was = `payout ${payout.gatewayPayoutId} was recorded as ${row.amount} ${row.currency} (minor units)`;
    if (row.currency !== payout.currency) {
      problems[`payout ${payout.gatewayPayoutId}, column currency`] =
        `${was}; this file says ${payout.amount} ${payout.currency}: a recorded payout is not changed by an import`;
    } else if (row.amount !== payout.amount) {
      problems[`payout ${payout.gatewayPayoutId}, column payout_amount`] =
        `${was}; this file says ${payout.amount} ${payout.currency}: a recorded payout is not changed by an import`;
    }
  }
  return problems;
}
