import { type Kysely, sql } from 'kysely';

/**
 * Outbound events (PRODUCT.md §14, src/outbound/): the endpoints internal systems register
 * (`we_…`: a URL, the event types it takes, its `whsec_…` signing secret encrypted with
 * BILLHOOK_SECRET_KEY like gateway credentials: IV, tag, ciphertext, and the key's id), the events
 * billhook derived from its activities (`evt_…`, one per activity, the exact body sent), one delivery
 * per event and endpoint (`wdl_…`, updated at each attempt), and the dispatcher's cursor: the last
 * activity `sequence` it read. The cursor starts at the newest activity, so an existing deployment
 * does not send its history.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE webhook_endpoints (
      id text PRIMARY KEY,
      url text NOT NULL,
      description text,
      enabled_events text[] NOT NULL,
      secret bytea NOT NULL,
      secret_key_id text NOT NULL,
      disabled_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE outbound_events (
      id text PRIMARY KEY,
      activity_id text NOT NULL UNIQUE REFERENCES activities (id),
      type text NOT NULL,
      body text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE webhook_deliveries (
      id text PRIMARY KEY,
      endpoint_id text NOT NULL REFERENCES webhook_endpoints (id),
      event_id text NOT NULL REFERENCES outbound_events (id),
      event_type text NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'retrying', 'succeeded', 'failed')),
      attempts integer NOT NULL DEFAULT 0,
      last_status_code integer,
      last_error text,
      last_attempt_at timestamptz,
      delivered_at timestamptz,
      redelivery_of text REFERENCES webhook_deliveries (id),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
    CREATE TABLE outbound_cursor (
      id boolean PRIMARY KEY DEFAULT true CHECK (id),
      sequence bigint NOT NULL
    );
    INSERT INTO outbound_cursor (sequence) SELECT COALESCE(max(sequence), 0) FROM activities;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    DROP TABLE outbound_cursor;
    DROP TABLE webhook_deliveries;
    DROP TABLE outbound_events;
    DROP TABLE webhook_endpoints;
  `.execute(db);
}
