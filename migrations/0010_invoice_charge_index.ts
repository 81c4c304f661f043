import { type Kysely, sql } from 'kysely';

/**
 * The scheduler's index of invoices to charge no longer names `status` in its predicate: an index
 * predicate on `status` made every status change of an invoice (paid, voided) a non-HOT update that
 * writes a new entry into each of the table's indexes, on the reconcile path. Paid invoices clear
 * `charge_at`, so `charge_at IS NOT NULL` still selects (almost only) OPEN invoices; the sweep
 * filters on status as before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP INDEX invoices_charge_due;
    CREATE INDEX invoices_charge_due ON invoices (charge_at) WHERE charge_at IS NOT NULL;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP INDEX invoices_charge_due;
    CREATE INDEX invoices_charge_due ON invoices (charge_at) WHERE status = 'OPEN' AND charge_at IS NOT NULL;
  `.execute(db);
}
