import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PaymentEvent } from '../../src/gateways/types.ts';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { applyAsBatch, booksIn, pendingCharge } from '../support/money-core.ts';

/**
 * `POST /v1/settlements/import` (PRODUCT.md §13) over real HTTP: a SecurePay settlement report in
 * billhook's CSV format books its fees and payouts against SecurePay's charges and refunds, importing
 * the same file again changes nothing, and a refused file changes nothing.
 */
describe('POST /v1/settlements/import', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app?.stop());

  const post = (query: string, body: string, type = 'text/csv'): Promise<{ status: number; body: any }> =>
    fetch(`${app.url}/v1/settlements/import?${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': type },
      body,
    }).then(async (res) => ({ status: res.status, body: await res.json() }));

  /** A succeeded SecurePay charge (`orderId` = billhook's `txn_…`, as billhook sends it). */
  async function securepayCharge(amount: bigint) {
    const db = app.runtime.db;
    const { transaction } = await pendingCharge(db, { currency: 'AUD', amount, gateway: 'securepay' });
    const event: PaymentEvent = {
      type: 'charge.succeeded',
      gateway: 'securepay',
      gatewayEventId: `sp_${transaction.id}`,
      gatewayTransactionId: transaction.id,
      reference: transaction.id,
      amount,
      currency: 'AUD',
      occurredAt: new Date(),
      raw: {},
    };
    await applyAsBatch(db, event);
    return transaction.id;
  }

  const header =
    'payout_id,payout_status,payout_date,arrival_date,line_id,kind,gateway_transaction_id,currency,gross,fee,net,occurred_at';

  it('books the fees and the payout once: clearing 0 for what was paid out; the same file again changes nothing', async () => {
    const first = await securepayCharge(10_000n);
    const second = await securepayCharge(4_950n);
    const file = [
      header,
      `SP-1,paid,2026-11-03,2026-11-04,L1,charge,${first},AUD,100.00,1.75,98.25,2026-11-02T09:15:00+11:00`,
      `SP-1,paid,2026-11-03,2026-11-04,L2,charge,${second},AUD,49.50,0.87,48.63,2026-11-02T14:40:00+11:00`,
    ].join('\r\n');
    const imported = await post('gateway=securepay', file);
    expect(imported.status).toBe(200);
    expect(imported.body).toMatchObject({
      object: 'settlement_import',
      gateway: 'securepay',
      gateway_account: null,
      format: 'billhook',
      read: { lines: 2, payouts: 1 },
      recorded: { lines: 0, payouts: 1, unmatched: 0 },
    });
    const books = await booksIn(app.runtime.db, 'AUD');
    expect(books).toMatchObject({
      'gateway_clearing:securepay': 0n,
      'gateway_fees:securepay': 262n,
      'bank:securepay': 14_688n,
    });
    const again = await post('gateway=securepay', file);
    expect(again.body).toMatchObject({ sha256: imported.body.sha256, recorded: { lines: 0, payouts: 0 } });
    expect(await booksIn(app.runtime.db, 'AUD')).toEqual(books);
  });

  it('refuses a file with an inexact amount (422, row and column named) and changes nothing', async () => {
    const charge = await securepayCharge(1_000n);
    const before = await booksIn(app.runtime.db, 'AUD');
    const refused = await post(
      'gateway=securepay',
      [header, `SP-2,paid,2026-11-05,,L3,charge,${charge},AUD,10.005,0.20,9.805,2026-11-05T09:00:00Z`].join(
        '\n',
      ),
    );
    expect(refused.status).toBe(422);
    expect(Object.keys(refused.body.error.fields).join(' ')).toMatch(/row 2, column gross/);
    expect(await booksIn(app.runtime.db, 'AUD')).toEqual(before);
    expect(
      await app.runtime.db
        .selectFrom('payouts')
        .select('id')
        .where('gateway_payout_id', '=', 'SP-2')
        .execute(),
    ).toEqual([]);
  });

  it('refuses a bad query, a gateway account of another gateway, and a body that is not CSV', async () => {
    expect((await post('gateway=nope', header)).body.error.fields).toHaveProperty('gateway');
    expect((await post('gateway=stripe&format=securepay', `${header}\n`)).status).toBe(422);
    expect((await post('gateway=securepay&gateway_account=gwa_missing', header)).status).toBe(404);
    expect((await post('gateway=securepay', '{"a":1}', 'application/json')).status).toBe(415);
  });
});
