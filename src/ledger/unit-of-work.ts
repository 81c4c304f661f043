import { type Kysely, sql } from 'kysely';
import type { Database, InvoiceRow, TransactionRow } from '../db/schema.ts';
import { noteEffect } from '../effects.ts';
import { type EntryInput, writeEntries } from './journal.ts';

/** Advisory lock key guarding the order in which journal entries and activities become visible. */
const SEQUENCE_LOCK = 0x6c656467; // "ledg"

/** Writes a batch of collected items inside `trx`, in the order collected (one statement). */
export type BatchWriter<T> = (work: UnitOfWork, items: T[]) => Promise<unknown>;

/** The rows a unit of work can lock ahead, by table. */
export interface LockableRows {
  invoices: InvoiceRow;
  transactions: TransactionRow;
}

/**
 * The columns a unit may change through `UnitOfWork.update`, per table, with their SQL types (the
 * element types of the arrays a deferring unit's batch `UPDATE … FROM unnest` binds).
 */
const UPDATABLE = {
  transactions: {
    status: 'text',
    gateway_transaction_id: 'text',
    amount_captured: 'bigint',
    failure_code: 'text',
    failure_message: 'text',
    updated_at: 'timestamptz',
  },
  invoices: {
    amount_paid: 'bigint',
    amount_due: 'bigint',
    total: 'bigint',
    rounding: 'bigint',
    proration_credited: 'bigint',
    proration_tax_credited: 'bigint',
    status: 'text',
    paid_at: 'timestamptz',
    charge_at: 'timestamptz',
    updated_at: 'timestamptz',
  },
} as const;

/** Changes `UnitOfWork.update` can make to a locked row of `K` (columns as in `UPDATABLE`). */
export type RowChanges<K extends keyof LockableRows> = Partial<
  Pick<LockableRows[K], keyof (typeof UPDATABLE)[K] & keyof LockableRows[K]>
>;

/**
 * Who acts, named on every activity a unit of work records. Data, not ambient context: the edge that
 * starts the work chooses it and passes it to each function that opens a unit, as its parameter
 * right after the database (`finalizeInvoice(db, actor, id)`). An API key id (`key_…`: the key of a
 * `/v1` request, or the admin key behind a dashboard action), `api` (a `/v1` request without a key),
 * `webhook`, `scheduler`, `worker` or `system` (a queue's handler: its row's actor in the worker
 * table), `cli` (a command), `system` (also migrations).
 */
export type Actor = `key_${string}` | 'api' | 'webhook' | 'scheduler' | 'worker' | 'cli' | 'system';

/** How to open a unit of work. */
export interface UnitOfWorkOptions {
  /** Who acts: every activity recorded in the unit carries it. */
  actor: Actor;
  /**
   * Collect the row updates (`UnitOfWork.update`), journal entries and activities the unit writes,
   * and write them at its end, one statement per table and column set for the rows, then one for the
   * entries and one for the activities, still inside the transaction: for batch work such as applying
   * a hundred webhooks in one transaction. Default: each is written when made.
   */
  defer?: boolean;
}

/**
 * One database transaction that may post to the ledger and record activities, with what belongs to
 * it and used to be kept aside keyed by the transaction: the Kysely transaction (`trx`), whether it
 * holds the ledger writers' shared lock, the journal entries and activities it defers to its end, the
 * rows it locked ahead (handed out once each), the changes it made to locked rows and has not
 * written yet, and the actor its activities name. Opened by `inUnitOfWork`, passed explicitly to the
 * functions that write (`postEntry(work, …)`, `recordActivity(work, …)`, `lockInvoice(work, id)`,
 * `work.update(…)`); functions that only read take `work.trx`.
 *
 * In a deferring unit a changed invoice or transaction is written at the unit's end, so until then
 * PostgreSQL still has it as it was: the unit answers for it (`take`, `findHeld` give the changed
 * row), and code about to read or write those tables with its own statements calls `writeRows`
 * (or `forgetHeld`) first.
 */
export class UnitOfWork {
  /** The transaction: every statement of the unit runs on it. */
  readonly trx: Kysely<Database>;
  /** The author of the activities the unit records. */
  readonly actor: Actor;
  #joined = false;
  /** Per writer, the items deferred to the end; undefined when the unit writes at once. */
  readonly #deferred: Map<BatchWriter<never>, unknown[]> | undefined;
  readonly #held = new Map<keyof LockableRows, Map<string, LockableRows[keyof LockableRows]>>();
  /** Steps run last, just before the commit (`atEnd`). */
  readonly #atEnd: (() => Promise<void>)[] = [];
  /** Rows changed and not written yet (a deferring unit), as they now are, by table and id. */
  readonly #changed = new Map<keyof LockableRows, Map<string, LockableRows[keyof LockableRows]>>();
  /** Their changes, merged per row, by table and id. */
  readonly #unwritten = new Map<keyof LockableRows, Map<string, Record<string, unknown>>>();
  /** Savepoints made so far (`attempt`), naming the next. */
  #savepoints = 0;

  /**
   * A unit of work in `trx`, a transaction already open: `inUnitOfWork` opens both; construct one
   * directly only around a transaction opened elsewhere (a migration's), and join the ledger's writers
   * before any row lock. A deferring unit writes its journal entries first, then the rest.
   */
  constructor(trx: Kysely<Database>, options: { actor: Actor; defer?: boolean }) {
    this.trx = trx;
    this.actor = options.actor;
    this.#deferred = options.defer ? new Map([[writeEntries as BatchWriter<never>, []]]) : undefined;
  }

  /**
   * Joins the ledger's writers (a shared advisory lock held until the transaction ends), once per
   * unit: `inUnitOfWork` does it before `fn` runs, so before any row lock. Readers of the entry
   * sequence (`quiesceLedgerWriters`) wait for every writer that started before them, so a consumer
   * tailing `sequence` never skips an entry committed late.
   */
  async joinLedgerWriters(): Promise<void> {
    if (this.#joined) return;
    await sql`SELECT pg_advisory_xact_lock_shared(${SEQUENCE_LOCK})`.execute(this.trx);
    this.#joined = true;
  }

  /**
   * Collects `items` for `write` when the unit defers (`defer: true`); `false` when it does not (the
   * caller writes them now). Items of one writer are written together, in the order collected.
   */
  defer<T>(write: BatchWriter<T>, items: T[]): boolean {
    if (!this.#deferred) return false;
    const pending = this.#deferred.get(write as BatchWriter<never>);
    if (pending) pending.push(...items);
    else this.#deferred.set(write as BatchWriter<never>, [...items]);
    return true;
  }

  /**
   * Runs `step` at the end of the unit, after what it deferred is written, just before the commit, in
   * the order registered: for a lock every unit of a kind contends for, taken as late as possible so
   * it is held as briefly as possible (an invoice number's counter row, billing/invoice-numbers.ts).
   */
  atEnd(step: () => Promise<void>): void {
    this.#atEnd.push(step);
  }

  /**
   * Writes what was deferred: the changed rows (`writeRows`), then the other writers' items, writer
   * by writer in the order they were registered; then runs the `atEnd` steps.
   */
  async flush(): Promise<void> {
    await this.writeRows();
    for (const [write, items] of this.#deferred ?? []) {
      if (items.length === 0) continue;
      const batch = items.splice(0);
      await (write as BatchWriter<unknown>)(this, batch);
    }
    for (const step of this.#atEnd.splice(0)) await step();
  }

  /**
   * Writes, now, the changed rows (`writeRows`) and the journal entries the unit deferred, still in
   * its transaction (a unit that does not defer has written them already: nothing to do): before a
   * statement of the unit that reads balances its own entries move (billing/customer-credit.ts
   * `availableCredit`), which would otherwise miss them. Activities and `atEnd` steps stay deferred;
   * an entry posted later in the unit is deferred again, written at its end.
   */
  async writeLedger(): Promise<void> {
    await this.writeRows();
    const entries = this.#deferred?.get(writeEntries as BatchWriter<never>);
    if (!entries || entries.length === 0) return;
    await writeEntries(this, entries.splice(0) as EntryInput[]);
  }

  /** Holds `rows` of `table`, which the unit has just locked (FOR UPDATE) and not changed. */
  hold<K extends keyof LockableRows>(table: K, rows: readonly LockableRows[K][]): void {
    const held = this.#held.get(table) ?? new Map();
    for (const row of rows) held.set(row.id, row);
    this.#held.set(table, held);
  }

  /**
   * The held row `id` of `table`, removed from the held rows (a row taken may then be changed, so a
   * later lock of it asks PostgreSQL again), or the row as the unit changed it and has not written it
   * yet (left with the unit); undefined when neither (lock it yourself).
   */
  take<K extends keyof LockableRows>(table: K, id: string): LockableRows[K] | undefined {
    // A row changed and not written yet stays with the unit: PostgreSQL does not have it as it is.
    const changed = this.#changed.get(table)?.get(id) as LockableRows[K] | undefined;
    if (changed) return changed;
    const held = this.#held.get(table);
    const row = held?.get(id) as LockableRows[K] | undefined;
    if (row) held?.delete(id);
    return row;
  }

  /**
   * A row of `table` matching `test` among those the unit changed and has not written, else among
   * the held ones (left held: a read before the lock that takes it).
   */
  findHeld<K extends keyof LockableRows>(
    table: K,
    test: (row: LockableRows[K]) => boolean,
  ): LockableRows[K] | undefined {
    for (const rows of [this.#changed.get(table), this.#held.get(table)]) {
      for (const row of rows?.values() ?? []) {
        if (test(row as LockableRows[K])) return row as LockableRows[K];
      }
    }
    return undefined;
  }

  /** Whether the unit has changed rows it has not written yet (then a read of their table must `writeRows` first). */
  get hasUnwrittenRows(): boolean {
    return this.#unwritten.size > 0;
  }

  /**
   * Changes `row` of `table`, which the unit has locked (FOR UPDATE, through `lockInvoice`,
   * `lockTransactionsAhead`, …), and returns it changed. A deferring unit keeps the change and writes
   * it at its end (or at `writeRows`), merged with the row's other changes: until then `take` and
   * `findHeld` answer with the changed row. Otherwise it is written now (one statement).
   */
  async update<K extends keyof LockableRows>(
    table: K,
    row: LockableRows[K],
    changes: RowChanges<K>,
  ): Promise<LockableRows[K]> {
    const set = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
    // Changed before and not written: the unit's copy is the row as it is.
    const current = (this.#changed.get(table)?.get(row.id) as LockableRows[K] | undefined) ?? row;
    const updated = { ...current, ...set } as LockableRows[K];
    if (!this.#deferred) {
      const assignments = Object.entries(set).map(([column, value]) => sql`${sql.ref(column)} = ${value}`);
      await sql`UPDATE ${sql.table(table)} SET ${sql.join(assignments)} WHERE id = ${row.id}`.execute(
        this.trx,
      );
      return updated;
    }
    const unwritten = this.#unwritten.get(table) ?? new Map<string, Record<string, unknown>>();
    unwritten.set(row.id, { ...unwritten.get(row.id), ...set });
    this.#unwritten.set(table, unwritten);
    const changed = this.#changed.get(table) ?? new Map();
    changed.set(row.id, updated);
    this.#changed.set(table, changed);
    this.#held.get(table)?.delete(row.id);
    return updated;
  }

  /**
   * Writes the changes `update` kept: per table, one `UPDATE … FROM unnest(…)` for the rows whose
   * changes name the same columns (one array per column, so the statement's text does not depend on
   * the number of rows). PostgreSQL then has the rows as the unit does, and the unit stops answering
   * for them: a later lock asks PostgreSQL.
   */
  async writeRows(): Promise<void> {
    for (const [table, rows] of this.#unwritten) {
      const byColumns = new Map<
        string,
        { columns: string[]; ids: string[]; changes: Record<string, unknown>[] }
      >();
      for (const [id, changes] of rows) {
        const columns = Object.keys(changes).sort();
        const key = columns.join(',');
        const group = byColumns.get(key) ?? { columns, ids: [], changes: [] };
        group.ids.push(id);
        group.changes.push(changes);
        byColumns.set(key, group);
      }
      const types: Record<string, string> = UPDATABLE[table];
      const typeOf = (column: string): string => {
        const type = types[column];
        if (!type) throw new Error(`${table}.${column} is not a column a unit of work updates`);
        return type;
      };
      for (const { columns, ids, changes } of byColumns.values()) {
        await sql`
          UPDATE ${sql.table(table)} AS t
          SET ${sql.join(columns.map((c) => sql`${sql.ref(c)} = u.${sql.ref(c)}`))}
          FROM unnest(${ids}::text[], ${sql.join(
            columns.map((c) => sql`${changes.map((change) => change[c] ?? null)}::${sql.raw(typeOf(c))}[]`),
          )}) AS u (id, ${sql.join(columns.map((c) => sql.ref(c)))})
          WHERE t.id = u.id
        `.execute(this.trx);
      }
    }
    this.#unwritten.clear();
    this.#changed.clear();
  }

  /**
   * Runs `step` inside a savepoint of the unit's transaction, so that when it throws, what it did is
   * undone and the unit goes on as if it had not run: its statements rolled back (the row locks it
   * took released, as PostgreSQL does at `ROLLBACK TO SAVEPOINT`), the `atEnd` steps it registered
   * dropped (an invoice it finalized is not numbered: the numbers stay gap-free) and the rows it
   * held forgotten. Only in a unit that writes at once: a deferring unit (`defer: true`) keeps rows
   * and entries in memory that a savepoint cannot take back, so there `step` runs as it is and what
   * it throws is thrown. For work that must not stop the rest of the unit when it fails (a pending
   * add-on charge that keeps failing, renewal.ts `renewLocked` with `'try'`).
   * @returns `{ ok: true, value }` when `step` resolved, `{ ok: false, error }` when it threw (rolled back)
   * @throws what `step` throws, in a deferring unit only
   */
  async attempt<T>(step: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    if (this.#deferred) return { ok: true, value: await step() };
    const name = `attempt_${++this.#savepoints}`;
    const atEnd = this.#atEnd.length;
    const held = new Map([...this.#held].map(([table, rows]) => [table, new Map(rows)] as const));
    await sql`SAVEPOINT ${sql.raw(name)}`.execute(this.trx);
    try {
      const value = await step();
      await sql`RELEASE SAVEPOINT ${sql.raw(name)}`.execute(this.trx);
      return { ok: true, value };
    } catch (error) {
      await sql`ROLLBACK TO SAVEPOINT ${sql.raw(name)}`.execute(this.trx);
      await sql`RELEASE SAVEPOINT ${sql.raw(name)}`.execute(this.trx);
      this.#atEnd.splice(atEnd);
      this.#held.clear();
      for (const [table, rows] of held) this.#held.set(table, rows);
      return { ok: false, error };
    }
  }

  /**
   * Writes the changed rows (`writeRows`) and drops every held row (their locks stay until the
   * transaction ends): before work in the unit that reads or changes invoices or transactions with
   * its own statements.
   */
  async forgetHeld(): Promise<void> {
    await this.writeRows();
    this.#held.clear();
  }
}

/**
 * Runs `fn` in a new transaction, as one unit of work that has joined the ledger's writers before
 * `fn` runs any statement: the one way to open a transaction that may record an activity or post a
 * journal entry. Joining first, before any row lock or write, keeps a writer from holding a row that
 * another writer waits for while it queues for the shared lock behind a reader of the sequence (a
 * cycle PostgreSQL breaks only after `deadlock_timeout`, by reordering the queue or aborting one of
 * them with 40P01). Readers of the sequence (`quiesceLedgerWriters`) open plain transactions.
 * With `defer`, what the unit deferred is written once `fn` resolves, before the commit. The commit
 * is noted (`noteEffect`, effects.ts) before it is asked for.
 * @returns what `fn` returns; the transaction commits when it resolves and rolls back when it throws
 */
export function inUnitOfWork<T>(
  db: Kysely<Database>,
  options: UnitOfWorkOptions,
  fn: (work: UnitOfWork) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const work = new UnitOfWork(trx, options);
    await work.joinLedgerWriters();
    const result = await fn(work);
    await work.flush();
    // The commit is asked for now: a request watching its effects may have changed the books.
    noteEffect();
    return result;
  });
}

/**
 * Runs `fn` as `inUnitOfWork` does, then rolls the transaction back whatever `fn` did: a preview that
 * computes what a write would do by doing it (the same code, the same figures) and keeps none of it.
 * Nothing deferred is written and no `atEnd` step runs; only values that outlive a rollback remain
 * (the `bigserial` sequences of entries and activities skip the numbers it took, as after any
 * transaction that failed).
 * @returns what `fn` returns; what `fn` throws is thrown (the transaction rolled back either way)
 */
export async function inRolledBackUnitOfWork<T>(
  db: Kysely<Database>,
  options: UnitOfWorkOptions,
  fn: (work: UnitOfWork) => Promise<T>,
): Promise<T> {
  const trx = await db.startTransaction().execute();
  try {
    const work = new UnitOfWork(trx, options);
    await work.joinLedgerWriters();
    return await fn(work);
  } finally {
    await trx.rollback().execute();
  }
}

/**
 * Waits until no ledger writer is in flight (exclusive advisory lock until `trx` ends), so entries and
 * activities read afterwards in `trx` form a gap-free prefix of their sequences.
 */
export async function quiesceLedgerWriters(trx: Kysely<Database>): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${SEQUENCE_LOCK})`.execute(trx);
}
