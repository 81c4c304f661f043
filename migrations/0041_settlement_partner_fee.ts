import { type Kysely, sql } from 'kysely';

/**
 * `settlement_lines.partner_fee`: of a line's fee, what a partner (a platform) took, minor units ≥ 0
 * (PayPal's `platform_fees` in a capture's breakdown, or a Transaction Search `T0113` partner fee row,
 * a `fee` line of its own naming its payment): billhook books a payment's partner fees once, whichever
 * of its lines reports them (settlement/lines.ts). Existing PayPal charge lines whose fee counted
 * them say so in their description, as billhook wrote it: a capture webhook's line is exactly
 * "PayPal capture; the fee includes platform fees of N minor units"; a sweep's line is
 * "PayPal T00xx[: subject]" followed by one "; the fee includes partner fees of N minor units" per
 * `T0113` row of the payment, so its partner fees are the sum of that trailing run (50 and 38 → 88).
 * The subject is the payer's or merchant's text: only the run at the very end counts (text inside
 * it is not read), and a sum above the line's fee (which includes them) is not believed (0). Every
 * other line took none.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE settlement_lines
      ADD COLUMN partner_fee bigint NOT NULL DEFAULT 0 CHECK (partner_fee >= 0);
    UPDATE settlement_lines
      SET partner_fee = substring(description from '^PayPal capture; the fee includes platform fees of (\\d+) minor units$')::bigint
      WHERE gateway = 'paypal' AND kind = 'charge'
        AND description ~ '^PayPal capture; the fee includes platform fees of \\d+ minor units$'
        AND substring(description from '(\\d+) minor units$')::bigint <= fee;
    UPDATE settlement_lines AS l
      SET partner_fee = fees.total
      FROM (
        SELECT s.id, sum(m[1]::bigint) AS total
        FROM settlement_lines s,
          regexp_matches(
            s.description,
            '; the fee includes partner fees of (\\d+) minor units(?=(?:; the fee includes partner fees of \\d+ minor units)*$)',
            'g'
          ) AS m
        WHERE s.gateway = 'paypal' AND s.kind = 'charge'
          AND s.description ~ '^PayPal T\\d{4}(: .*)?(; the fee includes partner fees of \\d+ minor units)+$'
        GROUP BY s.id
      ) AS fees
      WHERE l.id = fees.id AND fees.total <= l.fee;
  `.execute(db);
}

/** Drops what 0041 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE settlement_lines DROP COLUMN partner_fee`.execute(db);
}
