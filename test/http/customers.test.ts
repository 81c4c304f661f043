import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chart } from '../../src/ledger/chart.ts';
import { postEntry, transfer } from '../../src/ledger/journal.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf } from '../support/collection.ts';

describe('/v1/customers updates, lists and balances; /v1/payment-methods reads and default', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());

  it('updates a customer (200), logging the changed fields; 404 unknown, 422 bad fields, 409 taken external_id', async () => {
    const ada = (await app.api('POST', '/v1/customers', { email: 'ada@example.com', name: 'Ada' })).body;
    expect(ada.balances).toEqual([]);
    await app.api('POST', '/v1/customers', { email: 'bob@example.com', external_id: 'crm-bob' });

    const updated = await app.api('POST', `/v1/customers/${ada.id}`, {
      email: 'ada@lovelace.org',
      name: null,
      external_id: 'crm-ada',
      metadata: { plan: 'gold' },
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      id: ada.id,
      email: 'ada@lovelace.org',
      name: null,
      external_id: 'crm-ada',
      metadata: { plan: 'gold' },
      balances: [],
    });
    expect((await app.api('GET', `/v1/customers/${ada.id}`)).body).toEqual(updated.body);
    const log = await app.api('GET', `/v1/activities?resource=${ada.id}`);
    expect(log.body.data.map((a: { action: string }) => a.action)).toEqual([
      'customer.created',
      'customer.updated',
    ]);
    expect(log.body.data[1].data).toEqual({
      email: { from: 'ada@example.com', to: 'ada@lovelace.org' },
      name: { from: 'Ada', to: null },
      external_id: { from: null, to: 'crm-ada' },
      metadata: { from: {}, to: { plan: 'gold' } },
    });

    const taken = await app.api('POST', `/v1/customers/${ada.id}`, { external_id: 'crm-bob', name: 'X' });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('external_id_taken');
    const bad = await app.api('POST', `/v1/customers/${ada.id}`, { email: 'not-an-email', extra: 1 });
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields).toHaveProperty('email');
    expect((await app.api('GET', `/v1/customers/${ada.id}`)).body).toEqual(updated.body);
    expect(await actionsOf(app, ada.id)).toEqual(['customer.created', 'customer.updated']);
    expect((await app.api('POST', '/v1/customers/cus_nope', { name: 'x' })).status).toBe(404);
  });

  it('lists customers filtered by email and external_id, with pagination', async () => {
    const a = (await app.api('POST', '/v1/customers', { email: 'list@example.com', external_id: 'crm-l1' }))
      .body;
    const b = (await app.api('POST', '/v1/customers', { email: 'list@example.com' })).body;
    const byEmail = await app.api('GET', '/v1/customers?email=list@example.com');
    expect(byEmail.status).toBe(200);
    expect(byEmail.body.data.map((c: { id: string }) => c.id)).toEqual([b.id, a.id]);
    expect(byEmail.body.data[0]).toMatchObject({ object: 'customer', balances: [] });
    const byExternal = await app.api('GET', '/v1/customers?external_id=crm-l1');
    expect(byExternal.body.data.map((c: { id: string }) => c.id)).toEqual([a.id]);
    const page = await app.api('GET', '/v1/customers?email=list@example.com&limit=1');
    expect(page.body).toMatchObject({ has_more: true });
    expect(page.body.data).toHaveLength(1);
    expect((await app.api('GET', '/v1/customers?limit=0')).status).toBe(422);
  });

  it('shows balances per currency from the ledger: positive owes, negative credit', async () => {
    const customer = (await app.api('POST', '/v1/customers', { email: 'owes@example.com' })).body;
    const other = (await app.api('POST', '/v1/customers', { email: 'other@example.com' })).body;
    const invoice = async (id: string, currency: string, amount: number) => {
      const draft = await app.api('POST', '/v1/invoices', {
        customer: id,
        currency,
        lines: [{ description: 'Work', amount }],
      });
      return (await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`)).body;
    };
    const usd = await invoice(customer.id, 'USD', 5000);
    await invoice(customer.id, 'EUR', 1200);
    await invoice(other.id, 'USD', 999);
    await app.api('POST', `/v1/invoices/${usd.id}/payments`, { amount: 2000, method: 'BANK' });
    // A credit: money received in EUR beyond what is owed (an entry posted by hand here).
    await inUnitOfWork(app.runtime.db, { actor: 'system' }, (work) =>
      postEntry(work, {
        idempotencyKey: `test:${customer.id}:credit`,
        description: 'prepayment',
        source: { type: 'test', id: customer.id },
        postings: transfer(chart.offlineReceipts, chart.receivable(customer.id), 2000n, 'EUR'),
      }),
    );

    const read = await app.api('GET', `/v1/customers/${customer.id}`);
    expect(read.body.balances).toEqual([
      { currency: 'EUR', balance: -800 },
      { currency: 'USD', balance: 3000 },
    ]);
    const listed = await app.api('GET', '/v1/customers?email=owes@example.com');
    expect(listed.body.data[0].balances).toEqual(read.body.balances);
    const expanded = await app.api('GET', `/v1/invoices/${usd.id}?expand=customer`);
    expect(expanded.body.customer.balances).toEqual(read.body.balances);
    expect((await app.api('GET', `/v1/customers/${other.id}`)).body.balances).toEqual([
      { currency: 'USD', balance: 999 },
    ]);
  });

  it('lists and reads payment methods; {default: true} makes one the only default, atomically', async () => {
    const customer = (await app.api('POST', '/v1/customers', { email: 'pm@example.com' })).body;
    const store = async (token: string) =>
      (
        await app.api('POST', '/v1/payment-methods', {
          customer: customer.id,
          gateway: 'stripe',
          gateway_token: token,
          gateway_customer_id: 'cus_X',
        })
      ).body;
    const first = await store('pm_1');
    const second = await store('pm_2');
    const third = await store('pm_3');
    expect(first.default).toBe(true);

    const list = await app.api('GET', `/v1/payment-methods?customer=${customer.id}`);
    expect(list.status).toBe(200);
    expect(list.body.data.map((p: { id: string }) => p.id)).toEqual([third.id, second.id, first.id]);
    expect((await app.api('GET', `/v1/payment-methods/${second.id}`)).body).toEqual(second);
    expect((await app.api('GET', '/v1/payment-methods/pm_nope')).status).toBe(404);

    const made = await app.api('POST', `/v1/payment-methods/${second.id}`, { default: true });
    expect(made.status).toBe(200);
    expect(made.body).toMatchObject({ id: second.id, default: true });
    const defaults = async () =>
      (await app.api('GET', `/v1/payment-methods?customer=${customer.id}`)).body.data
        .filter((p: { default: boolean }) => p.default)
        .map((p: { id: string }) => p.id);
    expect(await defaults()).toEqual([second.id]);
    const log = await app.api('GET', `/v1/activities?resource=${second.id}`);
    expect(log.body.data.map((a: { action: string }) => a.action)).toEqual([
      'payment_method.created',
      'payment_method.updated',
    ]);
    expect(log.body.data[1].data).toEqual({ default: { from: false, to: true }, previous_default: first.id });
    // Already the default: 200, nothing logged.
    expect((await app.api('POST', `/v1/payment-methods/${second.id}`, { default: true })).status).toBe(200);
    expect(await actionsOf(app, second.id)).toHaveLength(2);

    // Racing requests: exactly one default in the end, every request answered 200.
    const answers = await Promise.all(
      [first, third, first, third, second].map((p) =>
        app.api('POST', `/v1/payment-methods/${p.id}`, { default: true }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await defaults()).toHaveLength(1);

    const before = await defaults();
    const bad = await app.api('POST', `/v1/payment-methods/${first.id}`, { default: false });
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields).toHaveProperty('default');
    expect((await app.api('POST', `/v1/payment-methods/${first.id}`, {})).status).toBe(422);
    expect(await defaults()).toEqual(before);
    expect((await app.api('POST', '/v1/payment-methods/pm_nope', { default: true })).status).toBe(404);
  });
});
