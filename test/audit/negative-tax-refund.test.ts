import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.ts';
import { ledgerByCode, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

describe('a refund gives back its share of a negative invoice tax (PRODUCT §11)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  it('a full refund of 1000 (untaxed) less a 500 credit at 20% (tax −100) leaves tax payable and revenue at 0', async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'negtax@example.com' });
    await app.api('POST', '/v1/payment-methods', {
      customer: customer.body.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    const before = await ledgerByCode(app);
    const draft = await app.api('POST', '/v1/invoices', {
      customer: customer.body.id,
      currency: 'eur',
      lines: [
        { description: 'Consulting', amount: 1000 },
        { description: 'Credit for a taxed overcharge', amount: 500, type: 'CREDIT', tax_percent: '20' },
      ],
    });
    expect(draft.status).toBe(201);
    // 1000 − 500 = 500 subtotal; tax 0 − 100 = −100; total 400.
    expect([draft.body.subtotal, draft.body.tax, draft.body.total]).toEqual([500, -100, 400]);
    expect((await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`)).body.status).toBe('OPEN');
    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${draft.body.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');

    stripeRefundSucceeds('re_negative_tax');
    const refund = await app.api('POST', `/v1/invoices/${draft.body.id}/refund`, { amount: 400 });
    expect(refund.status).toBe(201);
    expect(refund.body.status).toBe('succeeded');

    // The whole invoice is given back: its credit note holds all its tax (−100) and all its net (500).
    const notes = await app.api('GET', `/v1/credit-notes?invoice=${draft.body.id}`);
    expect(
      notes.body.data.map((n: { subtotal: number; tax: number; total: number }) => [
        n.subtotal,
        n.tax,
        n.total,
      ]),
    ).toEqual([[500, -100, 400]]);
    const after = await ledgerByCode(app);
    const delta = (code: string) => (after[code] ?? 0) - (before[code] ?? 0);
    expect(delta('tax_payable EUR')).toBe(0);
    expect(delta('revenue EUR') + delta('refunds EUR')).toBe(0);
  });
});
