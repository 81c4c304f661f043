import { randomBytes } from 'node:crypto';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/database.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { byDepth } from '../support/depth.ts';
import { FIXTURE_INTENT, ledgerByCode, openInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { seeded } from '../support/random.ts';
import { deliverStripe, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

/**
 * PRODUCT.md §4 and §8: "one invoice never has two attempts in flight, including against a webhook
 * and an API call racing" and "a webhook and an API call racing on one invoice produce one charge".
 * Each case runs over many invoices at once, with Stripe faked by nock answering after a seeded random
 * latency, so that many interleavings of the API, the webhook worker and the database locks occur.
 * Every case checks the rows (transactions, refunds, journal entries, postings, exceptions) as well
 * as the HTTP answers.
 */

/** The faked gateway's response time (this is the gateway being slow, not the test waiting for state). */
const gatewayLatency = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `run` over `items`, `size` at a time (all of a batch concurrently). */
async function inBatches<T, R>(
  items: readonly T[],
  size: number,
  run: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (let start = 0; start < items.length; start += size) {
    const batch = items.slice(start, start + size);
    out.push(...(await Promise.all(batch.map((item, offset) => run(item, start + offset)))));
  }
  return out;
}

interface OpenedInvoice {
  id: string;
  customer: string;
  amount: number;
}

/** `count` OPEN EUR invoices, each of its own customer with a Stripe payment method; amounts vary. */
async function openInvoices(app: TestApp, count: number, amountOf: (index: number) => number) {
  return inBatches(
    Array.from({ length: count }, (_, i) => i),
    8,
    async (i): Promise<OpenedInvoice> => {
      const { invoice, customer } = await openInvoice(app, { amount: amountOf(i) });
      expect(invoice.total).toBe(amountOf(i));
      return { id: invoice.id, customer: customer.id, amount: amountOf(i) };
    },
  );
}

/** One `POST /v1/payment_intents` that reached the faked Stripe. */
interface ChargeCall {
  reference: string;
  idempotencyKey: string;
  invoiceId: string;
  amount: number;
  currency: string;
}

type Answer = [number, unknown];

/** Fakes every `POST /v1/payment_intents` with `answer`; @returns the calls, in arrival order. */
function fakeStripeCharges(answer: (call: ChargeCall) => Promise<Answer>): ChargeCall[] {
  const calls: ChargeCall[] = [];
  nock(STRIPE_API_BASE)
    .persist()
    .post('/v1/payment_intents')
    .reply(async (request: Request) => {
      const params = new URLSearchParams(await request.text());
      const call: ChargeCall = {
        reference: params.get('metadata[billhook_reference]') ?? '',
        idempotencyKey: request.headers.get('idempotency-key') ?? '',
        invoiceId: (params.get('description') ?? '').replace(/^invoice /, ''),
        amount: Number(params.get('amount')),
        currency: params.get('currency') ?? '',
      };
      calls.push(call);
      return answer(call);
    });
  return calls;
}

/** Invoices raced per test: `npm test`'s and `npm run test:deep`'s (test/support/depth.ts). */
const INVOICES = {
  simultaneousCharges: byDepth(10, 40),
  chargeAndWebhook: byDepth(12, 40),
  failedWebhook: byDepth(8, 30),
  movedTwice: byDepth(6, 24),
  movedTwiceAtStripe: byDepth(4, 12),
  tenRefunds: byDepth(8, 30),
} as const;

/** The payment intent Stripe creates for an attempt (one per idempotency key, as Stripe does). */
const intentOf = (reference: string) => `pi_for_${reference}`;

/** The fixture's succeeded PaymentIntent for `call`. */
function succeededIntent(call: ChargeCall): Answer {
  return [
    200,
    {
      ...FIXTURE_INTENT,
      id: intentOf(call.reference),
      status: 'succeeded',
      amount: call.amount,
      amount_received: call.amount,
      currency: call.currency,
      metadata: { billhook_reference: call.reference },
    },
  ];
}

/** Stripe's real 402 card_declined error for `call`, naming the declined PaymentIntent. */
function declinedIntent(call: ChargeCall): Answer {
  const body = stripeFixture('api.payment_intent.create.card_declined.error.json');
  Object.assign(body.error.payment_intent, {
    id: intentOf(call.reference),
    amount: call.amount,
    currency: call.currency,
    metadata: { billhook_reference: call.reference },
  });
  return [402, body];
}

/** A real `payment_intent.<kind>` webhook about `intentId`, carrying our attempt id as its reference. */
function intentEvent(
  kind: 'succeeded' | 'payment_failed',
  intentId: string,
  reference: string,
  amount: number,
) {
  const event = stripeFixture(`webhook.payment_intent.${kind}.json`);
  event.id = `evt_race_${randomBytes(8).toString('hex')}`;
  Object.assign(event.data.object, {
    id: intentId,
    amount,
    currency: 'eur',
    metadata: { billhook_reference: reference },
  });
  if (kind === 'succeeded') event.data.object.amount_received = amount;
  return event as { id: string };
}

describe('charges racing on one invoice', () => {
  let app: TestApp;
  let db: Db;

  const charge = (invoiceId: string) => app.api('POST', `/v1/invoices/${invoiceId}/charge`, {});

  async function deliver(event: { id: string }): Promise<string> {
    const answer = await deliverStripe(app.url, event);
    expect(answer.status).toBe(200);
    return event.id;
  }

  /** Waits until the worker finished with a delivered event; @returns its inbox status and outcome. */
  function settled(eventId: string) {
    return waitFor(
      `event ${eventId} to be processed`,
      async () => {
        const row = await db
          .selectFrom('inbox')
          .select(['status', 'outcome'])
          .where('gateway', '=', 'stripe')
          .where('gateway_event_id', '=', eventId)
          .executeTakeFirst();
        return row && ['processed', 'exception', 'ignored'].includes(row.status) ? row : undefined;
      },
      20_000,
    );
  }

  /** Everything the database holds about one invoice's money. */
  async function books(invoiceId: string) {
    const invoice = await db
      .selectFrom('invoices')
      .selectAll()
      .where('id', '=', invoiceId)
      .executeTakeFirstOrThrow();
    const transactions = await db
      .selectFrom('transactions')
      .selectAll()
      .where('invoice_id', '=', invoiceId)
      .orderBy('created_at')
      .execute();
    const refunds = await db.selectFrom('refunds').selectAll().where('invoice_id', '=', invoiceId).execute();
    const sources = [...transactions.map((t) => t.id), ...refunds.map((r) => r.id)];
    const entries = sources.length
      ? await db
          .selectFrom('journal_entries')
          .select(['id', 'idempotency_key', 'source_type', 'source_id'])
          .where('source_id', 'in', sources)
          .orderBy('sequence')
          .execute()
      : [];
    const postings = entries.length
      ? await db
          .selectFrom('postings')
          .innerJoin('ledger_accounts', 'ledger_accounts.id', 'postings.account_id')
          .select([
            'postings.journal_entry_id',
            'ledger_accounts.code',
            'postings.amount',
            'postings.currency',
          ])
          .where(
            'postings.journal_entry_id',
            'in',
            entries.map((e) => e.id),
          )
          .execute()
      : [];
    const exceptions = transactions.length
      ? await db
          .selectFrom('reconciliation_exceptions')
          .select(['kind', 'transaction_id', 'status', 'inbox_id'])
          .where(
            'transaction_id',
            'in',
            transactions.map((t) => t.id),
          )
          .execute()
      : [];
    /** Sum of the postings on `code` (minor units). */
    const balance = (code: string) =>
      postings.filter((p) => p.code === code).reduce((sum, p) => sum + BigInt(p.amount), 0n);
    return { invoice, transactions, refunds, entries, postings, exceptions, balance };
  }

  /** The books of an invoice paid exactly once, by `transactionId`. */
  async function expectPaidOnce(invoice: OpenedInvoice, transactionId: string, gatewayId: string) {
    const b = await books(invoice.id);
    const total = BigInt(invoice.amount);
    expect(b.invoice).toMatchObject({
      status: 'PAID',
      amount_paid: total,
      amount_due: 0n,
      amount_refunded: 0n,
    });
    const succeeded = b.transactions.filter((t) => t.status === 'succeeded');
    expect(succeeded.map((t) => [t.id, t.gateway_transaction_id, t.amount])).toEqual([
      [transactionId, gatewayId, total],
    ]);
    expect(b.transactions.filter((t) => t.status === 'pending' || t.status === 'unknown')).toEqual([]);
    expect(b.entries.map((e) => e.idempotency_key)).toEqual([`${transactionId}:succeeded`]);
    expect(b.postings).toHaveLength(2);
    expect(b.balance('gateway_clearing:stripe')).toBe(total);
    expect(b.balance(`receivable:${invoice.customer}`)).toBe(-total);
    expect(b.exceptions).toEqual([]);
    return b;
  }

  beforeAll(async () => {
    // The test apps' generous gateway timeout keeps a slow faked answer an answer, never an `unknown`.
    // This file sends well over a thousand API requests a minute with one key: no rate limit here.
    app = await startOfflineTestApp();
    db = app.runtime.db;
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    await stopOfflineTestApp(app);
  });

  it(`two API charges of one OPEN invoice at the same moment: one Stripe call, one 200 and one 409, paid once (${INVOICES.simultaneousCharges} invoices)`, async () => {
    const random = seeded(1);
    const invoices = await openInvoices(app, INVOICES.simultaneousCharges, (i) => 1000 + 37 * i);
    const calls = fakeStripeCharges(async (call) => {
      await gatewayLatency(random() * 40);
      return succeededIntent(call);
    });

    // Even invoices: both requests leave at the same moment. Odd ones: the second follows within 0–60 ms,
    // so it may find the first attempt in flight or already finished.
    const pairs = await inBatches(invoices, 8, (invoice, i) =>
      Promise.all([
        charge(invoice.id),
        i % 2 === 0 ? charge(invoice.id) : gatewayLatency(random() * 60).then(() => charge(invoice.id)),
      ]),
    );

    const refusals: Record<string, number> = {};
    for (const [i, invoice] of invoices.entries()) {
      const pair = pairs[i]!;
      const won = pair.filter((a) => a.status === 200);
      const lost = pair.filter((a) => a.status !== 200);
      expect(won, `invoice ${invoice.id}: ${JSON.stringify(pair.map((a) => a.body))}`).toHaveLength(1);
      expect(lost).toHaveLength(1);
      const transaction = won[0]!.body.transaction;
      expect(transaction).toMatchObject({
        status: 'succeeded',
        amount: invoice.amount,
        gateway_transaction_id: intentOf(transaction.id),
      });
      expect(won[0]!.body.invoice).toMatchObject({
        status: 'PAID',
        amount_paid: invoice.amount,
        amount_due: 0,
      });
      expect(lost[0]!.status).toBe(409);
      const code: string = lost[0]!.body.error.code;
      expect(['charge_in_progress', 'invoice_not_open']).toContain(code);
      refusals[code] = (refusals[code] ?? 0) + 1;

      // Exactly one gateway charge per invoice, keyed by the winning attempt.
      expect(calls.filter((c) => c.invoiceId === invoice.id)).toEqual([
        {
          reference: transaction.id,
          idempotencyKey: transaction.id,
          invoiceId: invoice.id,
          amount: invoice.amount,
          currency: 'eur',
        },
      ]);
      const b = await expectPaidOnce(invoice, transaction.id, intentOf(transaction.id));
      expect(b.transactions).toHaveLength(1);
    }
    expect(calls).toHaveLength(invoices.length);
    expect(Object.values(refusals).reduce((a, b) => a + b, 0)).toBe(invoices.length);
  }, 180_000);

  it(`an API charge and Stripe's payment_intent.succeeded for the same attempt, delivered at the same moment: one succeeded transaction, one posting (${INVOICES.chargeAndWebhook} invoices)`, async () => {
    const random = seeded(2);
    const modes = ['webhook settles first', 'together', 'answer first', 'webhook after'] as const;
    type Mode = (typeof modes)[number];
    const invoices = await openInvoices(app, INVOICES.chargeAndWebhook, (i) => 1500 + 53 * i);
    const clearingBefore = (await ledgerByCode(app))['gateway_clearing:stripe EUR'] ?? 0;
    const modeOf = new Map<string, Mode>(invoices.map((inv, i) => [inv.id, modes[i % modes.length]!]));
    const eventOf = new Map<string, { id: string }>();
    const deliveries: Promise<string>[] = [];

    const calls = fakeStripeCharges(async (call) => {
      // Stripe emits payment_intent.succeeded as soon as it has the money, whatever its API answer does.
      const event = intentEvent('succeeded', intentOf(call.reference), call.reference, call.amount);
      eventOf.set(call.invoiceId, event);
      switch (modeOf.get(call.invoiceId)) {
        case 'webhook settles first':
          await deliver(event);
          await settled(event.id);
          break;
        case 'together':
          // Stripe retries deliveries too: the same event twice, while the API answer is on its way.
          // The worker takes some tens of milliseconds to pick an event up: answer within 0–150 ms so
          // that either side can win.
          deliveries.push(deliver(event), deliver(event));
          await gatewayLatency(random() * 150);
          break;
        case 'answer first':
          deliveries.push(gatewayLatency(random() * 10).then(() => deliver(event)));
          break;
        default:
          await gatewayLatency(random() * 10);
      }
      return succeededIntent(call);
    });

    const answers = await inBatches(invoices, 8, async (invoice) => {
      const answer = await charge(invoice.id);
      if (modeOf.get(invoice.id) === 'webhook after') await deliver(eventOf.get(invoice.id)!);
      return answer;
    });
    await Promise.all(deliveries);

    const outcomes: Record<string, Record<string, number>> = {};
    for (const [i, invoice] of invoices.entries()) {
      const mode = modeOf.get(invoice.id)!;
      const answer = answers[i]!;
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      const transaction = answer.body.transaction;
      expect(transaction).toMatchObject({
        status: 'succeeded',
        gateway_transaction_id: intentOf(transaction.id),
      });
      expect(answer.body.invoice).toMatchObject({
        status: 'PAID',
        amount_paid: invoice.amount,
        amount_due: 0,
      });
      expect(calls.filter((c) => c.invoiceId === invoice.id).map((c) => c.idempotencyKey)).toEqual([
        transaction.id,
      ]);

      const eventId = eventOf.get(invoice.id)!.id;
      const inbox = await settled(eventId);
      expect(inbox.status).toBe('processed');
      expect(['applied', 'duplicate']).toContain(inbox.outcome);
      if (mode === 'webhook settles first') expect(inbox.outcome).toBe('applied');
      if (mode === 'webhook after') expect(inbox.outcome).toBe('duplicate');
      const bucket = outcomes[mode] ?? {};
      bucket[inbox.outcome!] = (bucket[inbox.outcome!] ?? 0) + 1;
      outcomes[mode] = bucket;
      // A delivery retried by Stripe is stored once.
      const stored = await db
        .selectFrom('inbox')
        .select('id')
        .where('gateway', '=', 'stripe')
        .where('gateway_event_id', '=', eventId)
        .execute();
      expect(stored).toHaveLength(1);

      const b = await expectPaidOnce(invoice, transaction.id, intentOf(transaction.id));
      expect(b.transactions).toHaveLength(1);
    }
    const perMode = invoices.length / modes.length;
    expect(outcomes['webhook settles first']).toEqual({ applied: perMode });
    expect(outcomes['webhook after']).toEqual({ duplicate: perMode });
    const total = invoices.reduce((sum, inv) => sum + inv.amount, 0);
    expect(calls).toHaveLength(invoices.length);
    expect((await ledgerByCode(app))['gateway_clearing:stripe EUR']).toBe(clearingBefore + total);
    const open = await db
      .selectFrom('reconciliation_exceptions')
      .select('kind')
      .where('status', '=', 'open')
      .execute();
    expect(open).toEqual([]);
  }, 180_000);

  /** Invoices whose first attempt Stripe declined (its PaymentIntent `pi_for_<attempt>` is known). */
  async function declinedOnce(count: number, amountOf: (i: number) => number, seed: number) {
    const random = seeded(seed);
    const invoices = await openInvoices(app, count, amountOf);
    const attemptsAt = new Map<string, number>();
    const beforeSecond = new Map<string, () => Promise<void>>();
    const calls = fakeStripeCharges(async (call) => {
      const attempt = (attemptsAt.get(call.invoiceId) ?? 0) + 1;
      attemptsAt.set(call.invoiceId, attempt);
      await gatewayLatency(random() * 30);
      if (attempt === 1) return declinedIntent(call);
      await beforeSecond.get(call.invoiceId)?.();
      return succeededIntent(call);
    });
    const first = await inBatches(invoices, 8, async (invoice) => {
      const answer = await charge(invoice.id);
      expect(answer.status).toBe(200);
      expect(answer.body.transaction).toMatchObject({
        status: 'failed',
        failure_code: 'card_declined',
        gateway_transaction_id: intentOf(answer.body.transaction.id),
      });
      expect(answer.body.invoice.status).toBe('OPEN');
      return answer.body.transaction as { id: string; gateway_transaction_id: string };
    });
    return { invoices, first, calls, beforeSecond };
  }

  it(`a payment_failed webhook for the declined first attempt, racing the second attempt: one charge, the first stays failed (${INVOICES.failedWebhook} invoices)`, async () => {
    const { invoices, first, calls } = await declinedOnce(INVOICES.failedWebhook, (i) => 2200 + 29 * i, 3);
    const raced = await inBatches(invoices, 8, async (invoice, i) => {
      const declined = first[i]!;
      const event = intentEvent(
        'payment_failed',
        declined.gateway_transaction_id,
        declined.id,
        invoice.amount,
      );
      const [answer] = await Promise.all([charge(invoice.id), deliver(event)]);
      return { answer, eventId: event.id };
    });
    for (const [i, invoice] of invoices.entries()) {
      const { answer, eventId } = raced[i]!;
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      const second = answer.body.transaction;
      expect(second).toMatchObject({ status: 'succeeded', gateway_transaction_id: intentOf(second.id) });
      expect(await settled(eventId)).toEqual({ status: 'processed', outcome: 'duplicate' });
      expect(calls.filter((c) => c.invoiceId === invoice.id).map((c) => c.idempotencyKey)).toEqual([
        first[i]!.id,
        second.id,
      ]);
      const b = await expectPaidOnce(invoice, second.id, intentOf(second.id));
      expect(b.transactions.map((t) => [t.id, t.status])).toEqual([
        [first[i]!.id, 'failed'],
        [second.id, 'succeeded'],
      ]);
    }
  }, 180_000);

  it(`money that really moved twice (the declined attempt succeeds after all) is never a silent second payment (${INVOICES.movedTwice} invoices)`, async () => {
    const { invoices, first, calls } = await declinedOnce(INVOICES.movedTwice, (i) => 3100 + 17 * i, 4);
    for (const [i, invoice] of invoices.entries()) {
      const declined = first[i]!;
      const event = intentEvent('succeeded', declined.gateway_transaction_id, declined.id, invoice.amount);
      const total = BigInt(invoice.amount);
      if (i % 2 === 0) {
        // The late success of attempt 1 settles first: the invoice is PAID, a second charge is refused
        // before Stripe is called.
        await deliver(event);
        expect(await settled(event.id)).toEqual({ status: 'processed', outcome: 'applied' });
        const again = await charge(invoice.id);
        expect(again.status).toBe(409);
        expect(again.body.error.code).toBe('invoice_not_open');
        expect(calls.filter((c) => c.invoiceId === invoice.id)).toHaveLength(1);
        const b = await expectPaidOnce(invoice, declined.id, declined.gateway_transaction_id);
        expect(b.transactions).toHaveLength(1);
      } else {
        // Attempt 2 is paid first; then Stripe says attempt 1's money moved too: both payments are in
        // the books (the money is at Stripe), the second one as the customer's credit (for their next
        // invoice or a credit refund), and a duplicate_payment exception tells a person.
        const second = await charge(invoice.id);
        expect(second.body.transaction.status).toBe('succeeded');
        await deliver(event);
        expect(await settled(event.id)).toEqual({ status: 'exception', outcome: 'duplicate_payment' });
        const b = await books(invoice.id);
        expect(b.invoice).toMatchObject({ status: 'PAID', amount_due: 0n, amount_paid: 2n * total });
        expect(b.transactions.map((t) => t.status)).toEqual(['succeeded', 'succeeded']);
        expect(b.entries.map((e) => e.idempotency_key).sort()).toEqual(
          [
            `${declined.id}:overpaid`,
            `${declined.id}:succeeded`,
            `${second.body.transaction.id}:succeeded`,
          ].sort(),
        );
        expect(b.balance('gateway_clearing:stripe')).toBe(2n * total);
        // Of the payments' −2 × total on the receivable, total moved on to the customer's credit.
        expect(b.balance(`receivable:${invoice.customer}`)).toBe(-total);
        expect(b.balance(`customer_credit:${invoice.customer}`)).toBe(-total);
        expect(b.exceptions).toEqual([
          expect.objectContaining({ kind: 'duplicate_payment', transaction_id: declined.id, status: 'open' }),
        ]);
      }
    }
  }, 180_000);

  // A late payment_intent.succeeded for an earlier attempt pays the invoice while a second attempt is
  // at the gateway: when the second succeeds too, the API path raises the duplicate_payment exception
  // (through recordChargeResult's onOverpaid), so a person refunds one of them.
  it(`money that moved twice while the second attempt was at Stripe becomes a duplicate_payment exception (${INVOICES.movedTwiceAtStripe} invoices)`, async () => {
    const { invoices, first, calls, beforeSecond } = await declinedOnce(
      INVOICES.movedTwiceAtStripe,
      (i) => 4100 + 23 * i,
      5,
    );
    for (const [i, invoice] of invoices.entries()) {
      const declined = first[i]!;
      const event = intentEvent('succeeded', declined.gateway_transaction_id, declined.id, invoice.amount);
      // While attempt 2 is at Stripe, attempt 1's late success arrives and is reconciled.
      beforeSecond.set(invoice.id, async () => {
        await deliver(event);
        expect(await settled(event.id)).toEqual({ status: 'processed', outcome: 'applied' });
      });
    }
    const seconds = await inBatches(invoices, 4, (invoice) => charge(invoice.id));
    for (const [i, invoice] of invoices.entries()) {
      const second = seconds[i]!.body.transaction;
      const total = BigInt(invoice.amount);
      expect(second.status).toBe('succeeded');
      expect(calls.filter((c) => c.invoiceId === invoice.id)).toHaveLength(2);
      const b = await books(invoice.id);
      expect(b.transactions.map((t) => t.status)).toEqual(['succeeded', 'succeeded']);
      expect(b.invoice).toMatchObject({ status: 'PAID', amount_due: 0n, amount_paid: 2n * total });
      expect(b.balance('gateway_clearing:stripe')).toBe(2n * total);
      // What fails today: no exception is raised, the double charge is silent.
      expect(b.exceptions).toEqual([
        expect.objectContaining({ kind: 'duplicate_payment', transaction_id: second.id, status: 'open' }),
      ]);
    }
  }, 180_000);

  it(`ten refunds of one PAID invoice at once, asking for more than was paid: what succeeds never exceeds what was paid (${INVOICES.tenRefunds} invoices)`, async () => {
    const random = seeded(6);
    const invoices = await openInvoices(app, INVOICES.tenRefunds, (i) => 2000 + 41 * i);
    fakeStripeCharges(async (call) => succeededIntent(call));
    const paid = await inBatches(invoices, 8, async (invoice) => {
      const answer = await charge(invoice.id);
      expect(answer.body.invoice.status).toBe('PAID');
      return answer.body.transaction as { id: string; gateway_transaction_id: string };
    });

    const refundFixture = stripeFixture('api.refund.succeeded.openapi-fixture.json');
    const refundCalls: { reference: string; intent: string; amount: number; status: string }[] = [];
    nock(STRIPE_API_BASE)
      .persist()
      .post('/v1/refunds')
      .reply(async (request: Request) => {
        const params = new URLSearchParams(await request.text());
        const reference = params.get('metadata[billhook_reference]') ?? '';
        expect(request.headers.get('idempotency-key')).toBe(reference);
        // About one refund in seven fails at Stripe, which frees its amount again.
        const status = refundCalls.length % 7 === 3 ? 'failed' : 'succeeded';
        const call = {
          reference,
          intent: params.get('payment_intent') ?? '',
          amount: Number(params.get('amount')),
          status,
        };
        refundCalls.push(call);
        await gatewayLatency(random() * 30);
        return [
          200,
          {
            ...refundFixture,
            id: `re_stripe_${reference}`,
            amount: call.amount,
            currency: 'eur',
            payment_intent: call.intent,
            status,
            failure_reason: status === 'failed' ? 'expired_or_canceled_card' : null,
            metadata: { billhook_reference: reference },
          },
        ];
      });

    const requested = invoices.map((invoice, i) => {
      const amounts = Array.from({ length: 10 }, () =>
        Math.max(1, Math.round(invoice.amount * (0.08 + random() * 0.22))),
      );
      const sum = amounts.reduce((a, b) => a + b, 0);
      if (sum <= invoice.amount) amounts[9]! += invoice.amount - sum + 1;
      // Every third invoice: the last request asks for "everything still refundable" (no amount).
      return amounts.map((amount, j) => (i % 3 === 0 && j === 9 ? undefined : amount));
    });
    // One invoice at a time: its ten refunds race for it, and they fit the app's pool (10
    // connections), so none waits for a connection past its 5 s timeout (a 503) on a loaded machine.
    const answers = await inBatches(invoices, 1, (invoice, i) =>
      Promise.all(
        requested[i]!.map((amount) =>
          app.api('POST', `/v1/invoices/${invoice.id}/refund`, amount === undefined ? {} : { amount }),
        ),
      ),
    );

    let refundedTotal = 0n;
    const tally = { succeeded: 0, failedAtStripe: 0, refused422: 0, refused409: 0 };
    for (const [i, invoice] of invoices.entries()) {
      const total = BigInt(invoice.amount);
      const created = answers[i]!.filter((a) => a.status === 201).map((a) => a.body);
      for (const answer of answers[i]!) {
        expect([201, 409, 422], JSON.stringify(answer.body)).toContain(answer.status);
        if (answer.status === 422) {
          expect(answer.body.error.code).toBe('validation_failed');
          expect(answer.body.error.fields.amount).toMatch(/^at most \d+ can be refunded/);
          tally.refused422++;
        }
        if (answer.status === 409) {
          expect(answer.body.error.code).toBe('invoice_not_paid');
          tally.refused409++;
        }
      }
      for (const refund of created) expect(['succeeded', 'failed']).toContain(refund.status);
      const succeeded = created.filter((r) => r.status === 'succeeded');
      tally.succeeded += succeeded.length;
      tally.failedAtStripe += created.length - succeeded.length;
      const succeededSum = BigInt(succeeded.reduce((sum, r) => sum + r.amount, 0));
      expect(succeededSum).toBeLessThanOrEqual(total);

      // Stripe saw one request per refund row, each keyed by its row, for this invoice's payment.
      const stripeCalls = refundCalls.filter((c) => c.intent === paid[i]!.gateway_transaction_id);
      expect(stripeCalls.map((c) => c.reference).sort()).toEqual(created.map((r) => r.id).sort());
      const movedAtStripe = stripeCalls
        .filter((c) => c.status === 'succeeded')
        .reduce((s, c) => s + c.amount, 0);
      expect(BigInt(movedAtStripe)).toBe(succeededSum);

      const b = await books(invoice.id);
      expect(b.refunds.map((r) => [r.id, r.status, r.amount]).sort()).toEqual(
        created.map((r) => [r.id, r.status, BigInt(r.amount)]).sort(),
      );
      expect(b.invoice.amount_paid).toBe(total);
      expect(b.invoice.amount_refunded).toBe(succeededSum);
      expect(b.invoice.amount_refunded).toBeLessThanOrEqual(b.invoice.amount_paid);
      expect(b.invoice.status).toBe(
        succeededSum === 0n ? 'PAID' : succeededSum === total ? 'REFUNDED' : 'PARTIALLY_REFUNDED',
      );
      // One journal entry per succeeded refund (none for failed ones), and the refunds account holds their sum.
      expect(b.entries.map((e) => e.idempotency_key).sort()).toEqual(
        [`${paid[i]!.id}:succeeded`, ...succeeded.map((r) => `${r.id}:succeeded`)].sort(),
      );
      expect(b.balance('refunds')).toBe(succeededSum);
      expect(b.balance('gateway_clearing:stripe')).toBe(total - succeededSum);
      refundedTotal += succeededSum;
    }
    expect(tally.refused422 + tally.refused409).toBeGreaterThan(0);
    expect(tally.failedAtStripe).toBeGreaterThan(0);
    const ledger = await ledgerByCode(app);
    const refunds = await db.selectFrom('refunds').select(['status']).execute();
    expect(refunds.filter((r) => r.status === 'pending' || r.status === 'unknown')).toEqual([]);
    // Every refund in this database is from this test: the ledger's refunds account is their sum.
    expect(BigInt(ledger['refunds EUR'] ?? 0)).toBe(refundedTotal);
  }, 180_000);
});
