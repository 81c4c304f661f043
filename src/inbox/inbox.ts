import type { Kysely } from 'kysely';
import type { Database, InboxRow, InboxStatus } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';

/** @throws NotFoundError when there is no inbox event `id` */
export async function getInboxEvent(db: Kysely<Database>, id: string): Promise<InboxRow> {
  const row = await db.selectFrom('inbox').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('event', id);
  return row;
}

/**
 * Sets an inbox event's processing status and a short outcome (`applied`, `duplicate`, `stale`,
 * `ignored: …`, the error of a retry). Terminal statuses stamp `processed_at`.
 */
export async function markInboxEvent(
  trx: Kysely<Database>,
  id: string,
  status: InboxStatus,
  outcome: string,
): Promise<void> {
  const terminal = status !== 'retrying' && status !== 'received';
  await trx
    .updateTable('inbox')
    .set((eb) => ({
      status,
      outcome: terminal ? outcome : null,
      last_error: terminal ? null : outcome,
      attempts: eb('attempts', '+', 1),
      processed_at: terminal ? new Date() : null,
    }))
    .where('id', '=', id)
    .execute();
}
