import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/db/database.ts';
import { newId } from '../../src/db/ids.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { balanceOf, listBalances } from '../../src/ledger/balances.ts';
import type { AccountRef } from '../../src/ledger/chart.ts';
import {
  type EntryInput,
  ensureAccount,
  LedgerError,
  postEntry,
  transfer,
} from '../../src/ledger/journal.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { createTestDatabase } from '../support/database.ts';

let db: Db;

beforeAll(async () => {
  db = createDb(await createTestDatabase(), 4);
  await migrateToLatest(db);
});

afterAll(async () => {
  await db?.destroy();
});

/** Accounts unique to one test, so tests never share balances. */
let accountCounter = 0;
function accounts() {
  accountCounter += 1;
  const n = accountCounter;
  return {
    cash: { code: `t${n}:cash`, type: 'asset' } as AccountRef,
    receivable: { code: `t${n}:receivable`, type: 'asset' } as AccountRef,
    revenue: { code: `t${n}:revenue`, type: 'revenue' } as AccountRef,
    tax: { code: `t${n}:tax`, type: 'liability' } as AccountRef,
  };
}

function entry(key: string, postings: EntryInput['postings']): EntryInput {
  return { idempotencyKey: key, description: `test ${key}`, source: { type: 'test', id: key }, postings };
}

/** Posts inside a unit of work, as the app does. */
function post(input: EntryInput): Promise<boolean> {
  return inUnitOfWork(db, { actor: 'system' }, (work) => postEntry(work, input));
}

async function rowCounts() {
  const count = async (table: 'journal_entries' | 'postings' | 'ledger_accounts') => {
    const row = await db.selectFrom(table).select(sql<bigint>`count(*)`.as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  };
  return {
    entries: await count('journal_entries'),
    postings: await count('postings'),
    accounts: await count('ledger_accounts'),
  };
}

/** Sum of the raw posting amounts of one account, straight from SQL. */
async function postingSum(code: string, currency: string): Promise<bigint> {
  const result = await sql<{ total: bigint | null }>`
    SELECT sum(p.amount) AS total FROM postings p JOIN ledger_accounts a ON a.id = p.account_id
    WHERE a.code = ${code} AND a.currency = ${currency}`.execute(db);
  return result.rows[0]?.total ?? 0n;
}

/** True when an entry with this idempotency key exists. */
async function entryPosted(key: string): Promise<boolean> {
  const row = await db
    .selectFrom('journal_entries')
    .select('id')
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
  return row !== undefined;
}

describe('postEntry and balances', () => {
  it('posts a balanced entry and derives the balances from its postings', async () => {
    const a = accounts();
    const posted = await post(
      entry('je:invoice-1', [
        { account: a.receivable, amount: 12_000n, currency: 'EUR' },
        { account: a.revenue, amount: -10_000n, currency: 'EUR' },
        { account: a.tax, amount: -2_000n, currency: 'EUR' },
      ]),
    );
    expect(posted).toBe(true);
    expect(await entryPosted('je:invoice-1')).toBe(true);

    const stored = await db
      .selectFrom('journal_entries')
      .selectAll()
      .where('idempotency_key', '=', 'je:invoice-1')
      .executeTakeFirstOrThrow();
    expect(stored).toMatchObject({
      description: 'test je:invoice-1',
      source_type: 'test',
      source_id: 'je:invoice-1',
    });
    expect(stored.id).toMatch(/^je_/);
    const postings = await db
      .selectFrom('postings')
      .select(['amount', 'currency'])
      .where('journal_entry_id', '=', stored.id)
      .orderBy('id')
      .execute();
    expect(postings).toEqual([
      { amount: 12_000n, currency: 'EUR' },
      { amount: -10_000n, currency: 'EUR' },
      { amount: -2_000n, currency: 'EUR' },
    ]);

    expect(await balanceOf(db, a.receivable.code, 'EUR')).toBe(12_000n);
    expect(await balanceOf(db, a.revenue.code, 'EUR')).toBe(-10_000n);
    expect(await balanceOf(db, a.tax.code, 'EUR')).toBe(-2_000n);

    // A second entry moves the receivable to cash; balances are sums over every posting.
    expect(await post(entry('je:payment-1', transfer(a.cash, a.receivable, 12_000n, 'EUR')))).toBe(true);
    expect(await balanceOf(db, a.cash.code, 'EUR')).toBe(12_000n);
    expect(await balanceOf(db, a.receivable.code, 'EUR')).toBe(0n);
    for (const ref of [a.cash, a.receivable, a.revenue, a.tax]) {
      expect(await balanceOf(db, ref.code, 'EUR')).toBe(await postingSum(ref.code, 'EUR'));
    }

    const listed = (await listBalances(db, { limit: 1000 })).filter((b) =>
      b.code.startsWith(`${a.cash.code.split(':')[0]}:`),
    );
    expect(listed.map(({ code, type, currency, balance }) => ({ code, type, currency, balance }))).toEqual([
      { code: a.cash.code, type: 'asset', currency: 'EUR', balance: 12_000n },
      { code: a.receivable.code, type: 'asset', currency: 'EUR', balance: 0n },
      { code: a.revenue.code, type: 'revenue', currency: 'EUR', balance: -10_000n },
      { code: a.tax.code, type: 'liability', currency: 'EUR', balance: -2_000n },
    ]);
    for (const balance of listed) {
      expect(typeof balance.balance).toBe('bigint');
      expect(balance.id).toMatch(/^acct_/);
    }
  });

  it('posts an entry once per idempotency key: the second call returns false and changes nothing', async () => {
    const a = accounts();
    expect(await post(entry('je:once', transfer(a.cash, a.revenue, 500n, 'EUR')))).toBe(true);
    const before = await rowCounts();

    // Same key, different amounts: still nothing new.
    expect(await post(entry('je:once', transfer(a.cash, a.revenue, 999n, 'EUR')))).toBe(false);

    expect(await rowCounts()).toEqual(before);
    expect(await balanceOf(db, a.cash.code, 'EUR')).toBe(500n);
    expect(await balanceOf(db, a.revenue.code, 'EUR')).toBe(-500n);
    const entries = await db
      .selectFrom('journal_entries')
      .select('id')
      .where('idempotency_key', '=', 'je:once')
      .execute();
    expect(entries).toHaveLength(1);
  });

  it.each([
    [
      'an unbalanced entry',
      (a: ReturnType<typeof accounts>) => [
        { account: a.cash, amount: 100n, currency: 'EUR' },
        { account: a.revenue, amount: -99n, currency: 'EUR' },
      ],
      /does not balance in EUR: 1/,
    ],
    [
      'an entry with a zero posting',
      (a: ReturnType<typeof accounts>) => [
        { account: a.cash, amount: 100n, currency: 'EUR' },
        { account: a.revenue, amount: -100n, currency: 'EUR' },
        { account: a.tax, amount: 0n, currency: 'EUR' },
      ],
      /zero posting/,
    ],
    [
      'a one-posting entry',
      (a: ReturnType<typeof accounts>) => [{ account: a.cash, amount: 100n, currency: 'EUR' }],
      /at least two postings/,
    ],
    ['an empty entry', (_a: ReturnType<typeof accounts>) => [], /at least two postings/],
    [
      'an entry that balances in total but not per currency',
      (a: ReturnType<typeof accounts>) => [
        { account: a.cash, amount: 100n, currency: 'EUR' },
        { account: a.revenue, amount: -100n, currency: 'JPY' },
      ],
      /does not balance in (EUR|JPY)/,
    ],
  ])('refuses %s with LedgerError and writes nothing', async (_label, postings, message) => {
    const a = accounts();
    const key = `je:refused:${_label}`;
    const before = await rowCounts();

    const attempt = post(entry(key, postings(a)));
    await expect(attempt).rejects.toBeInstanceOf(LedgerError);
    await expect(attempt).rejects.toThrow(message);

    expect(await rowCounts()).toEqual(before);
    expect(await entryPosted(key)).toBe(false);
    expect(await balanceOf(db, a.cash.code, 'EUR')).toBe(0n);
  });

  it('opens a new account once when several first postings to it commit at the same time', async () => {
    // Regression: ON CONFLICT named only (code, currency); a concurrent first insert could collide on
    // the derived id (the primary key) instead and fail with 23505.
    for (let round = 0; round < 5; round++) {
      const a = accounts();
      const posted = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          inUnitOfWork(db, { actor: 'system' }, async (work) => {
            await ensureAccount(work.trx, a.tax, 'USD');
            return postEntry(
              work,
              entry(`${a.cash.code}:race:${i}`, transfer(a.cash, a.revenue, 100n, 'USD')),
            );
          }),
        ),
      );
      expect(posted).toEqual([true, true, true, true]);
      expect(await balanceOf(db, a.cash.code, 'USD')).toBe(400n);
      const opened = await db
        .selectFrom('ledger_accounts')
        .select('id')
        .where('code', 'like', `${a.cash.code.split(':')[0]}:%`)
        .execute();
      expect(opened).toHaveLength(3);
    }
  });

  it('keeps balances per currency apart (EUR and JPY on the same account codes)', async () => {
    const a = accounts();
    expect(await post(entry('je:eur', transfer(a.cash, a.revenue, 4620n, 'EUR')))).toBe(true);
    expect(await post(entry('je:jpy', transfer(a.cash, a.revenue, 5000n, 'JPY')))).toBe(true);
    // One entry may carry several currencies as long as each balances on its own.
    expect(
      await post(
        entry('je:mixed', [
          ...transfer(a.receivable, a.revenue, 100n, 'EUR'),
          ...transfer(a.receivable, a.revenue, 300n, 'JPY'),
        ]),
      ),
    ).toBe(true);

    expect(await balanceOf(db, a.cash.code, 'EUR')).toBe(4620n);
    expect(await balanceOf(db, a.cash.code, 'JPY')).toBe(5000n);
    expect(await balanceOf(db, a.revenue.code, 'EUR')).toBe(-4720n);
    expect(await balanceOf(db, a.revenue.code, 'JPY')).toBe(-5300n);
    expect(await balanceOf(db, a.receivable.code, 'EUR')).toBe(100n);
    expect(await balanceOf(db, a.receivable.code, 'JPY')).toBe(300n);
    expect(await balanceOf(db, a.cash.code, 'USD')).toBe(0n);

    const prefix = `${a.cash.code.split(':')[0]}:`;
    const listed = (await listBalances(db, { limit: 1000 }))
      .filter((b) => b.code.startsWith(prefix))
      .map(({ code, currency, balance }) => ({ code, currency, balance }));
    // Ordered by code, then currency; one account per code and currency.
    expect(listed).toEqual([
      { code: a.cash.code, currency: 'EUR', balance: 4620n },
      { code: a.cash.code, currency: 'JPY', balance: 5000n },
      { code: a.receivable.code, currency: 'EUR', balance: 100n },
      { code: a.receivable.code, currency: 'JPY', balance: 300n },
      { code: a.revenue.code, currency: 'EUR', balance: -4720n },
      { code: a.revenue.code, currency: 'JPY', balance: -5300n },
    ]);
  });

  it('lists an account without postings with balance 0, and the whole ledger sums to 0 per currency', async () => {
    const a = accounts();
    await db.transaction().execute((trx) => ensureAccount(trx, a.tax, 'USD'));
    const listed = await listBalances(db, { limit: 1000 });
    expect(listed.find((b) => b.code === a.tax.code && b.currency === 'USD')?.balance).toBe(0n);
    expect(await balanceOf(db, a.tax.code, 'USD')).toBe(0n);

    const totals = new Map<string, bigint>();
    for (const b of listed) totals.set(b.currency, (totals.get(b.currency) ?? 0n) + b.balance);
    expect(totals.size).toBeGreaterThan(0);
    for (const total of totals.values()) expect(total).toBe(0n);
  });
});

describe('the database guards the ledger', () => {
  /** Posts a fresh balanced entry and returns its id. */
  async function postedEntry(): Promise<{ id: string; a: ReturnType<typeof accounts> }> {
    const a = accounts();
    const key = `je:guard:${a.cash.code}`;
    await post(entry(key, transfer(a.cash, a.revenue, 700n, 'EUR')));
    const row = await db
      .selectFrom('journal_entries')
      .select('id')
      .where('idempotency_key', '=', key)
      .executeTakeFirstOrThrow();
    return { id: row.id, a };
  }

  it('refuses UPDATE and DELETE on journal_entries', async () => {
    const { id } = await postedEntry();
    await expect(
      db.updateTable('journal_entries').set({ description: 'rewritten' }).where('id', '=', id).execute(),
    ).rejects.toThrow(/ledger rows are immutable \(UPDATE on journal_entries\)/);
    await expect(db.deleteFrom('journal_entries').where('id', '=', id).execute()).rejects.toThrow(
      /ledger rows are immutable \(DELETE on journal_entries\)/,
    );
    const row = await db.selectFrom('journal_entries').selectAll().where('id', '=', id).executeTakeFirst();
    expect(row?.description).toMatch(/^test je:guard:/);
  });

  it('refuses UPDATE and DELETE on postings', async () => {
    const { id, a } = await postedEntry();
    await expect(
      db.updateTable('postings').set({ amount: 1n }).where('journal_entry_id', '=', id).execute(),
    ).rejects.toThrow(/ledger rows are immutable \(UPDATE on postings\)/);
    await expect(db.deleteFrom('postings').where('journal_entry_id', '=', id).execute()).rejects.toThrow(
      /ledger rows are immutable \(DELETE on postings\)/,
    );
    const postings = await db
      .selectFrom('postings')
      .select('amount')
      .where('journal_entry_id', '=', id)
      .orderBy('id')
      .execute();
    expect(postings).toEqual([{ amount: 700n }, { amount: -700n }]);
    expect(await balanceOf(db, a.cash.code, 'EUR')).toBe(700n);
  });

  /** Inserts an entry and the given postings with plain SQL in one transaction. */
  function insertDirectly(amounts: { amount: bigint; currency: string; account: AccountRef }[]) {
    const id = newId('je');
    const done = db.transaction().execute(async (trx) => {
      await sql`INSERT INTO journal_entries (id, idempotency_key, description, source_type, source_id)
        VALUES (${id}, ${`direct:${id}`}, 'direct SQL', 'test', ${id})`.execute(trx);
      for (const { amount, currency, account } of amounts) {
        const accountId = await ensureAccount(trx, account, currency);
        await sql`INSERT INTO postings (journal_entry_id, account_id, amount, currency)
          VALUES (${id}, ${accountId}, ${amount}, ${currency})`.execute(trx);
      }
      // The check is deferred: inside the transaction the unbalanced rows are visible.
      const inside = await sql<{
        n: bigint;
      }>`SELECT count(*) AS n FROM postings WHERE journal_entry_id = ${id}`.execute(trx);
      expect(inside.rows[0]?.n).toBe(BigInt(amounts.length));
    });
    return { id, done };
  }

  it('refuses at commit an unbalanced set of postings inserted directly with SQL', async () => {
    const a = accounts();
    const before = await rowCounts();
    const { id, done } = insertDirectly([
      { account: a.cash, amount: 100n, currency: 'EUR' },
      { account: a.revenue, amount: -90n, currency: 'EUR' },
    ]);
    await expect(done).rejects.toThrow(/journal entry je_\w+ does not balance/);
    expect(await rowCounts()).toEqual(before);
    expect(await db.selectFrom('journal_entries').select('id').where('id', '=', id).executeTakeFirst()).toBe(
      undefined,
    );
  });

  it('refuses at commit postings that balance in total but not per currency', async () => {
    const a = accounts();
    const before = await rowCounts();
    const { done } = insertDirectly([
      { account: a.cash, amount: 100n, currency: 'EUR' },
      { account: a.revenue, amount: -100n, currency: 'JPY' },
    ]);
    await expect(done).rejects.toThrow(/does not balance/);
    expect(await rowCounts()).toEqual(before);
  });

  it('commits a balanced set of postings inserted directly with SQL', async () => {
    const a = accounts();
    const { id, done } = insertDirectly([
      { account: a.cash, amount: 250n, currency: 'JPY' },
      { account: a.revenue, amount: -250n, currency: 'JPY' },
    ]);
    await done;
    expect(
      await db.selectFrom('journal_entries').select('id').where('id', '=', id).executeTakeFirst(),
    ).toEqual({ id });
    expect(await balanceOf(db, a.cash.code, 'JPY')).toBe(250n);
  });

  it('refuses at commit a journal entry inserted directly with SQL without postings', async () => {
    const before = await rowCounts();
    const { id, done } = insertDirectly([]);
    await expect(done).rejects.toThrow(/journal entry je_\w+ has no postings/);
    expect(await rowCounts()).toEqual(before);
    expect(await db.selectFrom('journal_entries').select('id').where('id', '=', id).executeTakeFirst()).toBe(
      undefined,
    );
  });

  it('refuses a zero posting inserted directly (CHECK amount <> 0)', async () => {
    const a = accounts();
    const before = await rowCounts();
    const { done } = insertDirectly([
      { account: a.cash, amount: 0n, currency: 'EUR' },
      { account: a.revenue, amount: 0n, currency: 'EUR' },
    ]);
    await expect(done).rejects.toThrow(/postings_amount_check/);
    // Accounts are created in the same transaction, so they roll back too.
    expect(await rowCounts()).toEqual(before);
  });
});

describe('a deferring unit of work', () => {
  it('posts the entries collected in the unit together at its end, each key once', async () => {
    const a = accounts();
    expect(await post(entry('je:deferred:existing', transfer(a.cash, a.revenue, 1n, 'EUR')))).toBe(true);
    const seenInside = await inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
      await postEntry(work, entry('je:deferred:1', transfer(a.cash, a.revenue, 100n, 'EUR')));
      await postEntry(work, entry('je:deferred:2', transfer(a.receivable, a.revenue, 20n, 'USD')));
      // A repeat of a key collected earlier, and a key already posted: neither posts again.
      await postEntry(work, entry('je:deferred:1', transfer(a.cash, a.revenue, 999n, 'EUR')));
      await postEntry(work, entry('je:deferred:existing', transfer(a.cash, a.revenue, 999n, 'EUR')));
      const inside = await work.trx
        .selectFrom('journal_entries')
        .select('id')
        .where('idempotency_key', 'in', ['je:deferred:1', 'je:deferred:2'])
        .execute();
      return inside.length;
    });
    expect(seenInside).toBe(0);
    expect(await entryPosted('je:deferred:1')).toBe(true);
    expect(await entryPosted('je:deferred:2')).toBe(true);
    expect(await balanceOf(db, a.cash.code, 'EUR')).toBe(101n);
    expect(await balanceOf(db, a.revenue.code, 'EUR')).toBe(-101n);
    expect(await balanceOf(db, a.receivable.code, 'USD')).toBe(20n);
  });

  it('checks each entry when it is posted and writes nothing when the work fails', async () => {
    const a = accounts();
    const unbalanced = entry('je:deferred:unbalanced', [
      { account: a.cash, amount: 5n, currency: 'EUR' },
      { account: a.revenue, amount: -4n, currency: 'EUR' },
    ]);
    await expect(
      inUnitOfWork(db, { actor: 'system', defer: true }, async (work) => {
        await postEntry(work, entry('je:deferred:before', transfer(a.cash, a.revenue, 7n, 'EUR')));
        await postEntry(work, unbalanced);
      }),
    ).rejects.toThrow(LedgerError);
    expect(await entryPosted('je:deferred:before')).toBe(false);
    expect(await entryPosted('je:deferred:unbalanced')).toBe(false);
  });
});
