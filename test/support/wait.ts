import type { PgBoss } from 'pg-boss';

/**
 * Resolves with `check()`'s first truthy value, polling every 50 ms.
 * @throws when `timeoutMs` passes first, with `what` in the message
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
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
