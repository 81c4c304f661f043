import { fromKysely, type PgBoss } from 'pg-boss';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { GatewayName } from '../gateways/types.ts';
import { QUEUES, type WebhookProcessJob } from '../queue/queues.ts';

/** A verified delivery to store. `body` is the raw body exactly as received (UTF-8). */
export interface Delivery {
  gateway: GatewayName;
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
}

interface Waiting {
  delivery: Delivery;
  resolve(receipt: Receipt): void;
  reject(error: unknown): void;
}

/**
 * Stores verified deliveries durably, several per transaction (group commit): each transaction
 * inserts the waiting deliveries' inbox rows in one statement (a delivery whose gateway and event id
 * are already stored is skipped) and one `webhook.process` job naming the new rows — rows and job
 * commit together. A delivery is answered only after its transaction committed; when the
 * transaction fails, every delivery in it fails (the gateway retries).
 */
export class Inbox {
  readonly #db: Db;
  readonly #boss: PgBoss;
  readonly #options: InboxOptions;
  #waiting: Waiting[] = [];
  #inFlight = 0;

  constructor(
    db: Db,
    boss: PgBoss,
    options: InboxOptions = { maxBatch: 200, maxInFlight: 2, maxWaiting: 5000 },
  ) {
    this.#db = db;
    this.#boss = boss;
    this.#options = options;
  }

  /**
   * Stores one delivery with its job; resolves once committed.
   * @throws InboxBusy at once when `maxWaiting` deliveries are already waiting
   * @throws the database's error when the transaction fails (the caller answers 503)
   */
  receive(delivery: Delivery): Promise<Receipt> {
    if (this.#waiting.length >= this.#options.maxWaiting) {
      return Promise.reject(new InboxBusy(`${this.#waiting.length} deliveries are waiting for the database`));
    }
    return new Promise<Receipt>((resolve, reject) => {
      this.#waiting.push({ delivery, resolve, reject });
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#inFlight < this.#options.maxInFlight && this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, this.#options.maxBatch);
      this.#inFlight += 1;
      this.#commit(batch)
        .then(
          (receipts) => {
            for (const [i, waiting] of batch.entries())
              waiting.resolve(receipts[i] ?? { id: undefined, duplicate: true });
          },
          (error: unknown) => {
            for (const waiting of batch) waiting.reject(error);
          },
        )
        .finally(() => {
          this.#inFlight -= 1;
          this.#flush();
        });
    }
  }

  async #commit(batch: Waiting[]): Promise<Receipt[]> {
    const rows = batch.map(({ delivery }) => ({
      id: newId('evt'),
      gateway: delivery.gateway,
      gateway_event_id: delivery.eventId,
      event_type: delivery.eventType,
      body: delivery.body,
    }));
    return this.#db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('inbox')
        .values(rows)
        .onConflict((oc) => oc.columns(['gateway', 'gateway_event_id']).doNothing())
        .returning('id')
        .execute();
      const stored = new Set(inserted.map((row) => row.id));
      if (stored.size > 0) {
        const job: WebhookProcessJob = { inboxIds: [...stored] };
        await this.#boss.insert(QUEUES.webhookProcess, [{ data: job }], { db: fromKysely(trx) });
      }
      return rows.map((row) =>
        stored.has(row.id) ? { id: row.id, duplicate: false } : { id: undefined, duplicate: true },
      );
    });
  }
}
