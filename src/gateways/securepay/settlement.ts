import type { SettlementLine, SettlementReport } from '../settlement.ts';
import { parseSettlementCsv, type SettlementCsvOptions } from '../settlement-csv.ts';
import { SECUREPAY_CURRENCIES } from './currencies.ts';

/**
 * SecurePay's settlements, imported from a file: PRODUCT.md §13 reconciles SecurePay by import, since
 * billhook knows no SecurePay API for settlements (test/fixtures/securepay/FACTS.md lists none).
 *
 * No public sample or column specification of SecurePay's own settlement or transaction report was
 * found: the code and documentation indexes searched (SecurePay / Australia Post "Settlement Report",
 * "Transaction Report", merchant portal CSV exports, column names such as "Settlement Date" or "Bank
 * Transaction ID") hold no SecurePay report, and SecurePay's API reference documents none. So
 * billhook reads no SecurePay-specific layout: SecurePay's settlements are imported in billhook's own
 * format (docs/settlement-csv.md, settlement-csv.ts), filled from SecurePay's report with SecurePay's
 * ids written as billhook stores them:
 * - `gateway_transaction_id`: the order's `orderId`. billhook sends its `txn_…` reference unchanged as
 *   SecurePay's `orderId` (conventions.ts `orderIdOf`) and stores that as the charge's
 *   `gatewayTransactionId` (client.ts `charge`); a refund's or dispute's row names the order too;
 * - `gateway_refund_id`: billhook's `re_…` refund reference, the only id a SecurePay refund has
 *   (client.ts `refund`: SecurePay gives a refund no id of its own; the reference is its
 *   `Idempotency-Key`); left blank when the report does not show it, the refund then being known by its
 *   order and amount;
 * - `bankTransactionId`, the bank's short reference SecurePay returns for each payment and refund, is
 *   not an id billhook stores: it may go in `description`, or, with the `orderId`, make a `line_id`
 *   (`<orderId>:<bankTransactionId>`) that stays the same when a row is corrected;
 * - amounts: SecurePay counts "cents", documented for two-decimal currencies only, so a row in a
 *   currency SecurePay does not take (JPY, KWD…) is refused (`SECUREPAY_CURRENCIES`).
 */

/** What SecurePay's import asks beyond billhook's format: the currencies SecurePay takes. */
export const SECUREPAY_SETTLEMENT_CSV: SettlementCsvOptions = { currencies: SECUREPAY_CURRENCIES };

/**
 * A charge line with its `reference` filled from its `orderId` when the row left it blank: SecurePay's
 * `orderId` is billhook's `txn_…` reference (conventions.ts `orderIdOf` sends it unchanged).
 */
function withReference(line: SettlementLine): SettlementLine {
  if (line.kind !== 'charge' || line.reference !== undefined || line.gatewayTransactionId === undefined) {
    return line;
  }
  return { ...line, reference: line.gatewayTransactionId };
}

/**
 * Reads a SecurePay settlement file in billhook's format (see above) into the lines not yet paid out
 * and the payouts with their lines, amounts in minor units (cents) of the row's currency.
 * @param input the file as text or bytes (UTF-8)
 * @throws ValidationError (422) as `parseSettlementCsv` does, and for a row in a currency SecurePay
 * does not take (`row N, column currency`); nothing of the file is returned
 */
export function parseSecurePaySettlementCsv(input: string | Uint8Array): SettlementReport {
  const report = parseSettlementCsv(input, SECUREPAY_SETTLEMENT_CSV);
  return {
    lines: report.lines.map(withReference),
    payouts: report.payouts.map((payout) => ({ ...payout, lines: payout.lines?.map(withReference) })),
  };
}
