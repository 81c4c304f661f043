import fc from 'fast-check';
import { sql } from 'kysely';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { startCharge } from '../../src/payments/charges.ts';
import { recordChargeResult } from '../../src/payments/transactions.ts';
import { STRIPE_API_BASE, type TestApp } from '../support/app.ts';
import { byDepth } from '../support/depth.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';

/**
 * PRODUCT.md §11 (issue #21, deliverable 5): over random invoices — manual lines with several tax
 * rates and credit lines, or a subscription's first invoice with a percent or amount coupon — in
 * currencies of exponent 0 (JPY), 2 (USD) and 3 (KWD), paid in part offline and the rest through
 * Stripe, then refunded in part or in full, the books hold on every path:
 * - every journal entry balances in its currency;
 * - cash in (Stripe clearing + offline receipts) = what the customer paid − what was refunded;
 * - cash in + what the customer still owes + what finalization rounded off for Stripe's KWD step
 *   (PRODUCT §11: the `rounding` account, the invoice's `rounding` less what its credit notes gave
 *   back of it) = revenue net of refunds + tax payable net of refunds; all refunded, both are 0;
 * - tax payable keeps the invoice's tax less the refunded share (all of it once fully refunded).
 */

/** Exponents 0, 2 and 3; KWD amounts sent to Stripe are multiples of 10 (docs.stripe.com/currencies). */
const CURRENCIES = ['JPY', 'USD', 'KWD'] as const;
type Currency = (typeof CURRENCIES)[number];
const GRANULE: Record<Currency, bigint> = { JPY: 1n, USD: 1n, KWD: 10n };
const TAX = ['0', '5', '8.875', '20', '7.25'] as const;

const line = fc.record({
  amount: fc.integer({ min: 1, max: 200_000 }),
  quantity: fc.integer({ min: 1, max: 3 }),
  tax: fc.constantFrom(...TAX),
});

const manualInvoice = fc.record({
  kind: fc.constant('manual' as const),
  lines: fc.array(line, { minLength: 1, maxLength: 4 }),
  /** A discount line as a share (per mille) of the first line, with the first line's tax rate. */
  discountPerMille: fc.option(fc.integer({ min: 1, max: 999 }), { nil: undefined }),
});

const subscriptionInvoice = fc.record({
  kind: fc.constant('subscription' as const),
  unitAmount: fc.integer({ min: 1, max: 100_000 }),
  quantity: fc.integer({ min: 1, max: 5 }),
  tax: fc.constantFrom(...TAX),
  coupon: fc.oneof(
    fc.record({ percentOff: fc.constantFrom('10', '12.5', '33.3333', '50', '100') }),
    fc.record({ amountOff: fc.integer({ min: 1, max: 50_000 }) }),
  ),
});

const scenario = fc.record({
  currency: fc.constantFrom(...CURRENCIES),
  invoice: fc.oneof(manualInvoice, subscriptionInvoice),
  /** Share (per mille) of the total paid offline before the Stripe charge. */
  offlinePerMille: fc.integer({ min: 0, max: 1000 }),
  /** When false the invoice stays partly paid (offline only) and nothing is charged or refunded. */
  settle: fc.boolean(),
  /** Each refund as a share (per mille) of what is still refundable; 1000 refunds the rest. */
  refunds: fc.array(fc.integer({ min: 1, max: 1000 }), { maxLength: 3 }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

describe('money invariants over random invoices (property)', () => {
  let app: TestApp;
  let run = 0;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterAll(async () => {
    await stopOfflineTestApp(app);
    nock.cleanAll();
  });

  /** Balances (debit positive, minor units) of this customer's receivable and the shared accounts. */
  async function balances(customerId: string | null, currency: string): Promise<Record<string, bigint>> {
    const rows = await app.runtime.db
      .selectFrom('ledger_accounts as a')
      .leftJoin('postings as p', 'p.account_id', 'a.id')
      .select(['a.code', sql<string>`coalesce(sum(p.amount), 0)::text`.as('balance')])
      .where('a.currency', '=', currency)
      .groupBy('a.code')
      .execute();
    const out: Record<string, bigint> = {};
    for (const row of rows) {
      const code = row.code === `receivable:${customerId}` ? 'receivable' : row.code;
      if (!row.code.startsWith('receivable:') || code === 'receivable') out[code] = BigInt(row.balance);
    }
    return out;
  }

  /** Journal entries whose postings do not sum to zero in some currency (there must be none). */
  async function unbalancedEntries(): Promise<number> {
    const { rows } = await sql<{ n: string }>`
      select count(*)::text as n from (
        select journal_entry_id from postings group by journal_entry_id, currency having sum(amount) <> 0
      ) unbalanced`.execute(app.runtime.db);
    return Number(rows[0]?.n ?? 0);
  }

  /** Creates the scenario's OPEN invoice for a new customer with a Stripe card. */
  async function openInvoice(s: Scenario, k: number): Promise<{ id: string; customer: string }> {
    const customer = (await app.api('POST', '/v1/customers', { email: `prop${k}@example.com` })).body;
    const method = await app.api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_card_visa',
      gateway_customer_id: `cus_prop${k}`,
    });
    expect(method.status).toBe(201);
    if (s.invoice.kind === 'manual') {
      const first = s.invoice.lines[0]!;
      const lines = s.invoice.lines.map((l) => ({
        description: 'item',
        amount: l.amount,
        quantity: l.quantity,
        tax_percent: l.tax,
      }));
      if (s.invoice.discountPerMille !== undefined) {
        const discount = Math.floor((first.amount * first.quantity * s.invoice.discountPerMille) / 1000);
        if (discount > 0)
          lines.push({
            description: 'discount',
            amount: discount,
            quantity: 1,
            tax_percent: first.tax,
            type: 'CREDIT',
          } as never);
      }
      const draft = await app.api('POST', '/v1/invoices', {
        customer: customer.id,
        currency: s.currency,
        lines,
      });
      expect(draft.status).toBe(201);
      const open = await app.api('POST', `/v1/invoices/${draft.body.id}/finalize`);
      expect(open.status).toBe(200);
      return { id: open.body.id, customer: customer.id };
    }
    const product = (await app.api('POST', '/v1/products', { name: `Product ${k}` })).body;
    const plan = await app.api('POST', '/v1/plans', {
      product: product.id,
      name: `Plan ${k}`,
      currency: s.currency,
      interval: 'MONTH',
      price: { model: 'PER_UNIT', unit_amount: s.invoice.unitAmount },
      tax_percent: s.invoice.tax,
    });
    expect(plan.status).toBe(201);
    const code = `PROP${k}`;
    const coupon = await app.api('POST', '/v1/coupons', {
      code,
      duration: 'FOREVER',
      ...('percentOff' in s.invoice.coupon
        ? { percent_off: s.invoice.coupon.percentOff }
        : { amount_off: s.invoice.coupon.amountOff, currency: s.currency }),
    });
    expect(coupon.status).toBe(201);
    const subscription = await app.api('POST', '/v1/subscriptions', {
      customer: customer.id,
      plan: plan.body.id,
      quantity: s.invoice.quantity,
      coupon: code,
    });
    expect(subscription.status).toBe(201);
    return { id: subscription.body.latest_invoice, customer: customer.id };
  }

  /** Stripe answers each refund as succeeded, echoing its amount (the gateway's rules are its client's). */
  function stripeRefunds(currency: string) {
    return nock(STRIPE_API_BASE)
      .persist()
      .post('/v1/refunds')
      .reply(async (request: Request) => {
        const p = new URLSearchParams(await request.text());
        return [
          200,
          {
            id: `re_stripe_${run}_${Math.random().toString(36).slice(2)}`,
            object: 'refund',
            amount: Number(p.get('amount')),
            currency: currency.toLowerCase(),
            payment_intent: p.get('payment_intent'),
            status: 'succeeded',
            metadata: { billhook_reference: p.get('metadata[billhook_reference]') },
          },
        ];
      });
  }

  it('every path keeps cash, receivable, revenue and tax payable consistent', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const k = ++run;
        const before = await balances(null, s.currency);
        const { id, customer } = await openInvoice(s, k);
        let invoice = (await app.api('GET', `/v1/invoices/${id}`)).body;
        const total = BigInt(invoice.total);
        // A 100% coupon makes an invoice of nothing, PAID at once; anything else waits OPEN.
        expect(invoice.status).toBe(total === 0n ? 'PAID' : 'OPEN');
        const tax = BigInt(invoice.tax);
        const granule = GRANULE[s.currency];

        // Offline first, leaving what is due a multiple of the currency's granule at Stripe: what
        // Stripe charges must be, and an offline payment leaving a rest off it is refused (422).
        let offline = (total * BigInt(s.offlinePerMille)) / 1000n;
        offline = total - ((total - offline) / granule) * granule;
        if (offline > 0n) {
          const paid = await app.api('POST', `/v1/invoices/${id}/payments`, {
            method: 'BANK',
            amount: Number(offline),
          });
          expect(paid.status).toBe(201);
        }
        let charged = 0n;
        if (s.settle && offline < total && total > 0n) {
          const attempt = await startCharge(app.runtime.db, 'system', app.runtime, id);
          await inUnitOfWork(app.runtime.db, { actor: 'system' }, (work) =>
            recordChargeResult(work, attempt, { status: 'succeeded', gatewayTransactionId: `pi_prop_${k}` }),
          );
          charged = attempt.amount;
        }

        let refunded = 0n;
        if (charged > 0n) {
          const scope = stripeRefunds(s.currency);
          for (const perMille of s.refunds) {
            const rest = charged - refunded;
            const amount = perMille === 1000 ? rest : ((rest * BigInt(perMille)) / 1000n / granule) * granule;
            if (amount <= 0n) continue;
            const refund = await app.api('POST', `/v1/invoices/${id}/refund`, { amount: Number(amount) });
            expect(refund.status, JSON.stringify(refund.body)).toBe(201);
            expect(refund.body.status).toBe('succeeded');
            refunded += amount;
          }
          scope.persist(false);
          nock.cleanAll();
        }

        invoice = (await app.api('GET', `/v1/invoices/${id}?expand=credit_notes`)).body;
        const after = await balances(customer, s.currency);
        const delta = (code: string) => (after[code] ?? 0n) - (before[code] ?? 0n);
        const paidIn = offline + charged;
        expect(BigInt(invoice.amount_paid)).toBe(paidIn);
        expect(BigInt(invoice.amount_refunded ?? 0)).toBe(refunded);

        const cash = delta('gateway_clearing:stripe') + delta('offline_receipts');
        const owed = after.receivable ?? 0n;
        const revenueNet = -(delta('revenue') + delta('refunds'));
        const taxNet = -delta('tax_payable');
        expect(await unbalancedEntries()).toBe(0);
        expect(cash).toBe(paidIn - refunded);
        expect(owed).toBe(total - paidIn);
        // What finalization rounded off, less what the credit notes gave back of it with the sale.
        const rounded = delta('rounding');
        const roundingGivenBack = (invoice.credit_notes as { rounding: number }[]).reduce(
          (sum, note) => sum + BigInt(note.rounding),
          0n,
        );
        expect(rounded).toBe(BigInt(invoice.rounding) - roundingGivenBack);
        expect(cash + owed + rounded).toBe(revenueNet + taxNet);
        // The refunded share of the tax goes back: tax × (total − refunded) / total, to a minor unit.
        const kept = total === 0n ? 0n : tax * (total - refunded);
        expect(taxNet * total).toBeGreaterThanOrEqual(kept - total);
        expect(taxNet * total).toBeLessThanOrEqual(kept + total);
        if (refunded === total) {
          expect(taxNet).toBe(0n);
          // All paid given back: the rounding too, so no revenue is left and nothing is rounded off.
          expect(rounded).toBe(0n);
          expect(revenueNet).toBe(0n);
        }
      }),
      { numRuns: byDepth(12, 40), seed: 2112, endOnFailure: true },
    );
  }, 600_000);
});
