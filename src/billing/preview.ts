import type { Kysely } from 'kysely';
import type { Db } from '../db/database.ts';
import type { BillingReason, CouponRow, Database, SubscriptionRow } from '../db/schema.ts';
import { ConflictError } from '../errors.ts';
import { type Actor, inRolledBackUnitOfWork } from '../ledger/unit-of-work.ts';
import { addOnProration, refusePendingAddOnChange } from './add-on-proration.ts';
import { firstPeriodIndex, type RedemptionWithCoupon, redeemableCoupon } from './coupons.ts';
import { creditAvailableIn } from './customer-credit.ts';
import { nextRenewalLines, refuseUninvoiceablePeriod } from './effective-amount.ts';
import { type Rounding, roundingOf } from './invoice-rounding.ts';
import { lineAmounts, lineTaxesJson, type NewLine } from './invoices.ts';
import { periodAt } from './periods.ts';
import { DEFAULT_PRORATION } from './proration.ts';
import { resumesAt } from './reinstate.ts';
import {
  cadenceOf,
  lockSubscription,
  type RecurringState,
  type RenewalPolicy,
  recurringLines,
  renewedUpTo,
} from './renewal.ts';
import { type AddOnChange, checkAddOnChange } from './subscription-add-ons.ts';
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
  /** subtotal + tax, before `rounding`. */
  total: bigint;
  /**
   * The customer's credit finalization would apply (minor units, 0 … total; absent: none), set by the
   * previews the API shows (`withRounding`): what they hold now and can use in the currency
   * (billing/customer-credit.ts `creditAvailableIn`), up to the total.
   */
  creditApplied?: bigint;
  /**
   * What finalization would round off for the gateway that would charge it (PRODUCT §11:
   * invoice-rounding.ts), set by the previews the API shows (`withRounding`), which show it as a
   * ROUNDING line and take it off the total; worked, as finalization works it, on what is left due
   * after `creditApplied`.
   */
  rounding?: Rounding;
}

/**
 * `preview` as finalization would make it, as the API shows it: the customer's credit it would apply
 * (`creditApplied`: `credit` minor units when given — what earlier invoices of the same answer leave,
 * or read in the caller's unit of work — else what they can use now, `creditAvailableIn`; up to a
 * positive total), then the rounding of what is left due (`roundingOf`, through payment method
 * `methodId`, null: the customer's default). Stripe TND 3500 with 3125 of credit: credit 3125, 375
 * left, rounding 5 (total 3495, 370 due); without the credit it would show no rounding at all.
 */
export async function withRounding(
  db: Kysely<Database>,
  preview: InvoicePreview,
  methodId: string | null,
  credit?: bigint,
): Promise<InvoicePreview> {
  let creditApplied = 0n;
  if (preview.total > 0n) {
    creditApplied = credit ?? (await creditAvailableIn(db, preview.customerId, preview.currency)).available;
    if (creditApplied > preview.total) creditApplied = preview.total;
    if (creditApplied < 0n) creditApplied = 0n;
  }
  const due = preview.total - creditApplied;
  const rounding = await roundingOf(db, preview.customerId, methodId, preview.currency, due);
  return {
    ...preview,
    ...(creditApplied > 0n ? { creditApplied } : {}),
    ...(rounding ? { rounding } : {}),
  };
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
  // A new subscription has no period invoice yet: the coupon counts from the first (`nextPeriodInvoiceIndex`).
  const redemptions = coupon ? [previewRedemption(coupon, row, now, 0)] : [];
  const { lines } = recurringLines(plan, row, period, redemptions);
  const preview: InvoicePreview = {
    customerId: row.customer_id,
    currency: plan.currency,
    billingReason: 'subscription_create',
    invoiceAt: period.start,
    periodStart: period.start,
    periodEnd: period.end,
    ...pricedLines(await withCustomerTaxes(db, row.customer_id, lines)),
  };
  return withRounding(db, preview, row.payment_method_id);
}

/**
 * A redemption of `coupon` on `subscription` (on its add-on `addOnId`) that is not written: a
 * preview's, counting from period invoice `firstPeriod` on (as `redeemCoupon` sets it: coupons.ts
 * `firstPeriodIndex`).
 */
function previewRedemption(
  coupon: CouponRow,
  subscription: Pick<SubscriptionRow, 'id' | 'customer_id'>,
  now: Date,
  firstPeriod: number,
  addOnId: string | null = null,
): RedemptionWithCoupon {
  return {
    id: 'preview',
    coupon_id: coupon.id,
    subscription_id: subscription.id,
    customer_id: subscription.customer_id,
    add_on_id: addOnId,
    first_period_index: firstPeriod,
    periods_applied: 0,
    created_at: now,
    removed_at: null,
    coupon,
  };
}

/**
/**
 * What `change` to one of subscription `id`'s add-ons at `now` would bill (Billby's Preview
 * Subscription Add-On Update; `POST /v1/subscriptions/:id/add-ons/preview`): `next`, the next
 * period's invoice (null when the subscription is not renewed again: cancelled at the period's end
 * or at a date), the renewal's recurring lines (`nextRenewalLines`, the one pricing the renewal and
 * `effective_amount` use) with the add-on's quantity set (0: removed, with the coupons redeemed on
 * it), and `change.couponCode` redeemed on it (counting from the period `redeemCoupon` sets: coupons.ts
 * `firstPeriodIndex`), then tax; for a SUSPENDED subscription `next` is the invoice reactivating it
 * at `now` makes (the period holding `now` when periods were skipped: reinstate.ts `resumesAt`); and `proration`, the invoice
 * `setSubscriptionAddOn` would make now for the rest of the current period (add-on-proration.ts
 * `addOnProration` with `change.proration` and `policy`; null: nothing charged now, a total of 0: no
 * invoice made). Checks the change as `setSubscriptionAddOn` does and the coupon as `redeemCoupon`
 * would, and refuses what setting it refuses (`refuseUninvoiceablePeriod`, field `quantity`: the
 * next period's fees with the usage not billed yet that its invoice bills above 10^15); writes
 * nothing. Metered usage is not previewed (it is not known before the period ends).
 * Whatever the next invoice, `proration` is what setting the change would charge now, so the preview
 * answers wherever the change goes through. As `setSubscriptionAddOn`, it first renews the
 * subscription up to `now` (`renewedUpTo` under `policy`), here in a unit of work rolled back at its
 * end (`inRolledBackUnitOfWork`): after a period's end the renewal sweep has not renewed yet, the
 * proration is for the rest of the period holding `now` (its period invoice, made by that renewal,
 * paying the units held) and the next period is the one after it. An add-on charge pending since a
 * payment's reactivation whose making fails is left pending (`'try'`), as setting it does, and the
 * same quantities are refused (add-on-proration.ts `refusePendingAddOnChange`).
 * @throws NotFoundError subscription; as `checkAddOnChange`; as `refusePendingAddOnChange` (among them `subscription_cancelled`, also
 *   when that renewal ended it); as `redeemableCoupon`, and ConflictError `coupon_already_redeemed`
 *   (on this add-on before)
 */
export function previewSubscriptionAddOn(
  db: Db,
  actor: Actor,
  id: string,
  change: AddOnChange,
  now: Date,
  policy: RenewalPolicy,
): Promise<{ next: InvoicePreview | null; proration: InvoicePreview | null }> {
  return inRolledBackUnitOfWork(db, { actor }, async (work) => {
    // An add-on charge pending since a payment's reactivation whose making fails is left pending
    // ('try'), as setting the add-on leaves it: the preview answers as the set would.
    const renewed = await renewedUpTo(work, (await lockSubscription(work, id))!, now, policy, 'try');
    return previewAddOnOf(work.trx, renewed.subscription, change, now, policy, renewed.pendingChargeFailed);
  });
}

/** `previewSubscriptionAddOn` of `subscription` as it is, read in `db`. */
async function previewAddOnOf(
  db: Kysely<Database>,
  subscription: SubscriptionRow,
  change: AddOnChange,
  now: Date,
  policy: RenewalPolicy,
  pendingChargeFailed?: string,
): Promise<{ next: InvoicePreview | null; proration: InvoicePreview | null }> {
  const { addOn, plan, existing } = await checkAddOnChange(db, subscription, change);
  if (pendingChargeFailed !== undefined) {
    const from = existing?.quantity ?? 0;
    await refusePendingAddOnChange(
      db,
      subscription,
      addOn.id,
      from,
      change.quantity,
      pendingChargeFailed,
      policy,
    );
  }
  const coupon =
    change.couponCode === undefined
      ? undefined
      : await redeemableCoupon(db, change.couponCode, {
          currency: plan.currency,
          productId: plan.product_id,
          customerId: subscription.customer_id,
          now,
          addOnId: addOn.id,
        });
  if (coupon) {
    const redeemed = await db
      .selectFrom('coupon_redemptions')
      .select('id')
      .where('coupon_id', '=', coupon.id)
      .where('subscription_id', '=', subscription.id)
      .where('add_on_id', '=', addOn.id)
      .executeTakeFirst();
    if (redeemed) {
      throw new ConflictError(
        'coupon_already_redeemed',
        `coupon ${coupon.code} is already redeemed on add-on ${addOn.id} of subscription ${subscription.id}`,
      );
    }
  }
  const row = existing ?? {
    id: 'preview',
    subscription_id: subscription.id,
    add_on_id: addOn.id,
    quantity: change.quantity,
    created_at: now,
    updated_at: now,
  };
  const changed = change.quantity > 0 ? [{ ...row, quantity: change.quantity, addOn }] : [];
  // Counting from the period `redeemCoupon` would set (never one before the period holding `now`).
  const redeemed =
    coupon &&
    previewRedemption(coupon, subscription, now, await firstPeriodIndex(db, subscription, now), addOn.id);
  const withChange = ({ redemptions, addOns }: RecurringState): RecurringState => ({
    redemptions: [
      // Removing the add-on ends the coupons redeemed on it.
      ...redemptions.filter((r) => changed.length > 0 || r.add_on_id !== addOn.id),
      ...(redeemed ? [redeemed] : []),
    ],
    // In its place when the subscription has it (the order of the invoice's lines), else last.
    addOns: existing
      ? addOns.flatMap((a) => (a.add_on_id === addOn.id ? changed : [a]))
      : [...addOns, ...changed],
  });
  // A SUSPENDED subscription's next invoice is the one reactivating it now makes: for the period
  // holding now when periods were skipped (reinstate.ts `resumesAt`), not the stale next_renewal_at.
  const resumeAt = subscription.status === 'SUSPENDED' ? resumesAt(subscription, plan, now, policy) : null;
  const upcoming = resumeAt ? { ...subscription, next_renewal_at: resumeAt } : subscription;
  const { plan: billed, next } = await nextRenewalLines(db, upcoming, withChange);
  // Refused as setting it refuses: the next period with this quantity, and the usage its invoice
  // bills, must be invoiceable (with the plan and quantity it will bill).
  await refuseUninvoiceablePeriod(
    db,
    subscription,
    billed,
    subscription.scheduled_quantity ?? subscription.quantity,
    withChange,
  );
  const behavior = change.proration ?? DEFAULT_PRORATION;
  const charged = await addOnProration(
    db,
    subscription,
    plan,
    addOn,
    existing?.quantity ?? 0,
    change.quantity,
    behavior,
    now,
    undefined,
    policy,
  );
  const method = subscription.payment_method_id;
  // The proration is invoiced now and takes the customer's credit first; the next renewal what is left.
  const credit = (await creditAvailableIn(db, subscription.customer_id, billed.currency)).available;
  const proration = charged ? await withRounding(db, charged.proration, method, credit) : null;
  return {
    next:
      next &&
      (await withRounding(
        db,
        {
          customerId: subscription.customer_id,
          currency: billed.currency,
          billingReason: next.period.index === 0 ? 'subscription_create' : 'subscription_cycle',
          invoiceAt: next.period.start,
          periodStart: next.period.start,
          periodEnd: next.period.end,
          ...pricedLines(await withCustomerTaxes(db, subscription.customer_id, next.lines)),
        },
        method,
        credit - (proration?.creditApplied ?? 0n),
      )),
    proration,
  };
}
