import type { Db } from '../db/database.ts';
import type { GatewayRegistry } from '../gateways/registry.ts';
import { type PaymentEvent, WebhookPayloadError } from '../gateways/types.ts';
import { getInboxEvent, markInboxEvent } from '../inbox/inbox.ts';
import { type ApplyResult, applyEvent } from './apply.ts';
import { raiseException } from './exceptions.ts';

/** Raised when an event's entity is not known yet: the job is retried with backoff. */
export class EntityNotFoundYet extends Error {
  override name = 'EntityNotFoundYet';
}

/** How processing an inbox event ended. */
export type ProcessOutcome = 'processed' | 'ignored' | 'exception' | 'already_done';

/**
 * Processes one stored webhook: normalises it with its gateway's adapter and applies every event in
 * one transaction. Unknown event types are marked ignored. When an entity is not known yet, the row
 * is marked `retrying` and EntityNotFoundYet is thrown so the queue retries; on the final attempt
 * (`finalAttempt`) a reconciliation exception is raised instead, so nothing is silently dropped.
 * @throws EntityNotFoundYet (retry), or a database error (retry)
 */
export async function processInboxEvent(
  db: Db,
  registry: GatewayRegistry,
  inboxId: string,
  finalAttempt: boolean,
): Promise<ProcessOutcome> {
  const row = await getInboxEvent(db, inboxId);
  if (row.status === 'processed' || row.status === 'ignored' || row.status === 'exception')
    return 'already_done';
  const verifier = registry.get(row.gateway)?.webhook;
  if (!verifier) throw new Error(`gateway ${row.gateway} is not configured: cannot normalise ${inboxId}`);
  let events: PaymentEvent[];
  try {
    events = await verifier.normalize(row.body ?? '');
  } catch (error) {
    if (!(error instanceof WebhookPayloadError)) throw error;
    await db.transaction().execute(async (trx) => {
      await raiseException(trx, {
        kind: 'unparseable_payload',
        gateway: row.gateway,
        inboxId,
        message: error.message,
      });
      await markInboxEvent(trx, inboxId, 'exception', error.message);
    });
    return 'exception';
  }
  if (events.length === 0) {
    await markInboxEvent(db, inboxId, 'ignored', `ignored: ${row.event_type} is not reconciled`);
    return 'ignored';
  }
  const outcome = await db
    .transaction()
    .execute(async (trx) => {
      const results: ApplyResult[] = [];
      for (const event of events) results.push(await applyEvent(trx, event));
      const missing = results.find((r) => r.kind === 'not_found');
      if (missing && !finalAttempt) throw new EntityNotFoundYet(missing.message);
      const problems = results.filter((r) => r.kind === 'exception' || r.kind === 'not_found');
      for (const problem of problems) {
        await raiseException(trx, {
          kind: problem.kind === 'exception' ? problem.exception : 'unknown_entity',
          gateway: row.gateway,
          inboxId,
          transactionId: problem.kind === 'exception' ? problem.transactionId : undefined,
          message: problem.message,
        });
      }
      if (problems.length > 0) {
        await markInboxEvent(
          trx,
          inboxId,
          'exception',
          problems.map((p) => (p.kind === 'exception' ? p.exception : 'unknown_entity')).join(', '),
        );
        return 'exception' as const;
      }
      await markInboxEvent(trx, inboxId, 'processed', results.map((r) => r.kind).join(', '));
      return 'processed' as const;
    })
    .catch(async (error: unknown) => {
      if (error instanceof EntityNotFoundYet) await markInboxEvent(db, inboxId, 'retrying', error.message);
      throw error;
    });
  return outcome;
}
