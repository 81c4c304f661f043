import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { recoverUnansweredRefunds, retryUnknownRefund } from '../../src/payments/refund-retry.ts';
import { createRefund } from '../../src/payments/refunds.ts';
import { deadQueueOf, QUEUES } from '../../src/queue/queues.ts';
import { applyEvent } from '../../src/reconcile/apply.ts';
import { retryDeadLetter } from '../../src/workers/dead-letters.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { ledgerByCode, openInvoice, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { startHangingWeb, startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { NO_ANSWER_DELAY_MS } from '../support/timeouts.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

/** PRODUCT §7's `invoice.refund` queue: refunds the gateway left without an answer. */
describe('invoice.refund: refunds left unknown', () => {
  let app: TestApp;
  /** The web process that takes the refund whose answer never comes. */
  let hanging: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
    hanging = await startHangingWeb(app);
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await hanging.stop();
    await stopOfflineTestApp(app);
  });

  async function paidInvoice() {
    const opened = await openInvoice(app);
    stripeChargeSucceeds();
    const charged = await app.api('POST', `/v1/invoices/${opened.invoice.id}/charge`, {});
    expect(charged.body.invoice.status).toBe('PAID');
    return charged.body;
  }

  it('sends a timed-out Stripe refund again with the same idempotency key and records it once', async () => {
    const { invoice, transaction } = await paidInvoice();
    const keys: string[] = [];
    // Stripe takes the refund but the answer never arrives; the queue's repeat gets the answer.
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .delay(NO_ANSWER_DELAY_MS)
      .reply((request: Request) => {
        keys.push(request.headers.get('idempotency-key') ?? '');
        return [500, {}];
      });
    stripeRefundSucceeds('re_stripe_after_timeout');
    const refunded = await hanging.api('POST', `/v1/invoices/${invoice.id}/refund`, { amount: 1000 });
    expect(refunded.status).toBe(201);
    expect(refunded.body).toMatchObject({ status: 'unknown', amount: 1000 });
    // Its invoice.refund job is queued: the worker fetches it now rather than at its next poll (5 s).
    wakeWorkers(app.runtime.boss, QUEUES.invoiceRefund);

    const settled = await waitFor('the refund to be settled by the queue', async () => {
      const list = await app.api('GET', '/v1/refunds?limit=100');
      const refund = list.body.data.find((r: { id: string }) => r.id === refunded.body.id);
      return refund?.status === 'succeeded' ? refund : undefined;
    });
    expect(settled).toMatchObject({ gateway_refund_id: 're_stripe_after_timeout', amount: 1000 });
    expect(keys).toEqual([refunded.body.id]);
    const after = await app.api('GET', `/v1/invoices/${invoice.id}`);
    expect(after.body).toMatchObject({ status: 'PARTIALLY_REFUNDED', amount_refunded: 1000 });
    const entries = await app.runtime.db
      .selectFrom('journal_entries')
      .select('idempotency_key')
      .where('source_id', '=', refunded.body.id)
      .execute();
    expect(entries).toEqual([{ idempotency_key: `${refunded.body.id}:succeeded` }]);
    expect((await ledgerByCode(app))['refunds EUR']).toBe(1000);
    expect(transaction.status).toBe('succeeded');
  });

  it('treats a refund committed but never answered (a crash before the gateway call) as unknown and repeats it', async () => {
    const { invoice, transaction } = await paidInvoice();
    const { db, boss } = app.runtime;
    const [row, reported] = await inUnitOfWork(db, { actor: 'system' }, async (work) => {
      const txn = await work.trx
        .selectFrom('transactions')
        .selectAll()
        .where('id', '=', transaction.id)
        .executeTakeFirstOrThrow();
      return [
        // The refund row was committed `pending`; the process stopped before the gateway answered.
        await createRefund(work, txn, { amount: 700n }),
        // A refund the gateway reported pending (it carries the gateway's id) waits for the webhook.
        await createRefund(work, txn, { amount: 100n, gatewayRefundId: 're_stripe_reported_pending' }),
      ];
    });
    expect(await recoverUnansweredRefunds(db, 'system', boss, 600)).toEqual([]);
    const longAgo = new Date(Date.now() - 11 * 60_000);
    await db
      .updateTable('refunds')
      .set({ created_at: longAgo })
      .where('id', 'in', [row.id, reported.id])
      .execute();

    const stripe = stripeRefundSucceeds('re_stripe_after_crash');
    expect(await recoverUnansweredRefunds(db, 'system', boss, 600)).toEqual([row.id]);
    wakeWorkers(boss, QUEUES.invoiceRefund);
    // A second sweep finds nothing more: one job, not one per sweep.
    expect(await recoverUnansweredRefunds(db, 'system', boss, 600)).toEqual([]);
    const settled = await waitFor('the queue to settle the recovered refund', async () => {
      const list = await app.api('GET', '/v1/refunds?limit=100');
      const found = list.body.data.find((r: { id: string }) => r.id === row.id);
      return found?.status === 'succeeded' ? found : undefined;
    });
    expect(settled).toMatchObject({ gateway_refund_id: 're_stripe_after_crash', amount: 700 });
    const jobs = await db
      .selectFrom('pgboss.job' as never)
      .select(['name' as never])
      .where('name' as never, '=', 'invoice.refund' as never)
      .where(sql`data->>'refundId'`, '=', row.id)
      .execute();
    expect(jobs).toHaveLength(1);
    const activities = await db
      .selectFrom('activities')
      .select('action')
      .where('resource_id', '=', row.id)
      .orderBy('sequence')
      .execute();
    expect(activities.map((a) => a.action)).toEqual(['refund.created', 'refund.unknown', 'refund.succeeded']);
    const untouched = await app.api('GET', '/v1/refunds?limit=100');
    expect(untouched.body.data.find((r: { id: string }) => r.id === reported.id)).toMatchObject({
      status: 'pending',
    });
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.amount_refunded).toBe(700);
    expect(stripe.isDone()).toBe(true);
  });

  it('does not record a refund made outside billhook without the gateway refund id (the sweep would repeat it)', async () => {
    const { transaction } = await paidInvoice();
    const result = await inUnitOfWork(app.runtime.db, { actor: 'system' }, (work) =>
      applyEvent(
        work,
        {
          type: 'refund.succeeded',
          gateway: 'stripe',
          gatewayEventId: 'evt_refund_without_id',
          gatewayTransactionId: transaction.gateway_transaction_id,
          amount: 100n,
          currency: 'EUR',
          occurredAt: new Date(),
          raw: {},
        },
        { gatewayAccount: null, finalAttempt: false },
      ),
    );
    expect(result).toMatchObject({
      kind: 'exception',
      exception: 'unknown_entity',
      transactionId: transaction.id,
    });
    const refunds = await app.runtime.db
      .selectFrom('refunds')
      .select('id')
      .where('transaction_id', '=', transaction.id)
      .execute();
    expect(refunds).toEqual([]);
  });

  it('asks a person (an unknown_outcome exception) where a repeat is not idempotent, and sends nothing', async () => {
    const { invoice, transaction } = await paidInvoice();
    // As an eWAY payment would be: no idempotency key on eWAY refunds.
    await app.runtime.db
      .updateTable('transactions')
      .set({ gateway: 'eway' })
      .where('id', '=', transaction.id)
      .execute();
    await app.runtime.db
      .insertInto('refunds')
      .values({
        id: 're_eway_unknown',
        transaction_id: transaction.id,
        invoice_id: invoice.id,
        gateway: 'eway',
        amount: 500n,
        currency: 'EUR',
        status: 'unknown',
      })
      .execute();
    const result = await retryUnknownRefund(app.runtime.db, 'system', app.runtime, 're_eway_unknown', false);
    expect(result).toEqual({ kind: 'exception' });
    const exceptions = await app.api('GET', '/v1/reconciliation-exceptions?limit=100');
    expect(exceptions.body.data).toContainEqual(
      expect.objectContaining({
        kind: 'unknown_outcome',
        gateway: 'eway',
        transaction: transaction.id,
        refund: 're_eway_unknown',
        details: { refund: 're_eway_unknown' },
      }),
    );
    // A second refund left unknown on the same charge gets its own exception; the same refund's
    // retry raises none again.
    await app.runtime.db
      .insertInto('refunds')
      .values({
        id: 're_eway_unknown_2',
        transaction_id: transaction.id,
        invoice_id: invoice.id,
        gateway: 'eway',
        amount: 300n,
        currency: 'EUR',
        status: 'unknown',
      })
      .execute();
    for (const refundId of ['re_eway_unknown_2', 're_eway_unknown']) {
      expect(await retryUnknownRefund(app.runtime.db, 'system', app.runtime, refundId, true)).toEqual({
        kind: 'exception',
      });
    }
    const mine = await app.runtime.db
      .selectFrom('reconciliation_exceptions')
      .select(['kind', 'refund_id'])
      .where('transaction_id', '=', transaction.id)
      .orderBy('refund_id')
      .execute();
    expect(mine).toEqual([
      { kind: 'unknown_outcome', refund_id: 're_eway_unknown' },
      { kind: 'unknown_outcome', refund_id: 're_eway_unknown_2' },
    ]);
    // A refund settled meanwhile (by a webhook) is left alone.
    await app.runtime.db
      .updateTable('refunds')
      .set({ status: 'succeeded' })
      .where('id', '=', 're_eway_unknown')
      .execute();
    expect(await retryUnknownRefund(app.runtime.db, 'system', app.runtime, 're_eway_unknown', true)).toEqual({
      kind: 'settled',
      status: 'succeeded',
    });
  });

  it('sends nothing once the gateway may have forgotten the key: a dead letter retried 25 h after a Stripe refund asks a person', async () => {
    const { invoice, transaction } = await paidInvoice();
    const { db, boss } = app.runtime;
    // A refund of 500 made 25 hours ago, which Stripe took but whose answer was lost; its
    // invoice.refund job dead-lettered (its gateway account was misconfigured, say), and the cause is
    // fixed now. Stripe keeps an Idempotency-Key for 24 hours: a repeat now would be a second refund.
    const refundId = `re_${(Date.now() - 25 * 3600_000).toString(32).padStart(10, '0')}0000000001`;
    await db
      .insertInto('refunds')
      .values({
        id: refundId,
        transaction_id: transaction.id,
        invoice_id: invoice.id,
        gateway: 'stripe',
        amount: 500n,
        currency: 'EUR',
        status: 'unknown',
      })
      .execute();
    const sent: string[] = [];
    nock(STRIPE_API_BASE)
      .post('/v1/refunds')
      .reply((request: Request) => {
        sent.push(request.headers.get('idempotency-key') ?? '');
        return [
          200,
          { id: 're_stripe_second', object: 'refund', status: 'succeeded', amount: 500, currency: 'eur' },
        ];
      });
    const dead = (await boss.send(deadQueueOf(QUEUES.invoiceRefund), { refundId }))!;
    expect(await retryDeadLetter(db, boss, { queue: QUEUES.invoiceRefund, jobId: dead })).toBe(true);
    wakeWorkers(boss, QUEUES.invoiceRefund);
    // Settled (a second refund taken) or handed to a person: whichever the retried job did.
    const exception = await waitFor('the retried job to settle the refund or ask a person', async () => {
      const row = await db
        .selectFrom('reconciliation_exceptions')
        .select(['kind', 'message'])
        .where('refund_id', '=', refundId)
        .executeTakeFirst();
      const { status } = await db
        .selectFrom('refunds')
        .select('status')
        .where('id', '=', refundId)
        .executeTakeFirstOrThrow();
      return row ?? (status !== 'unknown' && { kind: `none: the refund is ${status}`, message: '' });
    });
    expect(exception.kind).toBe('unknown_outcome');
    expect(exception.message).toContain('too old to be sent again safely');
    expect(sent).toEqual([]);
    const refund = await db
      .selectFrom('refunds')
      .select('status')
      .where('id', '=', refundId)
      .executeTakeFirstOrThrow();
    expect(refund.status).toBe('unknown');
    expect((await app.api('GET', `/v1/invoices/${invoice.id}`)).body.amount_refunded).toBe(0);
    // Within the window the same refund is repeated (the first test): 22 hours after it was made,
    // a retry sends it with its own key.
    const recent = `re_${(Date.now() - 22 * 3600_000).toString(32).padStart(10, '0')}0000000002`;
    await db
      .insertInto('refunds')
      .values({
        id: recent,
        transaction_id: transaction.id,
        invoice_id: invoice.id,
        gateway: 'stripe',
        amount: 300n,
        currency: 'EUR',
        status: 'unknown',
      })
      .execute();
    stripeRefundSucceeds('re_stripe_recent');
    expect(await retryUnknownRefund(db, 'system', app.runtime, recent, false)).toEqual({
      kind: 'settled',
      status: 'succeeded',
    });
  });
});
