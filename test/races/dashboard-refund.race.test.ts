import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../support/app.ts';
import { balancedWithoutDeadlocks, createTestDatabase } from '../support/database.ts';
import { ledgerByCode, paidStripeInvoice, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/**
 * A refund made at Stripe's dashboard, reported by webhook, racing a refund by hand of the same
 * payment (`POST /v1/invoices/:id/refund`, PRODUCT §11). Every refund of an invoice's payments reads
 * what is still refundable under the invoice's lock (`createRefund`), so the second to take it sees
 * the first's refund; the webhook's used to read the room before any lock, and both refunds passed the
 * same room. The test sets that order every time: another transaction holds the invoice, the refund
 * by hand queues for it, then the webhook's unit of work; then the holder ends.
 */
describe('a dashboard refund webhook racing a refund by hand of the same payment', () => {
  let app: TestApp;
  beforeAll(async () => {
    const url = await createTestDatabase({ settings: { deadlock_timeout: '20ms' } });
    app = await startOfflineTestApp({ DATABASE_URL: url });
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => stopOfflineTestApp(app));

  const db = () => app.runtime.db;

  /**
   * How many statements on invoices or refunds wait for a lock in this database (pg_stat_activity):
   * locking the invoice, or inserting a refund of it (its foreign key shares the invoice's row).
   */
  async function waitingOnInvoices(): Promise<number> {
    const { rows } = await sql<{ waiting: number }>`
      SELECT count(*)::int AS waiting FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'
        AND (query LIKE '%"invoices"%' OR query LIKE '%"refunds"%')
    `.execute(db());
    return rows[0]?.waiting ?? 0;
  }

  /** The real `charge.refund.updated` event, about refund `refundId` of `amount` (EUR minor units) of `intent`, succeeded. */
  function dashboardRefundSucceeded(refundId: string, intent: string, amount: number) {
    const event = stripeFixture('webhook.charge.refund.updated.json');
    return {
      ...event,
      id: `evt_${refundId}`,
      type: 'refund.updated',
      data: {
        object: {
          ...event.data.object,
          id: refundId,
          amount,
          currency: 'eur',
          status: 'succeeded',
          payment_intent: intent,
          metadata: {},
        },
      },
    };
  }

  /*
   * Worked by hand, minor units: the invoice of EUR 46.20 is paid by card (gateway_clearing:stripe
   * +4620). The refund by hand of 3000 takes the invoice first: 1620 stays refundable. The dashboard's
   * refund of 3000 is then more than the 1620 left: no refund row, a refund_exceeds_paid exception for
   * a person. Books: refunds 3000, clearing 4620 - 3000 = 1620; the invoice PARTIALLY_REFUNDED for
   * 3000. Before, the webhook read 4620 refundable before the refund by hand was committed and booked
   * its 3000 too: 6000 given back of a payment of 4620.
   */
  it('counts the refund by hand committed first, and raises refund_exceeds_paid for the rest', async () => {
    const { invoice, transaction } = await paidStripeInvoice(app);
    const before = await ledgerByCode(app);
    stripeRefundSucceeds('re_by_hand_race');
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding = () => {};
    const held = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const holder = db()
      .transaction()
      .execute(async (trx) => {
        await trx.selectFrom('invoices').select('id').where('id', '=', invoice.id).forUpdate().execute();
        holding();
        await released;
      });
    await held;
    const byHand = app.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 3000 });
    await waitFor(
      'the refund by hand to wait for the invoice',
      async () => (await waitingOnInvoices()) === 1,
    );
    const event = dashboardRefundSucceeded('re_dashboard_race', transaction.gateway_transaction_id, 3000);
    expect((await deliverStripe(app.url, event)).status).toBe(200);
    await waitFor('the webhook to wait for the invoice', async () => (await waitingOnInvoices()) === 2);
    release();
    await holder;

    const refunded = await byHand;
    expect(refunded.status, JSON.stringify(refunded.body)).toBe(201);
    expect(refunded.body).toMatchObject({ amount: 3000, status: 'succeeded' });
    const settled = await waitFor('the webhook to be settled', async () => {
      const row = await db()
        .selectFrom('inbox')
        .select(['status', 'outcome'])
        .where('gateway_event_id', '=', event.id)
        .executeTakeFirst();
      return row && row.status !== 'received' && row.status !== 'retrying' ? row : undefined;
    });
    expect(settled).toEqual({ status: 'exception', outcome: 'refund_exceeds_paid' });
    const exceptions = await db()
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'transaction_id'])
      .where('transaction_id', '=', transaction.id)
      .execute();
    expect(exceptions).toEqual([{ kind: 'refund_exceeds_paid', transaction_id: transaction.id }]);
    const refunds = await db()
      .selectFrom('refunds')
      .select(['amount', 'status'])
      .where('transaction_id', '=', transaction.id)
      .execute();
    expect(refunds).toEqual([{ amount: 3000n, status: 'succeeded' }]);
    const after = await ledgerByCode(app);
    expect(after['refunds EUR']).toBe((before['refunds EUR'] ?? 0) + 3000);
    expect(after['gateway_clearing:stripe EUR']).toBe(before['gateway_clearing:stripe EUR']! - 3000);
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_paid: 4620,
      amount_refunded: 3000,
    });
    await balancedWithoutDeadlocks(db(), 'EUR');
  });
});
