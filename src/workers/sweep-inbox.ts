import { pruneIdempotencyKeys } from '../idempotency/keys.ts';
import { abandonOrphanedEvents, pruneInboxBodies, pruneInboxRows, sweepStaleInbox } from '../inbox/replay.ts';
import type { JobHandler } from './context.ts';

/** A webhook still unprocessed this long after it arrived has lost its job: the sweep re-enqueues it. */
export const STALE_INBOX_SECONDS = 600;

/**
 * `inbox.sweep` (every five minutes): re-enqueues webhooks whose job was lost
 * ({@link STALE_INBOX_SECONDS}), gives webhooks whose dead letter expired their final status
 * (`exception`), drops raw bodies past `INBOX_BODY_RETENTION_DAYS` and finished rows past
 * `INBOX_ROW_RETENTION_DAYS`, and deletes idempotency keys past `IDEMPOTENCY_KEY_TTL_HOURS`.
 */
export const sweepInbox: JobHandler = async (_jobs, { db, boss, config, log, actor }) => {
  const ids = await sweepStaleInbox(db, boss, STALE_INBOX_SECONDS);
  if (ids.length) log.warn({ count: ids.length }, 'inbox.sweep re-enqueued webhooks whose job was lost');
  const abandoned = await abandonOrphanedEvents(db, actor);
  if (abandoned.length)
    log.warn({ inboxIds: abandoned }, 'inbox.sweep: webhooks whose dead letter expired are exceptions now');
  const pruned = await pruneInboxBodies(db, config.INBOX_BODY_RETENTION_DAYS, new Date());
  if (pruned) log.info({ count: pruned }, 'inbox.sweep dropped raw bodies past the retention');
  const deleted = await pruneInboxRows(db, config.INBOX_ROW_RETENTION_DAYS, new Date());
  if (deleted) log.info({ count: deleted }, 'inbox.sweep deleted finished rows past the row retention');
  const expired = await pruneIdempotencyKeys(db, config.IDEMPOTENCY_KEY_TTL_HOURS, new Date());
  if (expired) log.info({ count: expired }, 'inbox.sweep deleted expired idempotency keys');
};
