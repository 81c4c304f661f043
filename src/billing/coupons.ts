import type { Kysely } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type {
  CouponDuration,
  CouponRedemptionRow,
  CouponRow,
  Database,
  SubscriptionRow,
} from '../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { applyRate } from '../money/rates.ts';
import { periodIndexAt } from './periods.ts';

/**
 * Coupons: a discount on a subscription's recurring base amount, either a percentage (parts per
 * million, `money/rates.ts`) or an amount off (minor units of one currency, capped at the base), for
 * one period (ONCE), `durationInPeriods` periods by time (REPEATING: `couponInEffect`) or every period
 * (FOREVER). Redeemed on a
 * subscription (discounting its plan's line) or on one of its add-ons (discounting that add-on's line
 * only), once per coupon and subscription (or subscription and add-on), until `redeem_by`, at most
 * `max_redemptions` times in all and `max_redemptions_per_customer` times per customer (both counting
 * every redemption); applied at renewal as a CREDIT line after the line it discounts.
 *
 * Eligibility (Billby's `for_all` / `products` / `add_ons`, seed 001): with neither
 * `applies_to_products` nor `applies_to_add_ons` the coupon is for all (any plan, any add-on);
 * otherwise it applies to the plans of the listed products and to the listed add-ons only (a list
 * not given names nothing).
 */

/** A new coupon: exactly one of `percentOffPpm` or `amountOff` + `currency`. */
export interface NewCoupon {
  code: string;
  name?: string;
  percentOffPpm?: number;
  /** Minor units of `currency`. */
  amountOff?: bigint;
  currency?: string;
  duration: CouponDuration;
  durationInPeriods?: number;
  maxRedemptions?: number;
  /** No redemption after this time. */
  redeemBy?: Date;
  maxRedemptionsPerCustomer?: number;
  /** Product ids (`prod_…`): the coupon discounts plans of these products (and `appliesToAddOns`) only. */
  appliesToProducts?: string[];
  /** Add-on ids (`addon_…`): the coupon discounts these add-ons (and `appliesToProducts`' plans) only. */
  appliesToAddOns?: string[];
  metadata?: Record<string, string>;
}

function couponActivity(work: UnitOfWork, coupon: CouponRow, action: string, data = {}): Promise<void> {
  return recordActivity(work, { resourceType: 'coupon', resourceId: coupon.id, action, data });
}

/**
 * Creates a coupon.
 * @throws ValidationError when the discount or duration fields do not fit together
 * @throws ConflictError `coupon_code_taken` when another coupon has the code
 */
export async function createCoupon(db: Db, actor: Actor, input: NewCoupon): Promise<CouponRow> {
  const fields: Record<string, string> = {};
  if ((input.percentOffPpm === undefined) === (input.amountOff === undefined))
    fields.percent_off = 'give exactly one of percent_off or amount_off';
  if ((input.amountOff === undefined) !== (input.currency === undefined))
    fields.currency = 'currency is required with amount_off, and only with it';
  if ((input.duration === 'REPEATING') !== (input.durationInPeriods !== undefined))
    fields.duration_in_periods = 'required with duration REPEATING, and only with it';
  if (input.percentOffPpm === 0) fields.percent_off = 'must be greater than 0';
  if (Object.keys(fields).length) throw new ValidationError('invalid coupon', fields);
  return inUnitOfWork(db, { actor }, async (work) => {
    const unknown: Record<string, string> = {};
    for (const [field, table, ids] of [
      ['applies_to_products', 'products', input.appliesToProducts],
      ['applies_to_add_ons', 'add_ons', input.appliesToAddOns],
    ] as const) {
      if (!ids) continue;
      const found = await work.trx.selectFrom(table).select('id').where('id', 'in', ids).execute();
      const missing = ids.filter((id) => !found.some((row) => row.id === id));
      if (missing.length)
        unknown[field] = `no ${table === 'products' ? 'product' : 'add-on'} ${missing.join(', ')}`;
    }
    if (Object.keys(unknown).length) throw new ValidationError('unknown product or add-on', unknown);
    const coupon = await work.trx
      .insertInto('coupons')
      .values({
        id: newId('cpn'),
        code: input.code,
        name: input.name ?? null,
        percent_off_ppm: input.percentOffPpm ?? null,
        amount_off: input.amountOff ?? null,
        currency: input.currency ?? null,
        duration: input.duration,
        duration_in_periods: input.durationInPeriods ?? null,
        max_redemptions: input.maxRedemptions ?? null,
        redeem_by: input.redeemBy ?? null,
        max_redemptions_per_customer: input.maxRedemptionsPerCustomer ?? null,
        applies_to_products: input.appliesToProducts ? JSON.stringify(input.appliesToProducts) : null,
        applies_to_add_ons: input.appliesToAddOns ? JSON.stringify(input.appliesToAddOns) : null,
        metadata: JSON.stringify(input.metadata ?? {}),
      })
      .onConflict((oc) => oc.column('code').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!coupon) throw new ConflictError('coupon_code_taken', `a coupon with code ${input.code} exists`);
    await couponActivity(work, coupon, 'coupon.created', { code: coupon.code, duration: coupon.duration });
    return coupon;
  });
}

/** @throws NotFoundError when there is no coupon `id` */
export async function getCoupon(db: Kysely<Database>, id: string): Promise<CouponRow> {
  const row = await db.selectFrom('coupons').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('coupon', id);
  return row;
}

/** What `updateCoupon` may change: name, whether it can still be redeemed, metadata (replaced). */
export interface CouponUpdate {
  name?: string;
  active?: boolean;
  metadata?: Record<string, string>;
}

/**
 * Updates a coupon's name, active flag or metadata (the discount itself never changes) and logs
 * `coupon.updated`; an update that gives none of them changes nothing and returns the coupon.
 * @throws NotFoundError when there is no coupon `id`
 */
export async function updateCoupon(
  db: Db,
  actor: Actor,
  id: string,
  update: CouponUpdate,
): Promise<CouponRow> {
  if (update.name === undefined && update.active === undefined && update.metadata === undefined) {
    // Nothing to change (`{}`): the coupon as it is, as an empty product update answers.
    return getCoupon(db, id);
  }
  return inUnitOfWork(db, { actor }, async (work) => {
    const coupon = await work.trx
      .updateTable('coupons')
      .set({
        ...(update.name !== undefined ? { name: update.name } : {}),
        ...(update.active !== undefined ? { active: update.active } : {}),
        ...(update.metadata !== undefined ? { metadata: JSON.stringify(update.metadata) } : {}),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    if (!coupon) throw new NotFoundError('coupon', id);
    await couponActivity(work, coupon, 'coupon.updated', {
      name: update.name,
      active: update.active,
      metadata: update.metadata,
    });
    return coupon;
  });
}

/**
 * Where a coupon would be redeemed: the plan's currency and product, the customer, when, and the
 * subscription's add-on (`addOnId`) when it is redeemed on one.
 */
export interface RedemptionTarget {
  currency: string;
  productId: string;
  customerId: string;
  now: Date;
  addOnId?: string;
}

/**
 * The coupon of `code` if a subscription of `target` may redeem it now (read only: the redemption's
 * conditional UPDATE is what counts).
 * @throws ValidationError (field `coupon`) for an unknown code or a currency other than `currency`
 * @throws ConflictError `coupon_inactive`, `coupon_expired` (after `redeem_by`), `coupon_exhausted`,
 *   `coupon_not_applicable` (not for all, and it lists neither the plan's product, on a subscription,
 *   nor `addOnId`, on an add-on), `coupon_customer_limit` (the customer redeemed it
 *   `max_redemptions_per_customer` times)
 */
export async function redeemableCoupon(
  db: Kysely<Database>,
  code: string,
  target: RedemptionTarget,
): Promise<CouponRow> {
  const coupon = await eligibleCoupon(db, code, target);
  await checkCustomerLimit(db, coupon, target.customerId);
  return coupon;
}

/**
 * The coupon of `code` if `target` may redeem it now, but for the per-customer limit (which
 * `redeemCoupon` checks once, after its UPDATE has ordered concurrent redemptions).
 * @throws as `redeemableCoupon`, but for `coupon_customer_limit`
 */
async function eligibleCoupon(
  db: Kysely<Database>,
  code: string,
  target: Omit<RedemptionTarget, 'customerId'>,
): Promise<CouponRow> {
  const coupon = await db.selectFrom('coupons').selectAll().where('code', '=', code).executeTakeFirst();
  if (!coupon) throw new ValidationError('unknown coupon', { coupon: `no coupon with code ${code}` });
  if (coupon.currency !== null && coupon.currency !== target.currency) {
    throw new ValidationError('coupon currency mismatch', {
      coupon: `coupon ${code} is in ${coupon.currency}; the subscription bills in ${target.currency}`,
    });
  }
  if (!coupon.active) throw new ConflictError('coupon_inactive', `coupon ${code} is not active`);
  if (coupon.redeem_by !== null && target.now > coupon.redeem_by) {
    throw new ConflictError(
      'coupon_expired',
      `coupon ${code} could be redeemed until ${coupon.redeem_by.toISOString()}`,
    );
  }
  if (coupon.max_redemptions !== null && coupon.times_redeemed >= coupon.max_redemptions) {
    throw new ConflictError('coupon_exhausted', `coupon ${code} has no redemptions left`);
  }
  const applies =
    target.addOnId === undefined
      ? couponAppliesTo(coupon, target.productId)
      : couponAppliesToAddOn(coupon, target.addOnId);
  if (!applies) {
    throw new ConflictError(
      'coupon_not_applicable',
      `coupon ${code} applies to ${eligibility(coupon)} only, not ${target.addOnId === undefined ? `product ${target.productId}` : `add-on ${target.addOnId}`}`,
    );
  }
  return coupon;
}

type Eligibility = Pick<CouponRow, 'applies_to_products' | 'applies_to_add_ons'>;

/** Whether `coupon` is for all: it lists neither products nor add-ons (Billby's `for_all`). */
function forAll(coupon: Eligibility): boolean {
  return coupon.applies_to_products === null && coupon.applies_to_add_ons === null;
}

/** What a restricted coupon lists, for a message: `products a, b and add-ons c`. */
function eligibility(coupon: Eligibility): string {
  const products = coupon.applies_to_products ?? [];
  const addOns = coupon.applies_to_add_ons ?? [];
  return [
    products.length ? `products ${products.join(', ')}` : '',
    addOns.length ? `add-ons ${addOns.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join(' and ');
}

/** Whether `coupon` discounts plans of product `productId`: it is for all, or lists this product. */
export function couponAppliesTo(coupon: Eligibility, productId: string): boolean {
  return forAll(coupon) || (coupon.applies_to_products?.includes(productId) ?? false);
}

/** Whether `coupon` may be redeemed on add-on `addOnId`: it is for all, or lists this add-on. */
export function couponAppliesToAddOn(coupon: Eligibility, addOnId: string): boolean {
  return forAll(coupon) || (coupon.applies_to_add_ons?.includes(addOnId) ?? false);
}

/** @throws ConflictError `coupon_customer_limit` when `customerId` redeemed `coupon` as often as it may */
async function checkCustomerLimit(
  db: Kysely<Database>,
  coupon: CouponRow,
  customerId: string,
): Promise<void> {
  if (coupon.max_redemptions_per_customer === null) return;
  const { count } = await db
    .selectFrom('coupon_redemptions')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('coupon_id', '=', coupon.id)
    .where('customer_id', '=', customerId)
    .executeTakeFirstOrThrow();
  if (Number(count) >= coupon.max_redemptions_per_customer) {
    throw new ConflictError(
      'coupon_customer_limit',
      `customer ${customerId} has redeemed coupon ${coupon.code} ${coupon.max_redemptions_per_customer} time(s), its limit per customer`,
    );
  }
}

/**
 * Redeems coupon `code` on a subscription (locked or just inserted in `work`, which has joined the
 * ledger's writers) of a plan of `plan.currency` and `plan.productId`, or on its add-on `addOnId`
 * (which the caller checked is on the subscription). `times_redeemed` grows in one
 * conditional UPDATE, so it stays exact and never passes `max_redemptions` under concurrency; that
 * UPDATE's row lock also orders concurrent redemptions of the coupon, so the per-customer limit is
 * checked once, by a count read after it that sees every one committed before. The redemption counts
 * from the subscription's next period invoice on (`first_period_index`, `nextPeriodInvoiceIndex`), not
 * those made before it in `work`, never a period before the one holding `now`: `firstPeriodIndex`).
 * Logs `coupon.redeemed`.
 * @throws ValidationError (field `coupon`) for an unknown code or a currency other than the plan's
 * @throws ConflictError as `redeemableCoupon`, and `coupon_already_redeemed` (on this subscription,
 *   or on this add-on of it, before; removed or not)
 */
export async function redeemCoupon(
  work: UnitOfWork,
  subscription: SubscriptionRow,
  plan: { currency: string; productId: string },
  code: string,
  now: Date = new Date(),
  addOnId?: string,
): Promise<CouponRedemptionRow> {
  const coupon = await eligibleCoupon(work.trx, code, { ...plan, now, addOnId });
  const counted = await work.trx
    .updateTable('coupons')
    .set((eb) => ({ times_redeemed: eb('times_redeemed', '+', 1) }))
    .where('id', '=', coupon.id)
    .where('active', '=', true)
    .where((eb) =>
      eb.or([eb('max_redemptions', 'is', null), eb('times_redeemed', '<', eb.ref('max_redemptions'))]),
    )
    .returning('times_redeemed')
    .executeTakeFirst();
  if (!counted) throw new ConflictError('coupon_exhausted', `coupon ${code} has no redemptions left`);
  await checkCustomerLimit(work.trx, coupon, subscription.customer_id);
  const redemption = await work.trx
    .insertInto('coupon_redemptions')
    .values({
      id: newId('cr'),
      coupon_id: coupon.id,
      subscription_id: subscription.id,
      customer_id: subscription.customer_id,
      add_on_id: addOnId ?? null,
      first_period_index: await firstPeriodIndex(work.trx, subscription, now),
    })
    .onConflict((oc) => oc.constraint('coupon_redemptions_coupon_subscription_add_on').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!redemption) {
    throw new ConflictError(
      'coupon_already_redeemed',
      `coupon ${code} is already redeemed on ${addOnId ? `add-on ${addOnId} of ` : ''}subscription ${subscription.id}`,
    );
  }
  await recordActivity(work, {
    resourceType: 'coupon',
    resourceId: coupon.id,
    action: 'coupon.redeemed',
    customerId: subscription.customer_id,
    data: {
      subscription: subscription.id,
      add_on: addOnId,
      redemption: redemption.id,
      times_redeemed: counted.times_redeemed,
    },
  });
  return redemption;
}

/**
 * The index of the next period invoice subscription `subscriptionId` gets: one past its last period
 * invoice (a subscription's period invoices are made in the order of their periods), 0 before any.
 * A coupon redeemed now counts from that invoice on (`first_period_index`): the invoices made before,
 * in the same unit of work too (a catch-up renewal), are not its.
 */
export async function nextPeriodInvoiceIndex(db: Kysely<Database>, subscriptionId: string): Promise<number> {
  const { last } = await db
    .selectFrom('invoices')
    .select((eb) => eb.fn.max('period_index').as('last'))
    .where('subscription_id', '=', subscriptionId)
    .executeTakeFirstOrThrow();
  return last === null ? 0 : last + 1;
}

/**
 * The period a coupon redeemed on `subscription` at `now` counts from (`first_period_index`): the
 * next period invoice's (`nextPeriodInvoiceIndex`), but never a period that started before the one
 * holding `now` (a SUSPENDED subscription's last invoice may be periods back: the periods it was not
 * billed for passed before the redemption, so they are not the coupon's; its first is the period
 * holding now, invoiced when it is reactivated within it). Periods by the subscription's anchor and
 * its plan's interval (periods.ts). `redeemCoupon` sets it; the add-on preview (preview.ts) counts
 * the coupon it previews from it too.
 * @returns a period index (≥ 0)
 */
export async function firstPeriodIndex(
  db: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id' | 'plan_id' | 'billing_anchor'>,
  now: Date,
): Promise<number> {
  const plan = await db
    .selectFrom('plans')
    .select(['interval', 'interval_count'])
    .where('id', '=', subscription.plan_id)
    .executeTakeFirstOrThrow();
  const holdingNow = periodIndexAt(
    { anchor: subscription.billing_anchor, interval: plan.interval, intervalCount: plan.interval_count },
    now,
  );
  return Math.max(await nextPeriodInvoiceIndex(db, subscription.id), holdingNow);
}

/**
 * Ends redemption `redemption` (not removed yet, of a subscription locked in `work`) at `now`: sets
 * `removed_at`, so it discounts no later invoice (past discounts stay, `times_redeemed` is
 * unchanged), and logs `coupon.removed` with the subscription, the add-on it was on (if any) and
 * the periods it discounted.
 */
export async function endRedemption(
  work: UnitOfWork,
  redemption: CouponRedemptionRow,
  now: Date,
): Promise<CouponRedemptionRow> {
  const removed = await work.trx
    .updateTable('coupon_redemptions')
    .set({ removed_at: now })
    .where('id', '=', redemption.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordActivity(work, {
    resourceType: 'coupon',
    resourceId: redemption.coupon_id,
    action: 'coupon.removed',
    customerId: redemption.customer_id,
    data: {
      subscription: redemption.subscription_id,
      ...(redemption.add_on_id ? { add_on: redemption.add_on_id } : {}),
      redemption: redemption.id,
      periods_applied: redemption.periods_applied,
    },
  });
  return removed;
}

/**
 * True while a coupon still discounts a period: ONCE on the first period invoice that counted it
 * (`periodsApplied` 0); REPEATING on the `duration_in_periods` periods from its redemption's
 * `first_period_index` on, counted by time (`periodsSinceFirst`: the period's index less
 * `first_period_index`), not by invoices, so the periods a suspension left unbilled use up their
 * share (Stripe's `duration_in_months` runs by time too; billhook's unit is the plan's period);
 * FOREVER always.
 * @param periodsApplied the period invoices the redemption has discounted before this period
 * @param periodsSinceFirst the period's index less the redemption's `first_period_index` (≥ 0)
 */
export function couponInEffect(
  coupon: Pick<CouponRow, 'duration' | 'duration_in_periods'>,
  periodsApplied: number,
  periodsSinceFirst: number,
): boolean {
  switch (coupon.duration) {
    case 'ONCE':
      return periodsApplied < 1;
    case 'REPEATING':
      return periodsSinceFirst < (coupon.duration_in_periods ?? 0);
    case 'FOREVER':
      return true;
  }
}

/**
 * The discount of a coupon on a period's base amount `base` (minor units): `percent_off` of it,
 * rounded half up (`applyRate`), or `amount_off` capped at `base`.
 */
export function couponDiscount(
  coupon: Pick<CouponRow, 'percent_off_ppm' | 'amount_off'>,
  base: bigint,
): bigint {
  if (coupon.percent_off_ppm !== null) return applyRate(base, coupon.percent_off_ppm);
  const off = coupon.amount_off ?? 0n;
  return off < base ? off : base;
}

/**
 * The discount of each of `coupons`, in order, on a period's base amount `base` (minor units): each
 * as `couponDiscount` on the whole base, all together capped at `base` (a later coupon gets what the
 * earlier ones left).
 */
export function couponDiscounts(
  coupons: readonly Pick<CouponRow, 'percent_off_ppm' | 'amount_off'>[],
  base: bigint,
): bigint[] {
  let remaining = base;
  return coupons.map((coupon) => {
    let discount = couponDiscount(coupon, base);
    if (discount > remaining) discount = remaining;
    remaining -= discount;
    return discount;
  });
}

/** A redemption with its coupon. */
export interface RedemptionWithCoupon extends CouponRedemptionRow {
  coupon: CouponRow;
}

/**
 * The coupons redeemed on subscription `subscriptionId`, oldest first (the order `couponDiscounts`
 * applies them in), each with its coupon. Oldest by `created_at` (its transaction's start, in
 * microseconds; one redemption per transaction: `redeemCoupon`), not by id alone: ids carry
 * milliseconds, and two made in one sort at random.
 */
export async function subscriptionRedemptions(
  db: Kysely<Database>,
  subscriptionId: string,
): Promise<RedemptionWithCoupon[]> {
  const rows = await db
    .selectFrom('coupon_redemptions')
    .selectAll()
    .where('subscription_id', '=', subscriptionId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  if (!rows.length) return [];
  const coupons = await db
    .selectFrom('coupons')
    .selectAll()
    .where(
      'id',
      'in',
      rows.map((r) => r.coupon_id),
    )
    .execute();
  const byId = new Map(coupons.map((c) => [c.id, c]));
  return rows.map((row) => ({ ...row, coupon: byId.get(row.coupon_id)! }));
}

/**
 * The coupons that counted for the current period of `subscription` on its plan (`addOnId` null) or
 * on its add-on `addOnId` and still discount what is charged at `now`, in the order the renewal
 * applied them (their redemptions' order): what a plan change's new side and an add-on's raise are
 * discounted by (billing/proration.ts, add-on-proration.ts), as the period was. Read from the
 * period invoices up to the current one (the current one, for an add-on, not VOID, as
 * add-on-proration.ts reads what the period paid; for the plan, whatever its status) and the
 * redemptions there not removed by `now` (one removed mid-period discounts nothing charged after
 * its removal, as no later renewal). A redemption counted for the period when it discounted a line
 * of the current invoice (a coupon line), or when the renewal counted it though it took nothing off
 * (capped to nothing behind another coupon, or on a price of 0: no coupon line). The renewal counts
 * a redemption on each period invoice from its `first_period_index` on (those made after it) that
 * bills what it applies to (the plan line's product; the add-on's line) until its periods are used up
 * (`couponInEffect`), so it counted for the current one when that one is among those, bills what it
 * applies to, and, for a ONCE coupon, no invoice before it among those billed what it applies to (a
 * ONCE coupon on a free plan's first invoice counts); a REPEATING one counts while the current period
 * is within its `duration_in_periods` periods from `first_period_index`, by time (one whose periods
 * ran out before, invoiced or not, is left out). Counted by period index, not by time: a coupon redeemed after the current
 * invoice was made starts with the next period, even in the unit of work that made it (a catch-up
 * renewal before `redeemCoupon`, at the same `now()`).
 * @returns the coupons, [] without a current period or its invoice
 */
export async function periodCoupons(
  trx: Kysely<Database>,
  subscription: Pick<SubscriptionRow, 'id' | 'current_period_index'>,
  addOnId: string | null,
  now: Date,
): Promise<CouponRow[]> {
  const index = subscription.current_period_index;
  if (index === null) return [];
  // Each period invoice's lines there: the plan's line (its product) or the add-on's, and their coupon lines.
  const lines = await trx
    .selectFrom('invoice_lines as l')
    .innerJoin('invoices as i', 'i.id', 'l.invoice_id')
    .leftJoin('plans as p', 'p.id', 'l.plan_id')
    .select(['i.id', 'i.period_index', 'i.status', 'p.product_id', 'l.coupon_id'])
    .where('i.subscription_id', '=', subscription.id)
    .where('i.period_index', '<=', index)
    .where('l.metric_code', 'is', null)
    .where('l.add_on_id', addOnId === null ? 'is' : '=', addOnId)
    // The plan's line and its coupon lines (not the setup fee, which has no plan).
    .$if(addOnId === null, (qb) => qb.where('l.plan_id', 'is not', null))
    .execute();
  const ofCurrent = lines.filter((l) => l.period_index === index);
  const current = ofCurrent.find((l) => l.coupon_id === null);
  if (!current || (addOnId !== null && current.status === 'VOID')) return [];
  const discounted = new Set(ofCurrent.map((l) => l.coupon_id).filter((id) => id !== null));
  const billed = lines.filter((l) => l.coupon_id === null);
  const applies = (coupon: CouponRow, line: { product_id: string | null }) =>
    addOnId === null
      ? line.product_id !== null && couponAppliesTo(coupon, line.product_id)
      : couponAppliesToAddOn(coupon, addOnId);
  const countedNow = (r: RedemptionWithCoupon) => {
    if (index < r.first_period_index || !applies(r.coupon, current)) return false;
    const before = billed.filter(
      (l) => l.period_index! >= r.first_period_index && l.period_index! < index && applies(r.coupon, l),
    ).length;
    return couponInEffect(r.coupon, before, index - r.first_period_index);
  };
  return (await subscriptionRedemptions(trx, subscription.id))
    .filter(
      (r) =>
        r.add_on_id === addOnId &&
        (r.removed_at === null || r.removed_at > now) &&
        (discounted.has(r.coupon_id) || countedNow(r)),
    )
    .map((r) => r.coupon);
}

/**
 * Redemption `redemptionId` of subscription `subscriptionId`, with its coupon (as an API answer shows
 * it after a redemption or removal).
 * @throws NotFoundError when the subscription has no such redemption
 */
export async function redemptionWithCoupon(
  db: Kysely<Database>,
  subscriptionId: string,
  redemptionId: string,
): Promise<RedemptionWithCoupon> {
  const found = (await subscriptionRedemptions(db, subscriptionId)).find((r) => r.id === redemptionId);
  if (!found) throw new NotFoundError('coupon_redemption', redemptionId);
  return found;
}
