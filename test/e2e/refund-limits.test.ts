import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { startCharge } from '../../src/payments/charges.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import type { TestApp } from '../support/app.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

/** Every gateway: a refund beyond what was paid is refused before any gateway call, changing nothing. */
describe('refunds never exceed the paid amount, on every gateway', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp({
      PAYPAL_CLIENT_ID: 'id',
      PAYPAL_CLIENT_SECRET: 'secret',
      AUTHORIZENET_API_LOGIN_ID: 'login',
      AUTHORIZENET_TRANSACTION_KEY: 'key',
      EWAY_API_KEY: 'key',
      EWAY_API_PASSWORD: 'password',
      SECUREPAY_CLIENT_ID: 'id',
      SECUREPAY_CLIENT_SECRET: 'secret',
      SECUREPAY_MERCHANT_CODE: '5AR0055',
    });
  });
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  it.each([
    ['stripe', 'pm_card_visa'],
    ['paypal', 'card:8kk8451t'],
    ['authorizenet', '500922925/500815184'],
    ['eway', '917758625852'],
    ['securepay', 'card-token-1'],
  ])('%s: 422 with a field message, no refund row, the gateway never called', async (gateway, token) => {
    const customer = (await app.api('POST', '/v1/customers', { email: `${gateway}@example.com` })).body;
    await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway,
      gateway_token: token,
      gateway_customer_id: 'cust-1',
    });
    const draft = (
      await app.api('POST', '/v1/invoices', {
        customer: customer.id,
        currency: 'AUD',
        lines: [{ description: 'x', amount: 5000 }],
      })
    ).body;
    await app.api('POST', `/v1/invoices/${draft.id}/finalize`);
    // Paid as the gateway would have confirmed it (no gateway call needed for this test).
    const attempt = await startCharge(app.runtime.db, 'system', app.runtime, draft.id);
    await inUnitOfWork(app.runtime.db, { actor: 'system' }, (work) =>
      recordChargeResult(work, attempt, { status: 'succeeded', gatewayTransactionId: `${gateway}-paid-1` }),
    );
    const refund = await app.api('POST', `/v1/invoices/${draft.id}/refund`, { amount: 5001 });
    expect(refund.status).toBe(422);
    expect(refund.body.error.fields.amount).toMatch(/at most 5000/);
    const rows = await app.runtime.db
      .selectFrom('refunds')
      .selectAll()
      .where('invoice_id', '=', draft.id)
      .execute();
    expect(rows).toEqual([]);
    expect((await app.api('GET', `/v1/invoices/${draft.id}`)).body).toMatchObject({
      status: 'PAID',
      amount_refunded: 0,
    });
  });
});
