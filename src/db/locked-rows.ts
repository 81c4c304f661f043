import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * Rows a transaction locked ahead of the work that uses them: batch work locks every row it is about
 * to change in one `SELECT … ORDER BY id FOR UPDATE` instead of one statement a row, and the code that
 * would lock a row on its own takes it from here. Each row is handed out once: a row taken may then be
 * changed by the transaction, so a later lock of it asks PostgreSQL again. `forget` drops the rest
 * before work that changes rows without taking them. Outside a transaction that locked ahead, nothing
 * is held and callers lock as usual.
 */
export class LockedRows<R extends { id: string }> {
  readonly #held = new WeakMap<Kysely<Database>, Map<string, R>>();

  /** Holds `rows`, which `trx` has just locked (FOR UPDATE) and not changed. */
  hold(trx: Kysely<Database>, rows: readonly R[]): void {
    const held = this.#held.get(trx) ?? new Map<string, R>();
    for (const row of rows) held.set(row.id, row);
    this.#held.set(trx, held);
  }

  /** The held row `id`, removed from the held rows; undefined when none is held (lock it yourself). */
  take(trx: Kysely<Database>, id: string): R | undefined {
    const held = this.#held.get(trx);
    const row = held?.get(id);
    if (row) held?.delete(id);
    return row;
  }

  /** A held row matching `test`, left held (a read before the lock that takes it). */
  find(trx: Kysely<Database>, test: (row: R) => boolean): R | undefined {
    for (const row of this.#held.get(trx)?.values() ?? []) if (test(row)) return row;
    return undefined;
  }

  /** Drops every row held for `trx` (their locks stay until it ends). */
  forget(trx: Kysely<Database>): void {
    this.#held.delete(trx);
  }
}
