import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordActivity } from '../../src/activities/activities.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { dispatchEvents } from '../../src/outbound/dispatch.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * PRODUCT.md §6 and §14: the amounts in billhook's own events are what the API answers — JSON
 * integers in minor units beside their currency — not decimal strings a receiver would have to parse
 * (in JavaScript `"4620" + "100"` is `"4620100"`), and every digit of one beyond 2^53 is kept.
 */
describe('outbound event amounts', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64') });
    // The test reads the stored bodies (what is signed and sent), not what a receiver got.
    const endpoint = await app.api('POST', '/v1/webhook-endpoints', {
      url: 'http://127.0.0.1:9/never',
      enabled_events: ['invoice.paid', 'payout.paid'],
    });
    expect(endpoint.status).toBe(201);
  });
  afterAll(() => app.stop());

  /** The stored body text and parsed body of the event about resource `id`. */
  async function eventAbout(id: string) {
    await dispatchEvents(app.runtime.db, app.runtime.boss);
    const rows = await app.runtime.db.selectFrom('outbound_events').select('body').execute();
    const found = rows.find((row) => JSON.parse(row.body).data.object.id === id);
    expect(found).toBeDefined();
    return { text: found!.body, body: JSON.parse(found!.body) };
  }

  it('invoice.paid of JPY 4620 paid offline carries amount, amount_paid 4620 and amount_due 0 as integers, as GET /v1/invoices does', async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'yen@example.com' });
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency: 'jpy',
      lines: [{ description: 'Pro plan', amount: 4620 }],
    });
    await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
    const paid = await app.api('POST', `/v1/invoices/${draft.body.id}/payments`, {
      amount: 4620,
      method: 'BANK',
    });
    expect(paid.status).toBe(201);
    const invoice = await app.api('GET', `/v1/invoices/${draft.body.id}`);
    expect(invoice.body).toMatchObject({ status: 'PAID', currency: 'JPY', amount_paid: 4620, amount_due: 0 });

    const { body } = await eventAbout(draft.body.id);
    expect(body.type).toBe('invoice.paid');
    expect(body.data.object).toMatchObject({
      object: 'invoice',
      currency: 'JPY',
      amount: 4620,
      amount_paid: invoice.body.amount_paid,
      amount_due: invoice.body.amount_due,
    });
  });

  it('payout.paid of IDR 2^53 + 1 = 9007199254740993 keeps every digit as a JSON integer', async () => {
    await inUnitOfWork(app.runtime.db, { actor: 'system' }, (work) =>
      recordActivity(work, {
        resourceType: 'payout',
        resourceId: 'pyo_big',
        action: 'payout.paid',
        data: { amount: 9_007_199_254_740_993n, currency: 'IDR', gateway_payout_id: 'po_big' },
      }),
    );
    const { text, body } = await eventAbout('pyo_big');
    expect(text).toContain('"amount":9007199254740993');
    expect(body.data.object).toMatchObject({ currency: 'IDR', gateway_payout_id: 'po_big' });
  });
});
