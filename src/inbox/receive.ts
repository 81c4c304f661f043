import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { createPool, UNIQUE_VIOLATION } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { GatewayName } from '../gateways/types.ts';
import { QUEUES, type WebhookProcessJob } from '../queue/queues.ts';

/** A verified delivery to store. `body` is the raw body exactly as received (UTF-8). */
export interface Delivery {
  gateway: GatewayName;
  /** The gateway account (`gwa_…`) it came to; null or absent for the gateway's default account. */
  account?: string | null;
  eventId: string;
  eventType: string;
  body: string;
}

/** What receiving did: a new inbox row with its job, or nothing for a duplicate. */
export interface Receipt {
  id: string | undefined;
  duplicate: boolean;
}

/** Raised when too many deliveries are already waiting for the database: answered 503 with Retry-After. */
export class InboxBusy extends Error {
  override name = 'InboxBusy';
}

/** Tuning of the group commit. */
export interface InboxOptions {
  /** Most deliveries stored by one transaction. */
  maxBatch: number;
  /** Most transactions in flight at once. */
  maxInFlight: number;
  /** Most deliveries waiting for a transaction before new ones are refused (backpressure). */
  maxWaiting: number;
  /**
   * Most bytes (UTF-8) of bodies held before new deliveries are refused (backpressure): the bodies of
   * every delivery not answered yet, waiting for a transaction or in one.
   */
  maxWaitingBytes: number;
}

/**
 * At most 200 deliveries per transaction and two transactions in flight (more, smaller transactions
 * measured slower: each costs PostgreSQL a commit and a job); 5,000 waiting (`WEBHOOK_MAX_WAITING`)
 * and 64 MiB of bodies held (`WEBHOOK_MAX_WAITING_BYTES`).
 */
export const DEFAULT_INBOX_OPTIONS: InboxOptions = {
  maxBatch: 200,
  maxInFlight: 2,
  maxWaiting: 5000,
  maxWaitingBytes: 64 * 1024 * 1024,
};

/**
 * SQLSTATE classes of errors a row's own content causes (22 data exception, 23 integrity constraint
 * violation, 54 program limit exceeded, e.g. 54000 for an index row too large): a batch failing with
 * one is stored again row by row, so only the bad row's delivery fails.
 */
const ROW_ERROR_CLASSES = new Set(['22', '23', '54']);

function isRowError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.length === 5 && ROW_ERROR_CLASSES.has(code.slice(0, 2));
}

interface Waiting {
  delivery: Delivery;
  /** UTF-8 bytes of the delivery's body. */
  bytes: number;
  resolve(receipt: Receipt): void;
  reject(error: unknown): void;
}

/**
 * The inbox INSERT of `n` rows, run as a prepared statement named after it (so a connection holds at
 * most two per batch size, 400 with the default `maxBatch`). Plain, it fails with a unique violation
 * when any row is already stored; `skipStored`, it skips those rows and returns the ids it stored.
 */
const insertTexts = new Map<string, string>();
function insertStatement(
  n: number,
  skipStored: boolean,
  values: (string | null)[],
): pg.QueryConfig<(string | null)[]> {
  const name = `billhook_inbox_insert_${skipStored ? 'new_' : ''}${n}`;
  let text = insertTexts.get(name);
  if (text === undefined) {
    const rows = Array.from({ length: n }, (_, i) => {
      const p = i * 6;
      return `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}, $${p + 5}, $${p + 6})`;
    });
    text = `INSERT INTO inbox (id, gateway, gateway_account, gateway_event_id, event_type, body) VALUES ${rows.join(', ')}`;
    if (skipStored)
      text += ' ON CONFLICT (gateway, gateway_account, gateway_event_id) DO NOTHING RETURNING id';
    insertTexts.set(name, text);
  }
  return { name, text, values };
}

/** pg-boss's job INSERT texts, each run as a named prepared statement (planned once per connection). */
const jobStatementNames = new Map<string, string>();
function jobStatementName(text: string): string {
  let name = jobStatementNames.get(text);
  if (name === undefined) {
    name = `billhook_job_insert_${jobStatementNames.size}`;
    jobStatementNames.set(text, name);
  }
  return name;
}

/**
 * Stores verified deliveries durably, several per transaction (group commit): a transaction starts
 * once the event loop's turn is over (or when one in flight ends) and inserts every waiting
 * delivery's inbox row in one statement and one `webhook.process` job naming
 * them — rows and job commit together. A delivery whose gateway, gateway account and event id are already stored is
 * answered as a duplicate: no row, no job. A delivery is answered only after its transaction
 * committed. When the transaction fails because of a row's content (`ROW_ERROR_CLASSES`, e.g. an
 * event id too long for the index), each delivery of the batch is stored again in a transaction of
 * its own, so only the bad one fails; when it fails otherwise (the database away), every delivery in
 * it fails (the gateway retries).
 *
 * Statements go out on connections in node-postgres' pipeline mode, as prepared statements. A batch
 * is first stored in one round trip: BEGIN, the INSERT, pg-boss's job INSERT and COMMIT in one
 * socket write. When a delivery in it was already stored (the INSERT fails with a unique violation
 * and the transaction rolls back), the batch is stored again in two round trips: BEGIN with an INSERT
 * that skips stored rows, then the job naming the rows it stored, and COMMIT. Pipeline mode, the
 * corked stream and pg-boss's single job INSERT are library behaviour pinned by version: see
 * UPGRADING.md beside this file before bumping `pg` or `pg-boss`.
 */
export class Inbox {
  readonly #pool: pg.Pool;
  readonly #boss: PgBoss;
  readonly #options: InboxOptions;
  #waiting: Waiting[] = [];
  /** Bytes of the bodies of every delivery not answered yet (waiting or in a transaction in flight). */
  #heldBytes = 0;
  #inFlight = 0;
  #flushScheduled = false;

  /**
   * @param connectionString the database's `postgres://` URL; the inbox opens `maxInFlight`
   *   connections of its own (pipelined, so they are not shared with the Kysely pool)
   */
  constructor(connectionString: string, boss: PgBoss, options: Partial<InboxOptions> = {}) {
    this.#options = { ...DEFAULT_INBOX_OPTIONS, ...options };
    this.#pool = createPool({ connectionString, max: this.#options.maxInFlight, pipeline: true });
    this.#boss = boss;
  }

  /** Closes the inbox's connections once the transactions in flight have finished. */
  async close(): Promise<void> {
    await this.#pool.end();
  }

  /**
   * Stores one delivery with its job; resolves once committed.
   * @throws InboxBusy at once when `maxWaiting` deliveries are already waiting, or when this body
   *   would take the bytes held past `maxWaitingBytes`
   * @throws the database's error when the transaction fails (the caller answers 503)
   */
  receive(delivery: Delivery): Promise<Receipt> {
    if (this.#waiting.length >= this.#options.maxWaiting) {
      return Promise.reject(new InboxBusy(`${this.#waiting.length} deliveries are waiting for the database`));
    }
    const bytes = Buffer.byteLength(delivery.body, 'utf8');
    if (this.#heldBytes + bytes > this.#options.maxWaitingBytes) {
      return Promise.reject(
        new InboxBusy(`${this.#heldBytes} bytes of webhook bodies are waiting for the database`),
      );
    }
    this.#heldBytes += bytes;
    return new Promise<Receipt>((resolve, reject) => {
      this.#waiting.push({ delivery, bytes, resolve, reject });
      this.#scheduleFlush();
    });
  }

  /**
   * Flushes once the event loop has run the callbacks it is on: the deliveries that arrive in the
   * same turn share a transaction instead of the first taking a free one alone.
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#inFlight < this.#options.maxInFlight && this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, this.#options.maxBatch);
      this.#inFlight += 1;
      this.#commitOrSplit(batch).finally(() => {
        for (const waiting of batch) this.#heldBytes -= waiting.bytes;
        this.#inFlight -= 1;
        this.#flush();
      });
    }
  }

  /**
   * Commits `batch` and answers its deliveries. When the batch fails for a row's content, each
   * delivery is committed on its own (one after the other, on this transaction slot) and answered
   * with its own result.
   */
  async #commitOrSplit(batch: Waiting[]): Promise<void> {
    try {
      const receipts = await this.#commit(batch);
      for (const [i, waiting] of batch.entries())
        waiting.resolve(receipts[i] ?? { id: undefined, duplicate: true });
      return;
    } catch (error) {
      if (batch.length === 1 || !isRowError(error)) {
        for (const waiting of batch) waiting.reject(error);
        return;
      }
    }
    for (const waiting of batch) {
      try {
        const [receipt] = await this.#commit([waiting]);
        waiting.resolve(receipt ?? { id: undefined, duplicate: true });
      } catch (error) {
        waiting.reject(error);
      }
    }
  }

  async #commit(batch: Waiting[]): Promise<Receipt[]> {
    const ids = batch.map(() => newId('evt'));
    const values = batch.flatMap(({ delivery }, i) => [
      ids[i] as string,
      delivery.gateway,
      delivery.account ?? null,
      delivery.eventId,
      delivery.eventType,
      delivery.body,
    ]);
    const client = await this.#pool.connect();
    try {
      const stored = await this.#store(client, ids, values);
      client.release();
      return ids.map((id) =>
        stored.has(id) ? { id, duplicate: false } : { id: undefined, duplicate: true },
      );
    } catch (error) {
      // A connection whose transaction failed is not reused: it may be broken or mid-transaction.
      client.release(true);
      throw error;
    }
  }

  /** Stores the rows `values` (six per id) and their job; resolves to the ids stored. */
  async #store(client: pg.PoolClient, ids: string[], values: (string | null)[]): Promise<Set<string>> {
    try {
      client.connection.stream.cork();
      const begin = client.query('BEGIN');
      const insert = client.query(insertStatement(ids.length, false, values));
      await this.#commitWithJob(client, [begin, insert], { inboxIds: ids });
      return new Set(ids);
    } catch (error) {
      if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
    }
    client.connection.stream.cork();
    const begin = client.query('BEGIN');
    const insert = client.query<{ id: string }>(insertStatement(ids.length, true, values));
    client.connection.stream.uncork();
    const [, { rows }] = await Promise.all([begin, insert]);
    const stored = new Set(rows.map((row) => row.id));
    if (stored.size === 0) await client.query('ROLLBACK');
    else {
      client.connection.stream.cork();
      await this.#commitWithJob(client, [], { inboxIds: [...stored] });
    }
    return stored;
  }

  /**
   * Ends a transaction whose statements `issued` were written while the connection's stream is
   * corked: writes pg-boss's INSERT of `job` and COMMIT, uncorks (one socket write for all of them)
   * and waits for every answer. pg-boss writes its INSERT through the adapter after a few awaits of
   * its own, so COMMIT is written once it has; when pg-boss fails before writing, ROLLBACK is.
   * @throws the first statement's error (the transaction is then rolled back)
   */
  async #commitWithJob(
    client: pg.PoolClient,
    issued: Promise<unknown>[],
    job: WebhookProcessJob,
  ): Promise<void> {
    let jobWritten!: () => void;
    const written = new Promise<void>((resolve) => (jobWritten = resolve));
    const db = {
      executeSql: (text: string, params?: unknown[]) => {
        const query = client.query({ name: jobStatementName(text), text, values: params ?? [] });
        jobWritten();
        return query;
      },
    };
    const jobInserted = this.#boss.insert(QUEUES.webhookProcess, [{ data: job }], { db });
    const settled = Promise.allSettled([...issued, jobInserted]);
    const end = await Promise.race([
      written.then(() => 'COMMIT'),
      jobInserted.then(
        () => 'COMMIT',
        () => 'ROLLBACK',
      ),
    ]);
    const ended = client.query(end);
    client.connection.stream.uncork();
    const [committed, results] = await Promise.all([ended, settled]);
    const failure = results.find((result) => result.status === 'rejected');
    if (failure) throw failure.reason;
    // COMMIT of a transaction that failed answers ROLLBACK, without an error.
    if (committed.command !== 'COMMIT') throw new Error('the inbox transaction was rolled back');
  }
}
