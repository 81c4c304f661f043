import type { Kysely } from 'kysely';
import type { BillingReason, Database } from '../db/schema.ts';
import { redeemableCoupon } from './coupons.ts';
import { lineAmounts, lineTaxesJson, type NewLine } from './invoices.ts';
import { periodAt } from './periods.ts';
import { cadenceOf, recurringLines } from './renewal.ts';
import { checkNewSubscription, type NewSubscription, newSubscriptionRow } from './subscriptions.ts';
import { withCustomerTaxes } from './tax-rates.ts';

/**
 * A line of an invoice that is not written: as `NewLine`, with its signed net amount and tax (minor
 * units), the rate it records (`taxRatePpm`: the bare percent, or the named rates' nominal sum) and
 * its named taxes as an invoice line stores them (`lineTaxesJson`).
 */
export interface PreviewLine extends NewLine {
  signedAmount: bigint;
  taxAmount: bigint;
  taxes: Record<string, unknown>[];
}

/** An invoice as it would be made, written nowhere. Amounts in minor units of `currency`. */
export interface InvoicePreview {
  customerId: string;
  currency: string;
  billingReason: BillingReason;
  /** When it would be invoiced (and charged). */
  invoiceAt: Date;
  periodStart: Date;
  periodEnd: Date;
  lines: PreviewLine[];
  subtotal: bigint;
  /** Signed: negative when credits exceed charges (a change's net credit). */
  tax: bigint;
  total: bigint;
}

/** Prices `lines` as `insertInvoice` would (`lineAmounts`), allowing a negative total. */
export function pricedLines(lines: NewLine[]): Pick<InvoicePreview, 'lines' | 'subtotal' | 'tax' | 'total'> {
  const amounts = lineAmounts(lines);
  const priced = lines.map((line, i) => ({
    ...line,
    signedAmount: amounts[i]!.amount,
    taxAmount: amounts[i]!.tax,
    taxRatePpm: amounts[i]!.rule.ratePpm,
    taxes: lineTaxesJson(amounts[i]!),
  }));
  const subtotal = amounts.reduce((sum, line) => sum + line.amount, 0n);
  const tax = amounts.reduce((sum, line) => sum + line.tax, 0n);
  return { lines: priced, subtotal, tax, total: subtotal + tax };
}

/**
 * The first invoice a new subscription would get (`POST /v1/subscriptions/preview`): period 0 with
 * the plan's price, the coupon's credit, and tax, invoiced at the start (or at the end of the
 * trial). Checks the input as `createSubscription` does and writes nothing. Metered usage is not
 * previewed (there is none before the period starts).
 * @throws as `createSubscription`
 */
export async function previewSubscription(
  db: Kysely<Database>,
  input: NewSubscription,
  now: Date,
): Promise<InvoicePreview> {
  const { plan, startAt } = await checkNewSubscription(db, input, now);
  const row = newSubscriptionRow(input, plan, startAt, now);
  const coupon = input.couponCode
    ? await redeemableCoupon(db, input.couponCode, {
        currency: plan.currency,
        productId: plan.product_id,
        customerId: row.customer_id,
        now,
      })
    : undefined;
  const period = periodAt(cadenceOf(row, plan), 0);
  const redemptions = coupon
    ? [
        {
          id: 'preview',
          coupon_id: coupon.id,
          subscription_id: row.id,
          customer_id: row.customer_id,
          periods_applied: 0,
          created_at: now,
          removed_at: null,
          coupon,
        },
      ]
    : [];
  const { lines } = recurringLines(plan, row, period, redemptions);
  return {
    customerId: row.customer_id,
    currency: plan.currency,
    billingReason: 'subscription_create',
    invoiceAt: period.start,
    periodStart: period.start,
    periodEnd: period.end,
    ...pricedLines(await withCustomerTaxes(db, row.customer_id, lines)),
  };
}
