import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/db/ids.ts';
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

  /*
   * One SecurePay account configured twice in billhook (the default and a `gwa_…` twin): its file
   * imported for the default account, then for the twin. Worked by hand, AUD: charge 3000, payout
   * SP-TWIN of 2947 (fee 53). The twin's import used to book the payout again (fee 53 on the twin,
   * 2947 to its bank, its clearing -3000). Now the payout is the default account's (same id,
   * currency, amount, date and lines): nothing more is booked; a line of the default's charge
   * imported alone for the twin is unmatched there, for a person, and books nothing.
   */
  it('imports one payout for two gateway accounts of the gateway once: the second import books nothing', async () => {
    const charge = await securepayCharge(3_000n);
    const twinId = newId('gwa');
    await app.runtime.db
      .insertInto('gateway_accounts')
      .values({
        id: twinId,
        gateway: 'securepay',
        name: 'twin',
        mode: 'test',
        api_base: null,
        credentials: Buffer.from('x'),
        credentials_key_id: 'k',
        credentials_last4: '{}',
      })
      .execute();
    const file = [
      header,
      `SP-TWIN,paid,2026-11-05,2026-11-06,LT1,charge,${charge},AUD,30.00,0.53,29.47,2026-11-04T10:00:00+11:00`,
    ].join('\r\n');
    expect((await post('gateway=securepay', file)).body).toMatchObject({ recorded: { payouts: 1 } });
    const books = await booksIn(app.runtime.db, 'AUD');
    const twin = await post(`gateway=securepay&gateway_account=${twinId}`, file);
    expect(twin.status).toBe(200);
    expect(await booksIn(app.runtime.db, 'AUD')).toEqual(books);
    const payouts = await app.runtime.db
      .selectFrom('payouts')
      .select('gateway_account')
      .where('gateway_payout_id', '=', 'SP-TWIN')
      .execute();
    expect(payouts).toEqual([{ gateway_account: null }]);

    const unpaid = [header, `,,,,LT2,charge,${charge},AUD,30.00,0.53,29.47,2026-11-04T10:00:00+11:00`].join(
      '\r\n',
    );
    const alone = await post(`gateway=securepay&gateway_account=${twinId}`, unpaid);
    expect(alone.body).toMatchObject({ recorded: { lines: 0, unmatched: 1 } });
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
