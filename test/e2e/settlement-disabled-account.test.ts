import { randomBytes } from 'node:crypto';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/queue/queues.ts';
import {
  DISABLED_SWEEP_DAYS,
  lastDays,
  settlementSources,
  syncSettlements,
} from '../../src/settlement/sync.ts';
import { EWAY_TEST_KEY, EWAY_TEST_PASSWORD, ewayFixture, FIXTURE_TOKEN } from '../gateways/eway/fixtures.ts';
import type { TestApp } from '../support/app.ts';
import { ewayTokenPaymentApproves } from '../support/eway.ts';
import { ledgerByCode } from '../support/flow.ts';
import { expectEveryMockUsed } from '../support/nock.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

/** The eWAY account's own API (its `api_base`); the environment configures no default eWAY account. */
const EWAY_ACCOUNT_BASE = 'https://eway.disabled-account.e2e.test';

/**
 * One day of eWAY settlement (api.settlement_search.refund_fees.constructed.json, as in
 * settlement-eway.test.ts): purchases 12189063 (64.00), 12189930 and 12189936 (10.00 each), refund
 * 12190212 (10.00), 0.25 fee each; paid 73.00.
 */
const DAY = ewayFixture('api.settlement_search.refund_fees.constructed.json');
const [PURCHASE_1, PURCHASE_2, PURCHASE_3, REFUND] = DAY.SettlementTransactions.map(
  (t: { TransactionID: number }) => t.TransactionID,
) as number[];
const NOTHING = { SettlementSummaries: [], SettlementTransactions: [], Errors: '' };

/**
 * eWAY answering the account's settlement searches: the day for the first date asked, nothing after.
 * @returns how many searches eWAY was asked so far
 */
function ewaySettles(): () => number {
  let asked = 0;
  nock(EWAY_ACCOUNT_BASE)
    .persist()
    .get('/Search/Settlement')
    .query(true)
    .reply(() => [200, ++asked === 1 ? DAY : NOTHING]);
  return () => asked;
}

/**
 * A disabled gateway account's settlement (PRODUCT §12, §13): disabling stops new charges and refunds,
 * not bookkeeping. Purchases and a refund made on an eWAY gateway account (gwa_…), the account
 * disabled before eWAY settles the day: the daily `settlement.sync` still asks it (its clearing holds
 * 8400 - 1000 = 7400 AUD not paid out), books the day's payout of 7300 and 100 of fees, clearing 0.
 * The sweep used to skip every disabled account: clearing 7400 and no fees for ever. Then nothing is
 * left in flight, and the next sync still asks it (a chargeback can come within the chargeback
 * window, DISABLED_SWEEP_DAYS, and the sweep may be the only way billhook learns of it); it used to
 * be asked nothing once its clearing was 0. After the window it is asked only while money is in
 * flight.
 */
describe('settlement of a disabled gateway account', () => {
  let app: TestApp;
  let account: string;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      BILLHOOK_SECRET_KEY: randomBytes(32).toString('hex'),
      EWAY_API_KEY: '',
      EWAY_API_PASSWORD: '',
      STRIPE_SECRET_KEY: '',
    });
    const created = await app.api('POST', '/v1/gateway-accounts', {
      gateway: 'eway',
      name: 'AU',
      mode: 'test',
      credentials: { api_key: EWAY_TEST_KEY, api_password: EWAY_TEST_PASSWORD },
      api_base: EWAY_ACCOUNT_BASE,
    });
    expect(created.status).toBe(201);
    account = created.body.id;
  });
  afterEach(expectEveryMockUsed);
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  /** An AUD invoice of `amount` paid on the account by a token payment eWAY approves as `transactionId`. */
  async function charge(amount: number, transactionId: number) {
    const customer = await app.api('POST', '/v1/customers', { email: 'ada@example.com', name: 'Ada' });
    const method = await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'eway',
      gateway_account: account,
      gateway_token: FIXTURE_TOKEN,
    });
    expect(method.status).toBe(201);
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency: 'aud',
      lines: [{ description: 'Pro plan', amount, quantity: 1 }],
    });
    const invoice = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    ewayTokenPaymentApproves(EWAY_ACCOUNT_BASE, transactionId);
    const charged = await app.api('POST', `/v1/invoices/${invoice.body.id}/charge`, {});
    expect(charged.body.transaction).toMatchObject({ status: 'succeeded', gateway_account: account });
    return charged.body as { invoice: { id: string }; transaction: { id: string } };
  }

  /** One tick of the daily `settlement.sync`, worked by the running worker, ended. */
  async function sync(): Promise<void> {
    const boss = app.runtime.boss;
    const jobId = await boss.send(QUEUES.settlementSync, {});
    wakeWorkers(boss, QUEUES.settlementSync);
    const job = await waitFor('the settlement.sync job to end', async () => {
      const found = jobId ? await boss.getJobById(QUEUES.settlementSync, jobId) : null;
      return found && ['completed', 'failed', 'retry'].includes(found.state) ? found : undefined;
    });
    expect(job.state).toBe('completed');
  }

  it('is still swept: its last payout and fees are booked; then it is still asked within the chargeback window', async () => {
    const first = await charge(6_400, PURCHASE_1!);
    await charge(1_000, PURCHASE_2!);
    await charge(1_000, PURCHASE_3!);
    nock(EWAY_ACCOUNT_BASE)
      .post(`/Transaction/${PURCHASE_1}/Refund`)
      .reply(200, { ...ewayFixture('api.refund.approved.json'), TransactionID: REFUND });
    const refund = await app.api('POST', `/v1/invoices/${first.invoice.id}/refund`, { amount: 1_000 });
    expect(refund.body).toMatchObject({ status: 'succeeded', gateway_account: account });
    expect((await app.api('POST', `/v1/gateway-accounts/${account}/disable`, {})).body).toMatchObject({
      status: 'disabled',
    });

    // Swept for DISABLED_SWEEP_DAYS after it was disabled, and after that while money is in flight.
    const swept = async (now?: Date) =>
      (
        await settlementSources(app.runtime.db, app.runtime.registry, app.runtime.accounts, undefined, now)
      ).map((source) => source.account.gatewayAccount);
    const afterWindow = new Date(Date.now() + (DISABLED_SWEEP_DAYS + 1) * 86_400_000);
    expect(await swept()).toContain(account);
    expect(await swept(afterWindow)).toContain(account);

    const asked = ewaySettles();
    await sync();
    const payouts = await app.api('GET', `/v1/payouts?gateway_account=${account}`);
    expect(payouts.body.data).toMatchObject([
      { gateway_account: account, status: 'paid', currency: 'AUD', amount: 7_300 },
    ]);
    const books = await ledgerByCode(app);
    expect(books).toMatchObject({
      [`gateway_clearing:eway:${account} AUD`]: 0,
      [`gateway_fees:eway:${account} AUD`]: 100,
      [`payouts_in_transit:eway:${account} AUD`]: 0,
      [`bank:eway:${account} AUD`]: 7_300,
    });
    expect((await app.api('GET', '/v1/reconciliation-exceptions?gateway=eway')).body.data).toEqual([]);

    // Nothing in flight any more: within the window the next sync still asks the disabled account
    // (eWAY answers nothing new: nothing more is booked); after it, it would not be asked.
    expect(await swept()).toContain(account);
    expect(await swept(afterWindow)).not.toContain(account);
    const before = asked();
    await sync();
    expect(asked()).toBeGreaterThan(before);
    expect(await ledgerByCode(app)).toEqual(books);
  });

  /*
   * A disabled account whose credentials no longer decrypt (encrypted under a key this process does
   * not have: `secret_key_unknown`) used to make the listing of accounts to sweep throw: no account
   * was swept at all. Now its own sync fails, named, and the eWAY account is still swept.
   */
  it('an account whose credentials do not decrypt fails its own sync; the others are still swept', async () => {
    await app.runtime.db
      .insertInto('gateway_accounts')
      .values({
        id: 'gwa_locked',
        gateway: 'stripe',
        name: 'locked',
        mode: 'test',
        api_base: null,
        credentials: Buffer.from('not decryptable'),
        credentials_key_id: 'gone',
        credentials_last4: '{}',
        disabled_at: new Date(),
      })
      .execute();
    await app.runtime.accounts.changed();
    nock(EWAY_ACCOUNT_BASE).get('/Search/Settlement').query(true).reply(200, NOTHING).persist();
    const sources = await settlementSources(app.runtime.db, app.runtime.registry, app.runtime.accounts);
    const results = await syncSettlements(app.runtime.db, 'system', sources, lastDays(1));
    const of = (id: string) => results.find((result) => result.account.gatewayAccount === id);
    expect(of(account)).toMatchObject({ totals: { lines: 0, payouts: 0 } });
    expect(of('gwa_locked')).toMatchObject({ error: expect.any(Error) });
  });
});
