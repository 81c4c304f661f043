import { type Kysely, sql } from 'kysely';

/**
 * `settlement_lines.partner_fee`: of a line's fee, what a partner (a platform) took, minor units ≥ 0
 * (PayPal's `platform_fees` in a capture's breakdown, or a Transaction Search `T0113` partner fee row,
 * a `fee` line of its own naming its payment): billhook books a payment's partner fees once, whichever
 * of its lines reports them (settlement/lines.ts). Existing PayPal charge lines whose fee counted
 * them say so in their description ("the fee includes platform fees of 200 minor units", or partner
 * fees from a sweep): that amount is theirs; every other line took none.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE settlement_lines
      ADD COLUMN partner_fee bigint NOT NULL DEFAULT 0 CHECK (partner_fee >= 0);
    UPDATE settlement_lines
      SET partner_fee = substring(description from 'the fee includes (?:platform|partner) fees of (\\d+) minor units')::bigint
      WHERE gateway = 'paypal' AND kind = 'charge'
        AND description ~ 'the fee includes (platform|partner) fees of \\d+ minor units';
  `.execute(db);
}

/** Drops what 0041 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE settlement_lines DROP COLUMN partner_fee`.execute(db);
}
