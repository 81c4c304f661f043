import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { postEntry } from '../../src/ledger/journal.ts';
import { paymentSucceeded, refundSucceeded } from '../../src/ledger/movements.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { databaseAtMigration } from '../support/database.ts';

/** Every ledger account's balance by `code currency`, minor units. */
async function books(db: Db): Promise<Record<string, bigint>> {
  const rows = await sql<{ code: string; currency: string; balance: string }>`
    SELECT a.code, a.currency, coalesce(sum(p.amount), 0)::text AS balance
    FROM ledger_accounts a LEFT JOIN postings p ON p.account_id = a.id
    GROUP BY a.code, a.currency ORDER BY a.code, a.currency`.execute(db);
  return Object.fromEntries(rows.rows.map((r) => [`${r.code} ${r.currency}`, BigInt(r.balance)]));
}

describe('migrations 0024-0025 (gateway accounts): an existing single-account database upgrades in place', () => {
  let db: Db;
  beforeAll(async () => {
    db = await databaseAtMigration('0023_idempotency_key_expiry');
  });
  afterAll(() => db.destroy());

  it('keeps every balance, leaves old payments on the default account, and books new default-account payments where the old ones are', async () => {
    await sql`INSERT INTO customers (id, email) VALUES ('cus_old', 'old@example.com')`.execute(db);
    await sql`INSERT INTO transactions (id, customer_id, gateway, gateway_transaction_id, amount, currency, status)
      VALUES ('txn_old', 'cus_old', 'stripe', 'pi_old', 2500, 'EUR', 'succeeded')`.execute(db);
    await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      const payment = { gateway: 'stripe', gatewayAccount: null, customerId: 'cus_old', currency: 'EUR' };
      await postEntry(work, paymentSucceeded({ ...payment, transactionId: 'txn_old', amount: 2500n }));
      await postEntry(
        work,
        refundSucceeded({
          refundId: 're_old',
          gateway: 'stripe',
          gatewayAccount: null,
          currency: 'EUR',
          amount: 700n,
          kind: 'payment',
        }),
      );
    });
    const before = await books(db);
    expect(before['gateway_clearing:stripe EUR']).toBe(1800n);

    await migrateToLatest(db);
    expect(await books(db)).toEqual(before);
    const old = await db
      .selectFrom('transactions')
      .select('gateway_account')
      .where('id', '=', 'txn_old')
      .executeTakeFirstOrThrow();
    expect(old.gateway_account).toBeNull();

    // A payment on the default account after the upgrade lands in the same clearing account.
    await inUnitOfWork(db, { actor: 'system' }, (work) =>
      postEntry(
        work,
        paymentSucceeded({
          transactionId: 'txn_new',
          gateway: 'stripe',
          gatewayAccount: old.gateway_account,
          customerId: 'cus_old',
          currency: 'EUR',
          amount: 300n,
        }),
      ),
    );
    expect((await books(db))['gateway_clearing:stripe EUR']).toBe(2100n);
  });
});
