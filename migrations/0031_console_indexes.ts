import { type Kysely, sql } from 'kysely';

/**
 * Indexes for the operators' console's inbox filters (PRODUCT.md §15: every page answers in under
 * 300 ms with a million inbox rows; `npm run bench:console` measures it). The inbox pages read newest
 * first by id; a filter matching few rows would otherwise scan the whole table backwards:
 * - `inbox_event_type`: by type (`?type=`), newest first.
 * - `inbox_gateway_account`: by gateway account (`?gateway_account=gwa_…`), newest first; only the
 *   rows of a gateway account (`gwa_…`), so a delivery to a default account adds no entry.
 * - `inbox_received_at`: by the time received (`?received_from=` / `received_to=`).
 * - `inbox_exception`: the events that ended as an exception (a partial index of their ids: small),
 *   which the console lists and counts before a *Replay all matching*.
 * - `inbox_gateway_ids`: the gateway ids of charges, refunds and disputes its normalised events name
 *   (`inboxGatewayIds`, src/inbox/customer.ts), for the deliveries about one customer
 *   (`?customer=`); written by the worker's update that stores the events (GIN, fast update with a
 *   pending list of at most 256 kB, which every search reads linearly until it is merged), never by
 *   the ingest INSERT (`events` is null then).
 * - `transactions_customer`: a customer's transactions, whose gateway ids that filter looks up.
 * The ingest INSERT adds an entry to the first three; the bench's ingest figures include them.
 *
 * Built in the migration's transaction, which blocks inbox writes while it runs. On a large inbox,
 * create them by hand with `CREATE INDEX CONCURRENTLY` (same names and definitions) before deploying:
 * the migration then keeps them (`IF NOT EXISTS`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX IF NOT EXISTS inbox_event_type ON inbox (event_type, id)`.execute(db);
  await sql`
    CREATE INDEX IF NOT EXISTS inbox_gateway_account ON inbox (gateway_account, id)
      WHERE gateway_account IS NOT NULL
  `.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS inbox_received_at ON inbox (received_at)`.execute(db);
  await sql`
    CREATE INDEX IF NOT EXISTS inbox_gateway_ids ON inbox USING gin ((
      jsonb_path_query_array(events, '$[*].gatewayTransactionId') ||
      jsonb_path_query_array(events, '$[*].gatewayRefundId') ||
      jsonb_path_query_array(events, '$[*].gatewayDisputeId')
    )) WITH (gin_pending_list_limit = 256) WHERE events IS NOT NULL
  `.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS transactions_customer ON transactions (customer_id)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS inbox_exception ON inbox (id) WHERE status = 'exception'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS inbox_exception`.execute(db);
  await sql`DROP INDEX IF EXISTS inbox_gateway_ids`.execute(db);
  await sql`DROP INDEX IF EXISTS transactions_customer`.execute(db);
  await sql`DROP INDEX IF EXISTS inbox_received_at`.execute(db);
  await sql`DROP INDEX IF EXISTS inbox_gateway_account`.execute(db);
  await sql`DROP INDEX IF EXISTS inbox_event_type`.execute(db);
}
