import pg from 'pg';

/**
 * The PostgreSQL session-level advisory lock key ("billhook database gauges" as a 32-bit constant) whose
 * holder exports the database-derived gauges.
 */
const EXPORTER_LOCK_KEY = 0x6268_6467;

/**
 * Which process exports the database-derived gauges, so that a sum across processes counts each job,
 * row or exception once: the first process scraped takes a session-level advisory lock
 * (`pg_try_advisory_lock`) on a connection of its own and keeps it until it stops or its connection
 * drops (PostgreSQL then releases the lock, and the next process scraped takes it over). The others
 * export no sample of those gauges.
 */
export class GaugeExporterLease {
  #client: pg.Client | undefined;
  #held = false;
  #closed = false;

  readonly #databaseUrl: string;

  /** @param databaseUrl the database the lock is taken in (billhook's own) */
  constructor(databaseUrl: string) {
    this.#databaseUrl = databaseUrl;
  }

  /**
   * Whether this process exports the database gauges now: true once it holds the lock; otherwise
   * tries to take it. A database that cannot be reached reads as false (tried again at the next scrape).
   */
  async held(): Promise<boolean> {
    if (this.#held || this.#closed) return this.#held;
    try {
      if (!this.#client) {
        const client = new pg.Client({ connectionString: this.#databaseUrl });
        client.on('error', () => this.#drop(client));
        client.on('end', () => this.#drop(client));
        this.#client = client;
        await client.connect();
      }
      const { rows } = await this.#client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock($1) AS locked',
        [EXPORTER_LOCK_KEY],
      );
      this.#held = rows[0]?.locked === true;
    } catch {
      const client = this.#client;
      if (client) {
        this.#drop(client);
        await client.end().catch(() => undefined);
      }
    }
    return this.#held;
  }

  /** Releases the lock (closes its connection); the next process scraped takes it over. */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    if (client) {
      this.#drop(client);
      await client.end().catch(() => undefined);
    }
  }

  /** Forgets `client` (its connection failed or ended): the lock went with it. */
  #drop(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#held = false;
  }
}
