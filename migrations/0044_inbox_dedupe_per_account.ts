import { type Kysely, sql } from 'kysely';

/**
 * The inbox dedupes a delivery per gateway account: `UNIQUE NULLS NOT DISTINCT (gateway,
 * gateway_account, gateway_event_id)` (PostgreSQL 15), replacing 0001's `UNIQUE (gateway,
 * gateway_event_id)`. A delivery speaks only for the account whose route and secret received it
 * (PRODUCT.md §12): one gateway account registered twice (the default account and a `gwa_…` with the
 * same keys, while an operator moves it) gets each event on both routes, and the copy on the wrong
 * route (refused there, reconcile/apply.ts `otherAccount`) must not make the right route's copy a
 * duplicate, whichever arrives first or while the other is still being processed. NULL (the default
 * account) is one account: its copies still dedupe among themselves.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE inbox DROP CONSTRAINT inbox_gateway_gateway_event_id_key`.execute(db);
  await sql`
    ALTER TABLE inbox ADD CONSTRAINT inbox_gateway_account_event_key
      UNIQUE NULLS NOT DISTINCT (gateway, gateway_account, gateway_event_id)
  `.execute(db);
}

/** Back to one row per gateway event id (fails while two accounts hold the same event id). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE inbox DROP CONSTRAINT inbox_gateway_account_event_key`.execute(db);
  await sql`ALTER TABLE inbox ADD CONSTRAINT inbox_gateway_gateway_event_id_key UNIQUE (gateway, gateway_event_id)`.execute(
    db,
  );
}
