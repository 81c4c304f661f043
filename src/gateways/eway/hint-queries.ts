/** Raised when this process already sent its share of hint queries this second: the row retries later. */
export class HintQueryBusy extends Error {
  override name = 'HintQueryBusy';
}

/**
 * Bounds the queries unsigned callback hints make billhook send to eWAY, in this process: one query
 * per key (a TransactionID or an AccessCode) per `intervalMs` — a hint within it gets the same
 * answer, or the same failure, without a call (so pg-boss's retries of a row whose query failed cost
 * no call until the interval has passed) — and at most `perSecond` new queries a second, beyond
 * which `run` throws HintQueryBusy without calling.
 */
export class HintQueries {
  readonly #perSecond: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #answers = new Map<string, { at: number; answer: Promise<unknown> }>();
  #second = -1;
  #sentThisSecond = 0;

  /**
   * @param perSecond new queries a second (`EWAY_HINT_QUERIES_PER_SECOND`)
   * @param intervalMs how long one key's answer is reused (milliseconds; default a minute)
   * @param now the clock (milliseconds since the epoch)
   */
  constructor(perSecond: number, intervalMs = 60_000, now: () => number = Date.now) {
    this.#perSecond = perSecond;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /**
   * `query()`'s answer for `key`: the one given less than `intervalMs` ago, else a new query.
   * @throws HintQueryBusy when a new query is needed and `perSecond` were already sent this second;
   *   whatever `query` throws
   */
  run<T>(key: string, query: () => Promise<T>): Promise<T> {
    const now = this.#now();
    const cached = this.#answers.get(key);
    if (cached && now - cached.at < this.#intervalMs) return cached.answer as Promise<T>;
    const second = Math.floor(now / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#sentThisSecond = 0;
    }
    if (this.#sentThisSecond >= this.#perSecond) {
      return Promise.reject(
        new HintQueryBusy(`${this.#perSecond} eWAY hint queries were sent this second; retried later`),
      );
    }
    this.#sentThisSecond += 1;
    this.#forgetOlderThan(now - this.#intervalMs);
    const answer = query();
    // Kept for the interval: a failure is handed to later callers, never left unhandled here.
    answer.catch(() => undefined);
    this.#answers.delete(key);
    this.#answers.set(key, { at: now, answer });
    return answer;
  }

  /** Drops expired answers (entries are in insertion order, so the oldest come first). */
  #forgetOlderThan(limit: number): void {
    for (const [key, { at }] of this.#answers) {
      if (at > limit) break;
      this.#answers.delete(key);
    }
  }
}
