/**
 * PRODUCT.md §10: web and worker processes are stateless — two `web` and two `worker` billhook
 * processes against one database, under load, with every effect exactly once: one posting per
 * payment, one charge per invoice, one invoice per subscription period; gateway accounts created
 * on either web process while the load runs are taken by both (PRODUCT.md §12).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PgBoss } from 'pg-boss';
import { afterAll, describe, expect, it } from 'vitest';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { createDb, type Db } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { startStripeStub } from '../../src/gateways/stripe/stub.ts';
import { BOSS_SCHEMA } from '../../src/queue/boss.ts';
import { QUEUES } from '../../src/queue/queues.ts';
import { createTestDatabase } from '../support/database.ts';
import { byDepth } from '../support/depth.ts';
import { insertPlan } from '../support/plans.ts';
import { listeningPort } from '../support/process.ts';
import { deliverStripe, paymentIntentSucceeded } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const SECRET = 'whsec_scale_secret';
const ADMIN_KEY = 'bh_scale_admin_key_0123456789abcdef';
// The load's sizes are `npm test`'s and `npm run test:deep`'s (test/support/depth.ts).
/** Seeded pending payments settled by webhooks (each event delivered to both web processes). */
const PAYMENTS = byDepth(80, 300);
/** Open invoices each charged by both web processes at once. */
const CHARGES = byDepth(16, 60);
/** Gateway accounts created over the API while the load runs (PRODUCT.md §12). */
const ACCOUNTS = 4;
/**
 * The last payments: made on those accounts (a payment method of each), and their webhooks delivered
 * to their accounts' routes once created (a delivery moves only its own account's money).
 */
const ACCOUNT_PAYMENTS = byDepth(12, 40);
/** Subscriptions started three months ago: periods 1–3 are due, renewed by both workers. */
const SUBSCRIPTIONS = byDepth(6, 20);
const DAY = 86_400_000;

function succeededEvent(n: number): string {
  return paymentIntentSucceeded({
    eventId: `evt_scale_${n}`,
    intentId: `pi_scale_${n}`,
    amount: 1000 + n,
    currency: 'usd',
    reference: `txn_scale_${n}`,
  });
}

/**
 * A pending payment `txn_scale_<n>` of invoice `inv_scale_<n>` (1000 + n USD cents) through payment
 * method `method`, on gateway account `account` (null: Stripe's default account), as a charge
 * answered pending leaves it: its webhook `succeededEvent(n)` settles it.
 */
async function seedPayment(db: Db, n: number, method: string, account: string | null): Promise<void> {
  await db
    .insertInto('transactions')
    .values({
      id: `txn_scale_${n}`,
      invoice_id: `inv_scale_${n}`,
      customer_id: 'cus_scale',
      payment_method_id: method,
      gateway: 'stripe',
      gateway_account: account,
      gateway_transaction_id: `pi_scale_${n}`,
      amount: BigInt(1000 + n),
      currency: 'USD',
      status: 'pending',
    })
    .execute();
}

describe('two web and two worker processes on one database (PRODUCT.md §10)', () => {
  const children: ChildProcess[] = [];
  let stub: Server | undefined;
  let boss: PgBoss | undefined;
  let db: Db | undefined;
  afterAll(async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise((resolve) => {
            if (child.exitCode !== null) return resolve(undefined);
            child.once('exit', resolve);
            child.kill('SIGTERM');
          }),
      ),
    );
    await boss?.stop({ graceful: false });
    await db?.destroy();
    stub?.close();
  });

  function start(
    role: 'web' | 'worker',
    env: Record<string, string>,
  ): { child: ChildProcess; output: () => string } {
    let output = '';
    const child = spawn(process.execPath, [MAIN, role], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk) => {
      output = (output + chunk).slice(-10_000);
    });
    child.stderr?.on('data', (chunk) => {
      output = (output + chunk).slice(-10_000);
    });
    children.push(child);
    return { child, output: () => output };
  }

  it('applies every effect exactly once: postings, charges and renewal invoices', async () => {
    const url = await createTestDatabase();
    db = createDb(url);
    await migrateToLatest(db);
    await db.insertInto('customers').values({ id: 'cus_scale', email: 'scale@example.com' }).execute();
    await db
      .insertInto('payment_methods')
      .values({
        id: 'pm_scale',
        customer_id: 'cus_scale',
        gateway: 'stripe',
        gateway_token: 'pm_card_visa',
        is_default: true,
      })
      .execute();
    for (let n = 0; n < PAYMENTS; n++) {
      await db
        .insertInto('invoices')
        .values({
          id: `inv_scale_${n}`,
          customer_id: 'cus_scale',
          currency: 'USD',
          status: 'OPEN',
          subtotal: BigInt(1000 + n),
          total: BigInt(1000 + n),
          amount_due: BigInt(1000 + n),
        })
        .execute();
      if (n < PAYMENTS - ACCOUNT_PAYMENTS) await seedPayment(db, n, 'pm_scale', null);
    }
    for (let j = 0; j < CHARGES; j++) {
      await db
        .insertInto('invoices')
        .values({
          id: `inv_scale_charge_${j}`,
          customer_id: 'cus_scale',
          currency: 'USD',
          status: 'OPEN',
          subtotal: 700n,
          total: 700n,
          amount_due: 700n,
        })
        .execute();
    }
    const plan = await insertPlan(db, { price: { model: 'FLAT_FEE', amount: 2000 } });
    const started = new Date(Date.now() - 92 * DAY);
    const subscriptions: string[] = [];
    for (let s = 0; s < SUBSCRIPTIONS; s++) {
      const { subscription } = await createSubscription(
        db,
        'system',
        { customerId: 'cus_scale', planId: plan },
        started,
      );
      subscriptions.push(subscription.id);
    }

    stub = await startStripeStub(0, 'succeeded');
    const env = {
      DATABASE_URL: url,
      STRIPE_WEBHOOK_SECRET: SECRET,
      STRIPE_SECRET_KEY: 'sk_test_scale',
      STRIPE_API_BASE: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`,
      BILLHOOK_ADMIN_KEY: ADMIN_KEY,
      BILLHOOK_SECRET_KEY: 'ab'.repeat(32),
      LOG_LEVEL: 'warn',
      BILLING_SWEEPS: '0',
      WEBHOOK_RETRY_DELAY_SECONDS: '1',
    };
    const webs: { base: string; child: ChildProcess; output: () => string }[] = [];
    // Each web process binds any free port (PORT=0) and names it in its start banner.
    for (let w = 0; w < 2; w++) webs.push({ base: '', ...start('web', { ...env, PORT: '0' }) });
    const workers = [start('worker', env), start('worker', env)];
    for (const web of webs) {
      // Four processes starting at once on busy cores: generous, as a ready one ends the wait.
      web.base = `http://127.0.0.1:${await listeningPort(web.output, () => web.child.exitCode, 90_000)}`;
      await waitFor(
        `web on ${web.base}`,
        async () => (await fetch(`${web.base}/readyz`).catch(() => undefined))?.status === 200,
        // Four processes starting at once on busy cores: generous, as a ready one ends the wait.
        90_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; its output:\n${web.output()}`);
      });
    }
    // Both workers are up once each has created its pg-boss workers (they log nothing at warn).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (const worker of workers) expect(worker.child.exitCode, worker.output()).toBeNull();

    // Load: every webhook to both web processes at once; every charge from both at once; the
    // renewal and charge sweeps sent several times, so both workers run them concurrently.
    boss = new PgBoss({ connectionString: url, schema: BOSS_SCHEMA, supervise: false, schedule: false });
    await boss.start();
    const webhookAnswers: number[] = [];
    const chargeAnswers: number[] = [];
    const deliver = async (n: number) => {
      const body = succeededEvent(n);
      const answers = await Promise.all(
        webs.map((web) => deliverStripe(web.base, body, { secret: SECRET }).then((r) => r.status)),
      );
      webhookAnswers.push(...answers);
    };
    const charge = async (j: number) => {
      const answers = await Promise.all(
        webs.map((web) =>
          fetch(`${web.base}/v1/invoices/inv_scale_charge_${j}/charge`, {
            method: 'POST',
            headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
            body: '{}',
          }).then((r) => r.status),
        ),
      );
      chargeAnswers.push(...answers);
    };
    // Accounts are created on alternate web processes while the load runs; the other process learns
    // of each within about a second (a delivery it does not know yet is refused 404 and sent again,
    // as a gateway retries).
    const accounts: string[] = [];
    const createAccounts = async () => {
      for (let a = 0; a < ACCOUNTS; a++) {
        const response = await fetch(`${webs[a % 2]!.base}/v1/gateway-accounts`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            gateway: 'stripe',
            name: `scale ${a}`,
            mode: 'test',
            credentials: { webhook_secrets: [`whsec_scale_account_${a}`] },
          }),
        });
        expect(response.status).toBe(201);
        accounts.push(((await response.json()) as { id: string }).id);
      }
    };
    const deliverToAccount = async (n: number) => {
      const a = n % ACCOUNTS;
      const body = succeededEvent(n);
      await Promise.all(
        webs.map((web) =>
          waitFor(`${web.base} to take account ${accounts[a]}'s delivery`, async () => {
            const { status } = await deliverStripe(web.base, body, {
              secret: `whsec_scale_account_${a}`,
              account: accounts[a],
            });
            if (status !== 404) webhookAnswers.push(status);
            return status !== 404;
          }),
        ),
      );
    };
    const lanes = 16;
    let next = 0;
    await Promise.all([
      ...Array.from({ length: lanes }, async () => {
        while (next < PAYMENTS - ACCOUNT_PAYMENTS + CHARGES) {
          const i = next++;
          if (i < PAYMENTS - ACCOUNT_PAYMENTS) await deliver(i);
          else await charge(i - PAYMENTS + ACCOUNT_PAYMENTS);
        }
      }),
      (async () => {
        for (let k = 0; k < 4; k++) await boss!.send(QUEUES.subscriptionRenew, {});
      })(),
      createAccounts(),
    ]);
    // The accounts' payments, each on its account through a payment method of it, then their webhooks.
    for (const [a, account] of accounts.entries()) {
      await db
        .insertInto('payment_methods')
        .values({
          id: `pm_scale_${a}`,
          customer_id: 'cus_scale',
          gateway: 'stripe',
          gateway_token: 'pm_card_visa',
          gateway_account: account,
        })
        .execute();
    }
    for (let n = PAYMENTS - ACCOUNT_PAYMENTS; n < PAYMENTS; n++) {
      await seedPayment(db, n, `pm_scale_${n % ACCOUNTS}`, accounts[n % ACCOUNTS]!);
    }
    for (let n = PAYMENTS - ACCOUNT_PAYMENTS; n < PAYMENTS; n++) await deliverToAccount(n);
    expect(webhookAnswers).toHaveLength(PAYMENTS * 2);
    expect(webhookAnswers.every((status) => status === 200)).toBe(true);
    // One of each pair charges; the other is refused (in flight, or already paid), never a 5xx.
    expect(chargeAnswers.filter((status) => status === 200)).toHaveLength(CHARGES);
    expect(chargeAnswers.filter((status) => status !== 200).every((status) => status === 409)).toBe(true);

    // Every webhook processed; the renewal invoices exist, then charged by the sweep on both workers.
    const inboxStatuses = async () =>
      (await db!.selectFrom('inbox').select(['status', 'outcome']).execute()).map(
        (r) => `${r.status} ${r.outcome}`,
      );
    await waitFor(
      'every webhook processed',
      async () => (await inboxStatuses()).every((s) => s.startsWith('processed')),
      60_000,
    ).catch(async (error: Error) => {
      const counts: Record<string, number> = {};
      for (const s of await inboxStatuses()) counts[s] = (counts[s] ?? 0) + 1;
      throw new Error(
        `${error.message}: ${JSON.stringify(counts)}; ${workers.map((w) => w.output()).join('\n')}`,
      );
    });
    const periodInvoices = () =>
      db!.selectFrom('invoices').selectAll().where('subscription_id', 'in', subscriptions).execute();
    await waitFor('the renewals', async () => (await periodInvoices()).length >= SUBSCRIPTIONS * 4, 60_000);
    for (let k = 0; k < 4; k++) await boss.send(QUEUES.invoiceCharge, {});
    await waitFor(
      'the renewal invoices paid',
      async () => (await periodInvoices()).every((invoice) => invoice.status === 'PAID'),
      60_000,
    );

    // Exactly once, everywhere.
    const inbox = await db.selectFrom('inbox').select(['gateway_event_id', 'gateway_account']).execute();
    expect(inbox).toHaveLength(PAYMENTS);
    expect(inbox.filter((row) => row.gateway_account !== null)).toHaveLength(ACCOUNT_PAYMENTS);
    expect(new Set(inbox.map((row) => row.gateway_account).filter(Boolean))).toEqual(new Set(accounts));
    const periods = await periodInvoices();
    expect(periods).toHaveLength(SUBSCRIPTIONS * 4);
    for (const id of subscriptions) {
      expect(
        periods
          .filter((invoice) => invoice.subscription_id === id)
          .map((invoice) => invoice.period_index)
          .sort(),
      ).toEqual([0, 1, 2, 3]);
    }
    const transactions = await db.selectFrom('transactions').selectAll().execute();
    const succeeded = transactions.filter((t) => t.status === 'succeeded');
    const perInvoice = new Map<string, number>();
    for (const t of succeeded) perInvoice.set(t.invoice_id!, (perInvoice.get(t.invoice_id!) ?? 0) + 1);
    expect([...perInvoice.values()].every((count) => count === 1)).toBe(true);
    expect(perInvoice.size).toBe(PAYMENTS + CHARGES + SUBSCRIPTIONS * 4);
    expect(transactions.filter((t) => t.status === 'pending' || t.status === 'unknown')).toEqual([]);
    expect(succeeded.filter((t) => t.gateway_account !== null)).toHaveLength(ACCOUNT_PAYMENTS);
    const postings = await db
      .selectFrom('journal_entries')
      .select('idempotency_key')
      .where('source_type', '=', 'transaction')
      .execute();
    expect(postings).toHaveLength(succeeded.length);
    const invoices = await db.selectFrom('invoices').select(['status', 'amount_paid', 'total']).execute();
    expect(
      invoices.every((invoice) => invoice.status === 'PAID' && invoice.amount_paid === invoice.total),
    ).toBe(true);
    const balance = await db
      .selectFrom('postings')
      .select((eb) => eb.fn.sum<string>('amount').as('sum'))
      .executeTakeFirstOrThrow();
    expect(BigInt(balance.sum)).toBe(0n);
    for (const child of [...webs, ...workers]) expect(child.child.exitCode, child.output()).toBeNull();
  }, 300_000);
});
