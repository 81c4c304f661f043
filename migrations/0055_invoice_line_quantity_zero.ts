import { type Kysely, sql } from 'kysely';

/**
 * A subscription of quantity 0 (the API accepts 0 … 1,000,000; pricing.ts `priceFor` prices it: a
 * FLAT_FEE plan its fee, the others 0) is invoiced with a plan line of quantity 0, as Stripe books an
 * item of quantity 0. 0001's `invoice_lines_quantity_check` (quantity > 0) refused that line, so
 * creating such a subscription answered 500 and a change to quantity 0 at the next cycle failed its
 * renewal at every sweep. Widened to quantity ≥ 0; every existing line keeps its quantity.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_quantity_check;
    ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_quantity_check CHECK (quantity >= 0);
  `.execute(db);
}

/** Restores 0001's check (refused while a line of quantity 0 exists). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_quantity_check;
    ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_quantity_check CHECK (quantity > 0);
  `.execute(db);
}
