import { type Kysely, sql } from 'kysely';

/**
 * A converted settlement line keeps the rate its gateway says it converted at, so billhook can check
 * the line's gross against what it booked × that rate when it matches the line, also later (a line
 * recorded before its charge was known is matched when the charge succeeds, from the stored row):
 * - `settlement_lines.exchange_rate`: plain decimal text, major units (Stripe's balance transaction
 *   `exchange_rate`, `1.234` for EUR 10.00 settled as USD 12.34); null when the gateway gave none.
 *   Text, not numeric: billhook's pool reads numeric as bigint (db/database.ts), and a rate is never
 *   a float.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE settlement_lines ADD COLUMN exchange_rate text
      CONSTRAINT settlement_lines_exchange_rate CHECK (exchange_rate ~ '^[0-9]+(\\.[0-9]+)?$');
  `.execute(db);
}

/** Drops what 0059 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE settlement_lines DROP COLUMN exchange_rate;`.execute(db);
}
