import { type Kysely, sql } from 'kysely';
import type { Database, InboxRow, InboxStatus, StoredEvent } from '../db/schema.ts';
import type { PaymentEvent } from '../gateways/types.ts';

/** The inbox rows with these ids (missing ids are left out). */
export async function getInboxEvents(db: Kysely<Database>, ids: string[]): Promise<InboxRow[]> {
  if (ids.length === 0) return [];
  // One array parameter rather than an IN list: the same statement text for any batch, planned cheaply.
  return db.selectFrom('inbox').selectAll().where('id', '=', sql<string>`ANY(${ids}::text[])`).execute();
}

/**
 * The normalised events as the inbox keeps them (no raw payload; amounts as decimal strings): a
 * settlement line by its id, kind and amounts, a payout by its id, status, amount and how many lines
 * it listed (its lines are in `settlement_lines`).
 */
function storedEvents(events: readonly PaymentEvent[]): StoredEvent[] {
  return events.map(
    ({
      raw: _raw,
      gateway: _gateway,
      gatewayEventId: _id,
      amount,
      occurredAt,
      settlementLine,
      payout,
      ...rest
    }) => ({
      ...rest,
      amount: amount.toString(),
      occurredAt: occurredAt.toISOString(),
      ...(settlementLine && {
        settlementLine: {
          gatewayLineId: settlementLine.gatewayLineId,
          kind: settlementLine.kind,
          currency: settlementLine.currency,
          gross: settlementLine.gross.toString(),
          fee: settlementLine.fee.toString(),
          net: settlementLine.net.toString(),
        },
      }),
      ...(payout && {
        payout: {
          gatewayPayoutId: payout.gatewayPayoutId,
          status: payout.status,
          currency: payout.currency,
          amount: payout.amount.toString(),
          lines: payout.lines?.length ?? null,
        },
      }),
    }),
  );
}

/** One row's processing result for {@link markInboxEvents}. */
export interface InboxMark {
  id: string;
  status: InboxStatus;
  outcome: string;
  /** The row's normalised events, when it was normalised; kept as they were otherwise. */
  events?: readonly PaymentEvent[];
  /**
   * Frees the row's event id once it is done (processed, ignored or exception) by appending
   * `@<inbox id>`, so a later delivery with the same event id is stored as a new row: for hints whose
   * event id names what the caller pointed at (`WebhookVerifier.releasesEventIds`).
   */
  releaseEventId?: boolean;
}

/**
 * Sets inbox events' processing status and a short outcome (`applied`, `duplicate`, `stale`,
 * `ignored: …`; for `retrying`, the reason it retries) and their normalised events, in one
 * statement. Terminal statuses stamp `processed_at` (and free the event id of a mark that asks, in
 * the same statement); every mark counts an attempt.
 */
export async function markInboxEvents(trx: Kysely<Database>, marks: readonly InboxMark[]): Promise<void> {
  if (marks.length === 0) return;
  const events = marks.map((m) => (m.events ? JSON.stringify(storedEvents(m.events)) : null));
  // One array per column (unnest): the same statement text for every batch, prepared once.
  await sql`
    UPDATE inbox SET
      status = v.status,
      outcome = CASE WHEN v.status = 'retrying' THEN NULL ELSE v.outcome END,
      last_error = CASE WHEN v.status = 'retrying' THEN v.outcome ELSE NULL END,
      processed_at = CASE WHEN v.status = 'retrying' THEN NULL ELSE now() END,
      events = COALESCE(v.events::jsonb, inbox.events),
      attempts = attempts + 1,
      gateway_event_id = CASE
        WHEN v.release AND v.status <> 'retrying' AND strpos(inbox.gateway_event_id, '@') = 0
          THEN inbox.gateway_event_id || '@' || inbox.id
        ELSE inbox.gateway_event_id END
    FROM unnest(
      ${marks.map((m) => m.id)}::text[], ${marks.map((m) => m.status)}::text[], ${marks.map((m) => m.outcome)}::text[],
      ${events}::text[], ${marks.map((m) => m.releaseEventId === true)}::boolean[]
    ) AS v(id, status, outcome, events, release)
    WHERE inbox.id = v.id
  `.execute(trx);
}
