import type { PgBoss } from 'pg-boss';

/** A running test app's pg-boss with workers, and which of its queues have a job due now. */
export interface WakeableWorkers {
  boss: PgBoss;
  /** The queues with a job fetchable now (created or retry, its start_after passed). */
  due(): Promise<string[]>;
}

/** The test apps' workers that `waitFor` wakes while it waits (`wakeWhileWaiting`). */
const wakeable = new Set<WakeableWorkers>();

/** How often, while a test waits, the workers of queues with a job due are woken. */
const WAKE_EVERY_MS = 250;

/**
 * Has `waitFor` wake `workers` while it waits: a test app polls its queues seldom
 * (`QUEUE_POLL_INTERVAL_SECONDS`, test/support/app.ts), and a job that comes due by time (a retry,
 * a job sent with a delay, a sweep the cron sent) is fetched by pg-boss's own fetch when a test waits
 * for its effect, within `WAKE_EVERY_MS` of its start_after, instead of the poll's next tick.
 * @returns the function that stops it (before the app stops)
 */
export function wakeWhileWaiting(workers: WakeableWorkers): () => void {
  wakeable.add(workers);
  return () => wakeable.delete(workers);
}

/** The apps whose `due()` is still being read (not asked again until it answers). */
const asking = new Set<WakeableWorkers>();

/**
 * Wakes every registered app's workers of the queues that have a job due (an app stopping: none), in
 * the background: `waitFor` never waits for it, so a test that holds every connection of an app's
 * pool (locks, a stopped database) is not held up by the question.
 */
function wakeDueWorkers(): void {
  for (const workers of wakeable) {
    if (asking.has(workers)) continue;
    asking.add(workers);
    workers
      .due()
      .then((due) => {
        const queues = new Set(due);
        for (const worker of workers.boss.getWipData())
          if (queues.has(worker.name)) workers.boss.notifyWorker(worker.id);
      })
      .catch(() => undefined)
      .finally(() => asking.delete(workers));
  }
}

/**
 * Resolves with `check()`'s first truthy value, polling every 50 ms; every `WAKE_EVERY_MS` meanwhile
 * the running test apps' workers of queues with a job due fetch it (`wakeWhileWaiting`).
 * @throws when `timeoutMs` passes first, with `what` in the message
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let wakeAt = Date.now() + WAKE_EVERY_MS;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    if (Date.now() >= wakeAt) {
      wakeAt = Date.now() + WAKE_EVERY_MS;
      wakeDueWorkers();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Wakes `boss`'s workers of `queue` (this process's, as `startTestApp` runs them) so that they fetch
 * now instead of at their next poll: for a test that sends a job to a queue polled seldom (the inbox
 * sweep: every 30 s) and then waits for its effect.
 * @throws when no worker of `queue` runs on `boss`
 */
export function wakeWorkers(boss: PgBoss, queue: string): void {
  const workers = boss.getWipData().filter((worker) => worker.name === queue);
  if (workers.length === 0) throw new Error(`no worker of ${queue} runs here`);
  for (const worker of workers) boss.notifyWorker(worker.id);
}
