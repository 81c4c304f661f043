import type { RenewalPolicy } from '../billing/renewal.ts';
import type { Db } from '../db/database.ts';
import type { InboxRow, InboxStatus } from '../db/schema.ts';
import { type NewException, raiseException } from '../exceptions/exceptions.ts';
import type { AccountRegistry, GatewayRegistry } from '../gateways/registry.ts';
import { type PaymentEvent, WebhookPayloadError } from '../gateways/types.ts';
import { getInboxEvents, type InboxMark, markInboxEvents } from '../inbox/inbox.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { type ApplyResult, applyEvent, lockChargesAhead } from './apply.ts';

/** One stored webhook to process; `finalAttempt` when the queue will not retry it again. */
export interface ProcessRequest {
  inboxId: string;
  finalAttempt: boolean;
}

/**
 * How processing a stored webhook ended: done (`processed`, `ignored`, `exception`,
 * `already_done`), `retry` when its payment is not known yet (the queue retries with backoff), or
 * the error that stopped it (the queue retries).
 */
export type ProcessOutcome = 'processed' | 'ignored' | 'exception' | 'already_done' | 'retry' | Error;

/** Raised inside a batch when a row wrote before it found it must retry: the batch is redone row by row. */
class RowByRow extends Error {}

/** Raised for a lone row that wrote before it found it must retry: its transaction rolls back. */
class RetryLater extends Error {}

interface Prepared {
  request: ProcessRequest;
  row: InboxRow;
  events: PaymentEvent[];
  /** Its event id is freed once done (`WebhookVerifier.releasesEventIds`). */
  releaseEventId: boolean;
}

interface Decision {
  status: InboxStatus;
  outcome: string;
  exceptions: NewException[];
}

/**
 * What applying a row's events means for the row: processed, exception, or retrying. A row that must
 * retry after some of its events already wrote cannot keep those writes: it throws instead. Its
 * exceptions name the gateway account the delivery came for (`gateway_account`, null: the default).
 * A row one of whose events names another account's payment, refund or dispute (`otherAccount`: it
 * came in on the wrong account's route) is an exception at once, without retrying for its other
 * events (its events not found raise nothing: they are that other account's too). The inbox dedupes
 * per gateway account (migration 0044), so the same event delivered on the right account's route is
 * stored and applied whatever became of this copy.
 */
function decide(prepared: Prepared, results: ApplyResult[], alone: boolean): Decision {
  const { row, request } = prepared;
  const elsewhere = results.some((r) => r.kind === 'exception' && r.otherAccount === true);
  const missing = results.find((r) => r.kind === 'not_found');
  if (missing && !request.finalAttempt && !elsewhere) {
    if (results.some((r) => r.kind === 'applied'))
      throw alone ? new RetryLater(missing.message) : new RowByRow();
    return { status: 'retrying', outcome: missing.message, exceptions: [] };
  }
  const exceptions = results.flatMap((r): NewException[] =>
    r.kind === 'exception'
      ? [
          {
            kind: r.exception,
            gateway: row.gateway,
            gatewayAccount: row.gateway_account,
            inboxId: row.id,
            transactionId: r.transactionId,
            message: r.message,
            details: r.details,
          },
        ]
      : r.kind === 'not_found' && !elsewhere
        ? [
            {
              kind: 'unknown_entity',
              gateway: row.gateway,
              gatewayAccount: row.gateway_account,
              inboxId: row.id,
              message: r.message,
            },
          ]
        : [],
  );
  if (exceptions.length > 0)
    return { status: 'exception', outcome: exceptions.map((e) => e.kind).join(', '), exceptions };
  return { status: 'processed', outcome: results.map((r) => r.kind).join(', '), exceptions: [] };
}

/**
 * Applies the rows' events, raises their exceptions and marks them, in `work` (a deferring unit: the
 * journal entries and activities of the batch are written together before the rows are marked).
 */
async function applyRows(
  work: UnitOfWork,
  prepared: Prepared[],
  policy: RenewalPolicy | undefined,
): Promise<Decision[]> {
  const decisions: Decision[] = [];
  // The payments and invoices the batch's charges are about (their subscriptions first) are locked in
  // three statements, and its journal entries and activities are each written in one statement at
  // its end.
  await lockChargesAhead(
    work,
    prepared.flatMap((item) => item.events),
  );
  for (const item of prepared) {
    const results: ApplyResult[] = [];
    const context = {
      gatewayAccount: item.row.gateway_account,
      finalAttempt: item.request.finalAttempt,
      policy,
    };
    for (const event of item.events) results.push(await applyEvent(work, event, context));
    const decision = decide(item, results, prepared.length === 1);
    for (const exception of decision.exceptions) await raiseException(work, exception);
    decisions.push(decision);
  }
  await work.flush();
  await markInboxEvents(
    work.trx,
    prepared.map((item, i) => ({
      id: item.row.id,
      status: decisions[i]!.status,
      outcome: decisions[i]!.outcome,
      events: item.events,
      releaseEventId: item.releaseEventId,
    })),
  );
  return decisions;
}

const outcomeOf = (decision: Decision): ProcessOutcome =>
  decision.status === 'retrying' ? 'retry' : (decision.status as 'processed' | 'exception');

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/** One row in its own transaction (the fallback of a failed batch). */
async function processAlone(
  db: Db,
  actor: Actor,
  prepared: Prepared,
  policy: RenewalPolicy | undefined,
): Promise<ProcessOutcome> {
  try {
    const [decision] = await inUnitOfWork(db, { actor, defer: true }, (work) =>
      applyRows(work, [prepared], policy),
    );
    return outcomeOf(decision!);
  } catch (error) {
    if (!(error instanceof RetryLater)) return asError(error);
    await markInboxEvents(db, [{ id: prepared.row.id, status: 'retrying', outcome: error.message }]);
    return 'retry';
  }
}

/**
 * Processes stored webhooks ({@link processRows}), then marks each row that failed (an error
 * other than a payment not known yet: its gateway not configured, or not answering a lookup)
 * `retrying` with the error as its `last_error`, so it shows as failing rather than `received` and
 * the stale-inbox sweep leaves it to its job's retries and, after them, the dead-letter queue.
 * A row received by a gateway account (`gateway_account`) is normalised with that account's adapter
 * from `accounts` (a disabled account's too: its deliveries are still received, PRODUCT.md §12).
 * @param policy the configuration's renewal policy (`BILL_SUSPENDED_SUBSCRIPTIONS`), under which a
 * payment that reinstates its subscription resumes it (billing/reinstate.ts); default: not billed
 * @returns each request's outcome, in order
 */
export async function processInboxEvents(
  db: Db,
  actor: Actor,
  registry: GatewayRegistry,
  requests: ProcessRequest[],
  accounts?: AccountRegistry,
  policy?: RenewalPolicy,
): Promise<ProcessOutcome[]> {
  const outcomes = await processRows(db, actor, registry, requests, accounts, policy);
  const failed = requests.flatMap((request, i) => {
    const outcome = outcomes[i];
    return outcome instanceof Error
      ? [{ id: request.inboxId, status: 'retrying' as const, outcome: outcome.message }]
      : [];
  });
  await markInboxEvents(db, failed);
  return outcomes;
}

/**
 * Normalises each with its gateway's adapter (which may ask the gateway
 * where the payload is only a hint) and applies their events to payments and the ledger in ONE
 * transaction for the whole batch. Unknown event types are marked ignored; an unparseable body is an
 * exception. A row whose payment is not known yet is marked `retrying` and reported `retry`; on its
 * final attempt it becomes an `unknown_entity` exception instead, so nothing is silently dropped.
 * When the batch transaction fails (a conflict, a deadlock), each row is processed on its own.
 * A row whose verifier `releasesEventIds` has its event id freed in the statement marking it done.
 * @returns each request's outcome, in order
 */
async function processRows(
  db: Db,
  actor: Actor,
  registry: GatewayRegistry,
  requests: ProcessRequest[],
  accounts: AccountRegistry | undefined,
  policy: RenewalPolicy | undefined,
): Promise<ProcessOutcome[]> {
  const rows = new Map(
    (
      await getInboxEvents(
        db,
        requests.map((r) => r.inboxId),
      )
    ).map((row) => [row.id, row]),
  );
  const outcomes: ProcessOutcome[] = requests.map(() => 'already_done');
  const toApply: { index: number; prepared: Prepared }[] = [];
  const marks: (InboxMark & { exception?: NewException })[] = [];
  for (const [index, request] of requests.entries()) {
    const row = rows.get(request.inboxId);
    if (!row || row.status === 'processed' || row.status === 'ignored' || row.status === 'exception')
      continue;
    const verifier = row.gateway_account
      ? (await accounts?.adapterOf(row.gateway, row.gateway_account, { includeDisabled: true }))?.webhook
      : registry.get(row.gateway)?.webhook;
    const releaseEventId = verifier?.releasesEventIds === true;
    if (!verifier) {
      outcomes[index] = new Error(
        `gateway ${row.gateway}${row.gateway_account ? ` account ${row.gateway_account}` : ''} is not configured: cannot normalise ${row.id}`,
      );
      continue;
    }
    try {
      const events = await verifier.normalize(row.body ?? '');
      if (events.length === 0) {
        outcomes[index] = 'ignored';
        marks.push({
          id: row.id,
          status: 'ignored',
          outcome: `ignored: ${row.event_type} is not reconciled`,
          events,
          releaseEventId,
        });
      } else {
        toApply.push({ index, prepared: { request, row, events, releaseEventId } });
      }
    } catch (error) {
      if (error instanceof WebhookPayloadError) {
        outcomes[index] = 'exception';
        const exception: NewException = {
          kind: 'unparseable_payload',
          gateway: row.gateway,
          gatewayAccount: row.gateway_account,
          inboxId: row.id,
          message: error.message,
        };
        marks.push({ id: row.id, status: 'exception', outcome: error.message, exception, releaseEventId });
      } else {
        outcomes[index] = asError(error);
      }
    }
  }
  if (marks.length > 0) {
    await inUnitOfWork(db, { actor }, async (work) => {
      for (const mark of marks) if (mark.exception) await raiseException(work, mark.exception);
      await markInboxEvents(work.trx, marks);
    });
  }
  if (toApply.length === 0) return outcomes;
  try {
    const decisions = await inUnitOfWork(db, { actor, defer: true }, (work) =>
      applyRows(
        work,
        toApply.map((t) => t.prepared),
        policy,
      ),
    );
    for (const [i, { index }] of toApply.entries()) outcomes[index] = outcomeOf(decisions[i]!);
  } catch (error) {
    if (toApply.length === 1 && !(error instanceof RetryLater)) {
      outcomes[toApply[0]!.index] = asError(error);
    } else {
      for (const { index, prepared } of toApply)
        outcomes[index] = await processAlone(db, actor, prepared, policy);
    }
  }
  return outcomes;
}
