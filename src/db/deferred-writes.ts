import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * Rows that batch work collects per transaction and writes in one statement at its end instead of
 * one statement each: applying a hundred webhooks in one transaction records a hundred activities and
 * posts a hundred journal entries, two statements in all. Outside `around`, nothing is collected and
 * callers write at once.
 */
export class DeferredWrites<T> {
  readonly #pending = new WeakMap<Kysely<Database>, T[]>();
  readonly #write: (trx: Kysely<Database>, items: T[]) => Promise<unknown>;

  /** @param write writes collected items inside the transaction, in the order collected */
  constructor(write: (trx: Kysely<Database>, items: T[]) => Promise<unknown>) {
    this.#write = write;
  }

  /** Collects `items` when `trx` is inside `around`; `false` when it is not (write them now). */
  collect(trx: Kysely<Database>, items: T[]): boolean {
    const pending = this.#pending.get(trx);
    if (!pending) return false;
    pending.push(...items);
    return true;
  }

  /**
   * Runs `fn` (which changes state inside `trx`) collecting the items it writes, then writes them all,
   * still inside `trx`, before returning. If `fn` throws, nothing is written (the transaction rolls
   * back anyway).
   */
  async around<R>(trx: Kysely<Database>, fn: () => Promise<R>): Promise<R> {
    const pending: T[] = [];
    this.#pending.set(trx, pending);
    try {
      const result = await fn();
      if (pending.length > 0) await this.#write(trx, pending);
      return result;
    } finally {
      this.#pending.delete(trx);
    }
  }
}
