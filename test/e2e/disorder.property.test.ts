import fc from 'fast-check';
import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/db/ids.ts';
import { type ProcessOutcome, processInboxEvents } from '../../src/reconcile/process.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { byDepth } from '../support/depth.ts';
import { FIXTURE_INTENT, openInvoice } from '../support/flow.ts';
import { startHangingWeb, startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { NO_ANSWER_DELAY_MS } from '../support/timeouts.ts';
import { waitFor } from '../support/wait.ts';

/**
 * PRODUCT.md §8: duplicate, reordered and replayed deliveries leave the ledger identical to one
 * in-order delivery. fast-check draws permutations of a real Stripe event sequence (payment failed,
 * payment succeeded, a refund, a dispute opened and lost, and the payout that pays the payment out
 * with its fees, PRODUCT.md §13) with duplicates inserted anywhere; each run is one payment of its
 * own, compared with the same payment delivered in order. A payout that arrives before what it pays
 * out is retried until billhook knows it.
 */

/** fast-check runs per property: `npm test`'s and `npm run test:deep`'s (test/support/depth.ts). */
const RUNS = byDepth(4, 12);

describe('delivery disorder (property)', () => {
  let app: TestApp;
  /** The web process that charges each payment, whose charge never gets an answer. */
  let hanging: TestApp;
  let run = 0;
  beforeAll(async () => {
    app = await startOfflineTestApp({ WEBHOOK_RETRY_LIMIT: '8', WEBHOOK_RETRY_DELAY_SECONDS: '1' });
    hanging = await startHangingWeb(app);
  });
  afterAll(async () => {
    await hanging.stop();
    await stopOfflineTestApp(app);
    nock.cleanAll();
  });

  /**
   * `count` payments whose charges timed out (unknown): only the webhooks decide what happened to
   * them. Their invoices are opened side by side, then all are charged at once through the web
   * process whose Stripe never answers (each charge waits out its own timeout, so one wait for all).
   */
  async function unknownPayments(count: number) {
    const opened = await Promise.all(Array.from({ length: count }, () => openInvoice(app)));
    nock(STRIPE_API_BASE)
      .post('/v1/payment_intents')
      .delay(NO_ANSWER_DELAY_MS)
      .reply(200, FIXTURE_INTENT)
      .persist();
    const charged = await Promise.all(
      opened.map(({ invoice }) => hanging.api('POST', `/v1/invoices/${invoice.id}/charge`, {})),
    );
    nock.abortPendingRequests();
    nock.cleanAll();
    return opened.map(({ invoice }, i) => {
      expect(charged[i]?.body.transaction.status).toBe('unknown');
      return { invoiceId: invoice.id as string, transactionId: charged[i]?.body.transaction.id as string };
    });
  }

  /** The payout of run `k`'s payment as Stripe lists its balance transactions (EUR, minor units). */
  function payoutLines(k: number) {
    const pi = `pi_prop_${k}`;
    const charge = stripeFixture('api.balance_transaction.charge.expanded.derived.json');
    Object.assign(charge, { id: `txn_prop_ch_${k}`, amount: 4620, fee: 164, net: 4456, currency: 'eur' });
    Object.assign(charge.source, { id: `ch_prop_${k}`, amount: 4620, currency: 'eur', payment_intent: pi });
    const refund = stripeFixture('api.balance_transaction.refund.derived.json');
    Object.assign(refund, { id: `txn_prop_re_${k}`, amount: -1000, fee: 0, net: -1000, currency: 'eur' });
    Object.assign(refund.source, { id: `re_prop_${k}`, amount: 1000, currency: 'eur', payment_intent: pi });
    const dispute = stripeFixture('api.balance_transaction.dispute.extracted.json');
    // Listed with `expand[]=data.source`: the withdrawal's source is the dispute itself.
    const disputed = stripeFixture('webhook.charge.dispute.created.json').data.object;
    Object.assign(disputed, { id: `du_prop_${k}`, amount: 2000, currency: 'eur', payment_intent: pi });
    Object.assign(dispute, {
      id: `txn_prop_du_${k}`,
      amount: -2000,
      fee: 500,
      net: -2500,
      currency: 'eur',
      source: disputed,
    });
    dispute.fee_details[0].amount = 500;
    dispute.fee_details[0].currency = 'eur';
    return [charge, refund, dispute];
  }

  /** The six real fixtures, about run `k`'s payment, in Stripe's order. */
  function events(k: number, reference: string) {
    const pi = `pi_prop_${k}`;
    const failed = stripeFixture('webhook.payment_intent.payment_failed.json');
    Object.assign(failed.data.object, {
      id: pi,
      amount: 4620,
      currency: 'eur',
      metadata: { billhook_reference: reference },
    });
    const succeeded = stripeFixture('webhook.payment_intent.succeeded.json');
    Object.assign(succeeded.data.object, { id: pi, metadata: { billhook_reference: reference } });
    const refund = stripeFixture('webhook.charge.refund.updated.json');
    Object.assign(refund.data.object, {
      id: `re_prop_${k}`,
      amount: 1000,
      currency: 'eur',
      payment_intent: pi,
    });
    const opened = stripeFixture('webhook.charge.dispute.created.json');
    Object.assign(opened.data.object, {
      id: `du_prop_${k}`,
      amount: 2000,
      currency: 'eur',
      payment_intent: pi,
    });
    const closed = stripeFixture('webhook.charge.dispute.closed.json');
    Object.assign(closed.data.object, {
      id: `du_prop_${k}`,
      amount: 2000,
      currency: 'eur',
      status: 'lost',
      payment_intent: pi,
    });
    // Stripe answers this payout's lines as often as billhook asks (a payout before its charge retries).
    nock(STRIPE_API_BASE)
      .get('/v1/balance_transactions')
      .query((query) => query.payout === `po_prop_${k}`)
      .reply(200, { object: 'list', url: '/v1/balance_transactions', has_more: false, data: payoutLines(k) })
      .persist();
    const paidOut = stripeFixture('webhook.payout.paid.derived.json');
    Object.assign(paidOut.data.object, { id: `po_prop_${k}`, amount: 956, currency: 'eur' });
    return [failed, succeeded, refund, opened, closed, paidOut].map((event) => ({
      ...event,
      id: `${event.id}_${k}`,
    }));
  }

  /** Everything a run's payment left: states, amounts, and its journal entries summed per account. */
  async function booksOf(invoiceId: string, transactionId: string) {
    const db = app.runtime.db;
    const invoice = await db
      .selectFrom('invoices')
      .select(['status', 'amount_paid', 'amount_refunded', 'amount_due'])
      .where('id', '=', invoiceId)
      .executeTakeFirstOrThrow();
    const transaction = await db
      .selectFrom('transactions')
      .select(['status'])
      .where('id', '=', transactionId)
      .executeTakeFirstOrThrow();
    const refunds = await db
      .selectFrom('refunds')
      .select(['status', 'amount'])
      .where('transaction_id', '=', transactionId)
      .execute();
    const disputes = await db
      .selectFrom('disputes')
      .select(['id', 'status', 'amount'])
      .where('transaction_id', '=', transactionId)
      .execute();
    const sources = [invoiceId, transactionId, ...disputes.map((d) => d.id)];
    const refundIds = await db
      .selectFrom('refunds')
      .select('id')
      .where('transaction_id', '=', transactionId)
      .execute();
    sources.push(...refundIds.map((r) => r.id));
    const lines = await db
      .selectFrom('settlement_lines')
      .select(['id', 'payout_id'])
      .where('transaction_id', '=', transactionId)
      .execute();
    sources.push(
      ...lines.map((l) => l.id),
      ...new Set(lines.flatMap((l) => (l.payout_id ? [l.payout_id] : []))),
    );
    const ledger = await sql<{ code: string; balance: bigint }>`
      SELECT regexp_replace(a.code, 'cus_\\w+', 'customer') AS code, sum(p.amount) AS balance
      FROM postings p JOIN journal_entries e ON e.id = p.journal_entry_id JOIN ledger_accounts a ON a.id = p.account_id
      WHERE e.source_id IN (${sql.join(sources)})
      GROUP BY 1 ORDER BY 1`.execute(db);
    const exceptions = await db
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('transaction_id', '=', transactionId)
      .execute();
    return {
      invoice,
      transaction: transaction.status,
      refunds: refunds.map((r) => [r.status, r.amount]),
      disputes: disputes.map((d) => [d.status, d.amount]),
      ledger: ledger.rows.map((r) => [r.code, BigInt(r.balance)]),
      exceptions: exceptions.length,
    };
  }

  /** Delivers `order` (each must be acknowledged), one after the other. */
  async function deliver(order: object[]) {
    for (const event of order) expect((await deliverStripe(app.url, event)).status).toBe(200);
  }

  /** Waits until every inbox row of the events `distinct` has been processed, ignored or raised. */
  async function settled(distinct: string[]) {
    await waitFor(
      'the runs to settle',
      async () => {
        const rows = await app.runtime.db
          .selectFrom('inbox')
          .select('status')
          .where('gateway_event_id', 'in', distinct)
          .execute();
        return (
          rows.length === distinct.length &&
          rows.every((r) => ['processed', 'ignored', 'exception'].includes(r.status))
        );
      },
      120_000,
    );
  }

  let inOrder: Awaited<ReturnType<typeof booksOf>>;

  it('in order: the reference books', async () => {
    const k = run++;
    const { invoiceId, transactionId } = (await unknownPayments(1))[0]!;
    const sequence = events(k, transactionId);
    await deliver(sequence);
    await settled(sequence.map((e) => e.id));
    inOrder = await booksOf(invoiceId, transactionId);
    expect(inOrder.invoice).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      amount_paid: 4620n,
      amount_refunded: 1000n,
      amount_due: 0n,
    });
    // Paid out: 4620 − 164 (fee) − 1000 (refund) − 2000 − 500 (dispute and its fee) = 956 at the bank.
    expect(inOrder.ledger).toEqual([
      ['bank:stripe', 956n],
      ['chargeback_losses', 2000n],
      ['disputed_funds', 0n],
      ['gateway_clearing:stripe', 0n],
      ['gateway_fees:stripe', 664n],
      ['payouts_in_transit:stripe', 0n],
      ['receivable:customer', 0n],
      ['refunds', 1000n],
      ['revenue', -4620n],
    ]);
  });

  /**
   * fast-check's cases for the seed (`fc.sample` draws exactly those `fc.assert` runs with the same
   * arbitraries, seed and count; there is no shrinking to lose, as `endOnFailure` had none), run side
   * by side: each case's events are delivered in its order, one case after the other, then all are
   * waited for at once, so the cases' retry delays (1 s, then doubling) overlap instead of adding up.
   * Each case is its own payment; whatever batches its retries share with other cases', its books
   * must be the in-order books.
   */
  it(`any permutation with duplicates leaves the same books (fast-check, ${RUNS} runs, fixed seed)`, async () => {
    const cases = fc.sample(
      fc.tuple(
        fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { minLength: 6, maxLength: 6 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.nat()), { maxLength: 4 }),
      ),
      { numRuns: RUNS, seed: 20261123 },
    );
    const payments = await unknownPayments(cases.length);
    const distinct: string[] = [];
    for (const [c, [permutation, duplicates]] of cases.entries()) {
      const sequence = events(run++, payments[c]!.transactionId);
      const order = permutation.map((i) => sequence[i]!);
      for (const [i, at] of duplicates) order.splice(at % (order.length + 1), 0, sequence[i]!);
      await deliver(order);
      distinct.push(...sequence.map((e) => e.id));
    }
    await settled(distinct);
    for (const [c, drawn] of cases.entries()) {
      const { invoiceId, transactionId } = payments[c]!;
      expect(await booksOf(invoiceId, transactionId), `case ${JSON.stringify(drawn)}`).toEqual(inOrder);
    }
  }, 240_000);

  /**
   * Stores `order` as inbox rows without a job, then applies them as the worker does: all in ONE
   * batch transaction, then the rows that must retry in the next batch, until none do.
   */
  async function applyInOneBatch(order: { id: string }[]): Promise<ProcessOutcome[]> {
    const ids = new Map<string, string>();
    for (const event of order) {
      if (ids.has(event.id)) continue;
      const id = newId('evt');
      ids.set(event.id, id);
      await app.runtime.db
        .insertInto('inbox')
        .values({
          id,
          gateway: 'stripe',
          gateway_event_id: event.id,
          event_type: (event as { type?: string }).type ?? '',
          body: JSON.stringify(event),
        })
        .execute();
    }
    let requests = order.map((event) => ({ inboxId: ids.get(event.id)!, finalAttempt: false }));
    const first = await processInboxEvents(app.runtime.db, 'system', app.runtime.registry, requests);
    let outcomes = first;
    for (let round = 0; round < 10 && outcomes.includes('retry'); round++) {
      requests = requests.filter((_, i) => outcomes[i] === 'retry');
      outcomes = await processInboxEvents(app.runtime.db, 'system', app.runtime.registry, requests);
    }
    expect(outcomes).not.toContain('retry');
    return first;
  }

  it(`two payments permuted and interleaved in one batch transaction leave the same books (fast-check, ${RUNS} runs)`, async () => {
    // Two unknown payments per run (endOnFailure: no shrinking, so exactly RUNS runs), made at once.
    const paid = await unknownPayments(24);
    const order = fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { minLength: 6, maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(
        order,
        order,
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        fc.array(fc.nat(11), { maxLength: 3 }),
        async (first, second, picks, duplicates) => {
          const payments = [paid.shift()!, paid.shift()!];
          const sequences = payments.map(({ transactionId }) => events(run++, transactionId));
          const queues = [first, second].map((permutation, p) => permutation.map((i) => sequences[p]![i]!));
          const batch = picks.map((pick) => queues[pick ? 1 : 0]!.shift() ?? queues[pick ? 0 : 1]!.shift()!);
          for (const at of duplicates) batch.push(batch[at]!);
          const outcomes = await applyInOneBatch(batch);
          expect(outcomes.every((outcome) => !(outcome instanceof Error))).toBe(true);
          for (const { invoiceId, transactionId } of payments)
            expect(await booksOf(invoiceId, transactionId)).toEqual(inOrder);
        },
      ),
      { numRuns: RUNS, seed: 20261202, endOnFailure: true },
    );
  }, 240_000);
});
