import { type Kysely, sql } from 'kysely';

/**
 * `settlement_lines.kind` `conversion`: one currency's side of a currency conversion of a gateway
 * balance (PayPal's Transaction Search `T02nn` rows that name no payment, e.g. a `T0201`
 * user-initiated conversion of HUF into EUR: `−1930000` HUF and `+4957` EUR, two lines), booked
 * against the FX account in its currency (src/ledger/movements.ts `settlementLineBooked`); and
 * `hold`: money a gateway held or released within the merchant's balance (PayPal's `T15nn` holds,
 * `T1110` hold for a dispute investigation, and their releases `T1105`, `T1111`), recorded and
 * booked nowhere (the money stays the merchant's at the gateway). Existing rows keep their kinds.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE settlement_lines DROP CONSTRAINT settlement_lines_kind_check;
    ALTER TABLE settlement_lines ADD CONSTRAINT settlement_lines_kind_check
      CHECK (kind IN ('charge', 'refund', 'dispute', 'fee', 'adjustment', 'payout_return', 'conversion', 'hold'));
  `.execute(db);
}

/** Drops what 0052 adds (fails while a `conversion` or `hold` line exists: nothing is rewritten silently). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE settlement_lines DROP CONSTRAINT settlement_lines_kind_check;
    ALTER TABLE settlement_lines ADD CONSTRAINT settlement_lines_kind_check
      CHECK (kind IN ('charge', 'refund', 'dispute', 'fee', 'adjustment', 'payout_return'));
  `.execute(db);
}
