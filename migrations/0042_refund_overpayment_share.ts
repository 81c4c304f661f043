import { type Kysely, sql } from 'kysely';

/**
 * `refunds.overpayment_share`: what of a customer-credit refund (minor units, 0 … its amount) gives
 * back the overpayment of the invoice whose payment carries it, decided when the refund is created
 * under that invoice's lock (payments/credit-refunds.ts): the overpayment neither given back nor held
 * by the invoice's refunds in flight then, 0 when the invoice was not overpaid. 0 for refunds of a
 * payment. Existing refunds keep 0: credit refunds made before were not counted as any invoice's
 * overpayment given back.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE refunds ADD COLUMN overpayment_share bigint NOT NULL DEFAULT 0`.execute(db);
  await sql`ALTER TABLE refunds ADD CONSTRAINT refunds_overpayment_share_range
    CHECK (overpayment_share >= 0 AND overpayment_share <= amount)`.execute(db);
}

/** Drops what 0042 adds. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE refunds DROP COLUMN overpayment_share`.execute(db);
}
