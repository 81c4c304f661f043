import { type ExpressionBuilder, type Kysely, type OperandValueExpressionOrList, sql } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type {
  BillingReason,
  Database,
  InvoiceLineRow,
  InvoiceRow,
  InvoiceStatus,
  OfflinePaymentRow,
} from '../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { resolveSetAsideCharges } from '../exceptions/exceptions.ts';
import { postEntry } from '../ledger/journal.ts';
import {
  badDebtRecovered,
  entryKeys,
  type InvoiceAmounts,
  invoiceFinalized,
  invoiceRoundedAgain,
  invoiceVoided,
  offlinePaymentReceived,
} from '../ledger/movements.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import { MAX_MINOR_UNITS } from '../money/amount.ts';
import { ppmToPercent } from '../money/rates.ts';
import { splitTaxes, type TaxShare, type TaxSplit } from '../money/taxes.ts';
import { DAY_MS } from '../time.ts';
import { applyCustomerCredit, returnAppliedCredit, undoProrationCredit } from './customer-credit.ts';
import { type BilledCustomer, type OpenCustomer, openCustomerOnce } from './customer-status.ts';
import { DEFAULT_INVOICE_PREFIX, numberAtEnd } from './invoice-numbers.ts';
import { chargesInFlight, disputedAway } from './invoice-payment.ts';
import { dueOffStep, finalizationRounding, type Rounding } from './invoice-rounding.ts';
import { reinstateAfterPayment, reinstateAfterVoid } from './reinstate.ts';
import { DEFAULT_RENEWAL_POLICY, type RenewalPolicy } from './renewal.ts';
import type { AppliedTaxRate } from './tax-lookup.ts';
import { taxLocationOf, withTaxesAt } from './tax-rates.ts';

/**
 * Statuses of an invoice paid (by its payments or the customer's credit) that may still have money to
 * give back. Wider than a refund by hand (payments/refunds.ts `prepareInvoiceRefund`: PAID,
 * PARTIALLY_REFUNDED) on purpose: a REFUNDED invoice (its cash all refunded) may still hold customer
 * credit that a cancellation (cancellation.ts) or a credit return (credit-returns.ts) gives back as
 * credit; its cash part is then 0, so no cash refund is asked for.
 */
export const PAID_STATUSES: readonly InvoiceStatus[] = ['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED'];

/**
 * A line of a new invoice. Its amount is `unitAmount × quantity`, or `amount` when the line is priced
 * by a model that is not a unit price (tiered, volume, stairstep: `unitAmount` is then null). Amounts
 * are minor units, positive; CREDIT lines reduce the total. `taxRatePpm` is the line's tax rate in
 * parts per million (money/rates.ts); the line's tax is rounded per line, except that a coupon line
 * (`couponId`) is taxed with the line it discounts (see `lineAmounts`).
 */
export interface NewLine {
  description: string;
  unitAmount?: bigint | null;
  quantity: number;
  type: 'CHARGE' | 'CREDIT';
  amount?: bigint;
  taxRatePpm?: number;
  planId?: string;
  metricCode?: string;
  /** The coupon whose discount this line is: it discounts the nearest line before it that has none. */
  couponId?: string;
  /** The add-on this line charges for (`add_on_id`). */
  addOnId?: string;
  /**
   * The named tax rates of the line, in order (`applicableTaxRates`); when set they replace
   * `taxRatePpm` ([] taxes nothing: a tax-exempt customer). `insertInvoice` sets them from the
   * customer's address (`withCustomerTaxes`).
   */
  taxRates?: readonly AppliedTaxRate[];
  /** The amount includes the line's taxes (a tax-inclusive price): it is split into net and tax. */
  taxInclusive?: boolean;
  periodStart?: Date;
  periodEnd?: Date;
}

/** A new invoice: its customer, currency, lines and, for a subscription's invoice, the period it bills. */
export interface NewInvoice {
  customerId: string;
  currency: string;
  lines: NewLine[];
  subscriptionId?: string;
  periodIndex?: number;
  periodStart?: Date;
  periodEnd?: Date;
  billingReason?: BillingReason;
  /** When the scheduler should charge the invoice once it is OPEN. */
  chargeAt?: Date;
  /** What the invoice says beyond its lines (a manual invoice's; see `InvoiceDetails`). */
  details?: InvoiceDetails;
}

/**
 * What an invoice says beyond its lines, set on a DRAFT: net N days of payment terms (0–365; null:
 * the customer's), purchase order number, title, notes printed on it (Billby's `invoice_notes`), and
 * the caller's own id (unique among invoices). Null clears a field.
 */
export interface InvoiceDetails {
  paymentTermsDays?: number | null;
  poNumber?: string | null;
  title?: string | null;
  notes?: string | null;
  externalId?: string | null;
}

/** `details` as invoice columns (only the fields given). */
export function detailColumns(details: InvoiceDetails) {
  return {
    payment_terms_days: details.paymentTermsDays,
    po_number: details.poNumber,
    title: details.title,
    notes: details.notes,
    external_id: details.externalId,
  };
}

/** The refusal of an invoice `external_id` another invoice has (409 `external_id_taken`). */
export function externalIdTaken(externalId: string): ConflictError {
  return new ConflictError('external_id_taken', `an invoice with external_id ${externalId} exists`);
}

/** An invoice with its line items. */
export interface InvoiceWithLines extends InvoiceRow {
  lines: InvoiceLineRow[];
}

/**
 * Logs a change of invoice `invoice` (activities), e.g. `invoice.finalized`, inside the transaction
 * that makes it.
 */
export function invoiceActivity(
  work: UnitOfWork,
  invoice: Pick<InvoiceRow, 'id' | 'customer_id'>,
  action: string,
  data: Record<string, unknown> = {},
): Promise<void> {
  return recordActivity(work, {
    resourceType: 'invoice',
    resourceId: invoice.id,
    action,
    customerId: invoice.customer_id,
    data,
  });
}

/**
 * A line's signed amount as priced (negative for CREDIT lines), minor units: `amount`, else
 * `unitAmount × quantity`; before tax, or including it for a tax-inclusive price.
 */
export function lineAmount(line: NewLine): bigint {
  const amount = line.amount ?? (line.unitAmount ?? 0n) * BigInt(line.quantity);
  return line.type === 'CREDIT' ? -amount : amount;
}

/**
 * How a line is taxed: its named rates (`taxRates`), else its bare `taxRatePpm` as one exclusive
 * simple rate (none at 0); `inclusive` when its price includes them (`taxInclusive`).
 */
export interface LineTaxRule {
  /** The named rates, or undefined for a bare percent. */
  rates: readonly AppliedTaxRate[] | undefined;
  shares: readonly TaxShare[];
  /** What `invoice_lines.tax_rate_ppm` records: the bare percent, or the named rates' nominal sum. */
  ratePpm: number;
  inclusive: boolean;
}

/** The tax rule of `line` (see `LineTaxRule`). */
export function taxRuleOf(line: NewLine): LineTaxRule {
  const inclusive = line.taxInclusive ?? false;
  if (line.taxRates) {
    return {
      rates: line.taxRates,
      shares: line.taxRates,
      ratePpm: line.taxRates.reduce((sum, rate) => sum + rate.ppm, 0),
      inclusive,
    };
  }
  const ppm = line.taxRatePpm ?? 0;
  return {
    rates: undefined,
    shares: ppm > 0 ? [{ ppm, inclusive: false, compound: false }] : [],
    ratePpm: ppm,
    inclusive,
  };
}

/** A line as priced: its signed net amount, its tax, each rate's tax (the rule's order) and the rule. */
export interface PricedLine {
  amount: bigint;
  tax: bigint;
  taxes: bigint[];
  rule: LineTaxRule;
}

/**
 * Each line's signed net amount (negative for CREDIT lines) and tax, minor units, without checking
 * the invoice's total. A line is split into net and taxes by `splitTaxes` (money/taxes.ts: each tax
 * rounded half away from zero; a tax-inclusive price's net + its taxes = the price exactly). Tax is
 * computed once on the discounted amount of a line (PRODUCT §11): a coupon line (`couponId`)
 * discounts the nearest line before it that is not a coupon line, and that line with its coupon
 * lines is split under the discounted line's rule on their summed amount. The discounted line
 * carries the split of its own amount and each coupon line the change its discount makes, so the
 * group's tax is that of its net exactly: 11045 at 10% less a 5523 coupon is taxed 552 (on 5522),
 * not 1105 − 552 = 553. Any other line is split on its own amount.
 * @throws ValidationError (`lines.N.amount`) when a line exceeds 10^15 minor units
 */
export function lineAmounts(lines: readonly NewLine[]): PricedLine[] {
  let discounted: { rule: LineTaxRule; gross: bigint; split: TaxSplit } | undefined;
  return lines.map((line, i) => {
    const amount = lineAmount(line);
    if (amount > MAX_MINOR_UNITS || -amount > MAX_MINOR_UNITS) {
      throw new ValidationError('line amount too large', {
        [`lines.${i}.amount`]: 'amount × quantity exceeds 10^15 minor units',
      });
    }
    if (line.couponId === undefined || !discounted) {
      const rule = taxRuleOf(line);
      const split = splitTaxes(amount, rule.shares, rule.inclusive);
      discounted = line.couponId === undefined ? { rule, gross: amount, split } : undefined;
      return { amount: split.net, tax: sum(split.taxes), taxes: split.taxes, rule };
    }
    const { rule } = discounted;
    const gross = discounted.gross + amount;
    const split = splitTaxes(gross, rule.shares, rule.inclusive);
    const taxes = split.taxes.map((tax, r) => tax - discounted!.split.taxes[r]!);
    const net = split.net - discounted.split.net;
    discounted = { rule, gross, split };
    return { amount: net, tax: sum(taxes), taxes, rule };
  });
}

const sum = (amounts: readonly bigint[]) => amounts.reduce((total, amount) => total + amount, 0n);

/**
 * A priced line's named taxes as `invoice_lines.taxes` stores them and the API shows them: each rate's
 * id, name, percentage text, whether the price included it, compound, and its amount (minor units);
 * [] for a bare percent.
 */
export function lineTaxesJson(priced: PricedLine): Record<string, unknown>[] {
  return (priced.rule.rates ?? []).map((rate, r) => ({
    tax_rate: rate.id,
    display_name: rate.displayName,
    percent: ppmToPercent(rate.ppm),
    inclusive: rate.inclusive || priced.rule.inclusive,
    compound: rate.compound,
    amount: Number(priced.taxes[r]),
  }));
}

/**
 * Amounts of a new invoice: each line's signed amount and tax (`lineAmounts`), the subtotal (before
 * tax), the tax and the total (subtotal + tax), all minor units.
 * @throws ValidationError when a line or the total exceeds 10^15 minor units, or the total is negative
 */
export function invoiceAmounts(lines: readonly NewLine[]): {
  lines: PricedLine[];
  subtotal: bigint;
  tax: bigint;
  total: bigint;
} {
  const priced = lineAmounts(lines);
  const subtotal = priced.reduce((sum, line) => sum + line.amount, 0n);
  const tax = priced.reduce((sum, line) => sum + line.tax, 0n);
  const total = subtotal + tax;
  if (total < 0n || subtotal < 0n)
    throw new ValidationError('credits exceed charges', { lines: 'the invoice total would be negative' });
  if (total > MAX_MINOR_UNITS)
    throw new ValidationError('total too large', { lines: 'the total exceeds 10^15 minor units' });
  return { lines: priced, subtotal, tax, total };
}

/**
 * Creates a DRAFT invoice with its lines.
 * @throws NotFoundError when the customer does not exist
 * @throws ValidationError when a line (amount × quantity) or the total exceeds 10^15 minor units, or
 * credits exceed charges
 * @throws ConflictError `external_id_taken` when another invoice has `details.externalId`
 */
export async function createInvoice(db: Db, actor: Actor, input: NewInvoice): Promise<InvoiceWithLines> {
  return inUnitOfWork(db, { actor }, (work) => insertInvoice(work, input));
}

/** A programming error caught: an `OpenCustomer` of another customer than the invoice's. */
function assertSameCustomer(read: BilledCustomer, customerId: string): void {
  if (read.id !== customerId) throw new Error(`customer ${read.id} read for an invoice of ${customerId}`);
}

/**
 * How `insertInvoice` reads its customer and taxes its lines: `customer`, the unit of work's
 * `openCustomerOnce` of the invoice's customer (shared by its invoices; default: one of its own);
 * `taxed`, true when `lines` are taxed already (`withCustomerTaxes` of the invoice's customer, in
 * this unit of work): they are stored as they are.
 */
export interface InsertOptions {
  customer?: OpenCustomer;
  taxed?: boolean;
}

/**
 * Inserts a DRAFT invoice with its lines inside `work` (which has joined the ledger's writers), and
 * logs `invoice.created`. For a subscription period, the unique (subscription, period index) makes a
 * second insert fail with PostgreSQL error 23505, which callers treat as "already invoiced".
 * @throws NotFoundError when the customer does not exist; ConflictError `customer_closed` when it is
 * closed (billing/customer-status.ts); ValidationError as `invoiceAmounts`
 */
export async function insertInvoice(
  work: UnitOfWork,
  input: NewInvoice,
  { customer = openCustomerOnce(work.trx, input.customerId), taxed: given = false }: InsertOptions = {},
): Promise<InvoiceWithLines> {
  const checked = invoiceAmounts(input.lines); // the lines' own checks come before the customer's lookup
  const billed = await customer(); // refuses a closed customer
  assertSameCustomer(billed, input.customerId);
  const taxed = given ? input.lines : await withTaxesAt(work.trx, taxLocationOf(billed), input.lines);
  const amounts = given ? checked : invoiceAmounts(taxed);
  const invoice = await work.trx
    .insertInto('invoices')
    .values({
      id: newId('inv'),
      customer_id: input.customerId,
      currency: input.currency,
      subtotal: amounts.subtotal,
      tax: amounts.tax,
      total: amounts.total,
      amount_due: amounts.total,
      subscription_id: input.subscriptionId ?? null,
      period_index: input.periodIndex ?? null,
      period_start: input.periodStart ?? null,
      period_end: input.periodEnd ?? null,
      billing_reason: input.billingReason ?? 'manual',
      charge_at: input.chargeAt ?? null,
      ...detailColumns(input.details ?? {}),
    })
    .onConflict((oc) => oc.column('external_id').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!invoice) throw externalIdTaken(input.details?.externalId ?? '');
  const lines = taxed.length
    ? await work.trx
        .insertInto('invoice_lines')
        .values(
          taxed.map((line, position) => ({
            id: newId('il'),
            invoice_id: invoice.id,
            position,
            type: line.type,
            description: line.description,
            unit_amount: line.unitAmount ?? null,
            quantity: line.quantity,
            amount: amounts.lines[position]!.amount,
            tax_rate_ppm: amounts.lines[position]!.rule.ratePpm,
            tax_amount: amounts.lines[position]!.tax,
            taxes: JSON.stringify(lineTaxesJson(amounts.lines[position]!)),
            tax_inclusive: line.taxInclusive ?? false,
            plan_id: line.planId ?? null,
            metric_code: line.metricCode ?? null,
            coupon_id: line.couponId ?? null,
            add_on_id: line.addOnId ?? null,
            period_start: line.periodStart ?? null,
            period_end: line.periodEnd ?? null,
          })),
        )
        .returningAll()
        .execute()
    : [];
  await invoiceActivity(work, invoice, 'invoice.created', {
    total: invoice.total,
    currency: invoice.currency,
    subscription: invoice.subscription_id,
  });
  return { ...invoice, lines };
}

/** An invoice's amounts as the ledger's movements take them (ledger/movements.ts). */
function ledgerAmounts(invoice: InvoiceRow): InvoiceAmounts {
  return {
    invoiceId: invoice.id,
    customerId: invoice.customer_id,
    currency: invoice.currency,
    subtotal: invoice.subtotal,
    tax: invoice.tax,
    rounding: invoice.rounding,
    total: invoice.total,
  };
}

/** @throws NotFoundError when there is no invoice `id` */
export async function getInvoice(db: Kysely<Database>, id: string): Promise<InvoiceWithLines> {
  const invoice = await db.selectFrom('invoices').selectAll().where('id', '=', id).executeTakeFirst();
  if (!invoice) throw new NotFoundError('invoice', id);
  const lines = await db
    .selectFrom('invoice_lines')
    .selectAll()
    .where('invoice_id', '=', id)
    .orderBy('position')
    .execute();
  return { ...invoice, lines };
}

/**
 * Reads an invoice for update inside `work`, so concurrent charges, refunds and webhooks on it
 * serialise on its row. Joins the ledger's writers first (before the row lock), as every
 * transaction that may post must. An invoice `work` locked ahead (`lockTransactionsAhead`, which
 * locked its subscription before it) is taken from there, without a statement.
 *
 * The lock order of every unit of work is subscription → invoices (id order) → customer (their
 * credit, `lockCustomerCredit`), so the invoice's subscription, when it has one, is locked first, in
 * the same statement: `FOR UPDATE` in the invoice's filter, which PostgreSQL evaluates on the row
 * before it locks it (an invoice's `subscription_id` never changes). A unit that holds the
 * subscription already (a renewal, a cancellation: `lockSubscription`) takes it again at no cost;
 * one that goes on to change the subscription (a payment reinstating it, a dunning step) finds it
 * locked. No unit holds an invoice while it waits for its subscription, which could deadlock (40P01)
 * against one holding the subscription and waiting for the invoice. A unit about to lock invoices of
 * several subscriptions locks those subscriptions first (`lockInvoiceSubscriptions`).
 * @throws NotFoundError when there is no invoice `id`
 */
export async function lockInvoice(work: UnitOfWork, id: string): Promise<InvoiceRow> {
  await work.joinLedgerWriters();
  const held = work.take('invoices', id);
  if (held) return held;
  const invoice = await work.trx
    .selectFrom('invoices')
    .selectAll()
    .where('id', '=', id)
    .where((eb) =>
      eb.or([
        eb('subscription_id', 'is', null),
        eb.exists(
          eb
            .selectFrom('subscriptions')
            .select('subscriptions.id')
            .whereRef('subscriptions.id', '=', 'invoices.subscription_id')
            .forUpdate(),
        ),
      ]),
    )
    .forUpdate()
    .executeTakeFirst();
  if (!invoice) throw new NotFoundError('invoice', id);
  return invoice;
}

/**
 * Locks (`FOR UPDATE`, in id order, one statement) the subscriptions of the invoices `invoiceIds`
 * names (ids, or a query selecting them), inside `work`: for a unit about to lock invoices of several
 * subscriptions (`lockTransactionsAhead`, a customer-credit refund), which must hold all of those
 * subscriptions before the first invoice (the lock order, `lockInvoice`). Invoices without a
 * subscription lock nothing here.
 */
export async function lockInvoiceSubscriptions(
  work: UnitOfWork,
  invoiceIds: OperandValueExpressionOrList<Database, 'invoices', 'invoices.id'>,
): Promise<void> {
  if (Array.isArray(invoiceIds) && invoiceIds.length === 0) return;
  await work.joinLedgerWriters();
  await work.trx
    .selectFrom('subscriptions')
    .select('id')
    .where(
      'id',
      'in',
      work.trx
        .selectFrom('invoices')
        .select('subscription_id')
        .where('invoices.id', 'in', invoiceIds)
        .where('subscription_id', 'is not', null)
        .$narrowType<{ subscription_id: string }>(),
    )
    .orderBy('id')
    .forUpdate()
    .execute();
}

/**
 * DRAFT → OPEN: takes the customer's credit off what is due (`applyCustomerCredit`), rounds what is
 * left down to the step of the gateway that will charge it with a ROUNDING line (PRODUCT §11:
 * invoice-rounding.ts), and posts the finalization entry (debit the customer's receivable the total,
 * rounding what was rounded off, credit revenue for the subtotal and tax payable for the tax). A zero-total invoice, or one the credit pays whole, is PAID at once.
 * The invoice gets its number (`INV-000123`, gap-free per prefix: `numberAtEnd`) and its due
 * date (see `finalizeLocked`).
 * @throws ConflictError `invoice_not_draft` from any other state
 */
export async function finalizeInvoice(db: Db, actor: Actor, id: string): Promise<InvoiceWithLines> {
  await inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, id);
    await finalizeLocked(work, invoice, new Date());
  });
  return getInvoice(db, id);
}

/**
 * `finalizeInvoice` inside the caller's transaction, on an invoice it locked (`lockInvoice`) or
 * inserted itself (`insertInvoice`): DRAFT → OPEN with the customer's credit applied
 * (`credit_applied`), then, when the gateway that will charge it cannot take what is left due, that
 * rounded down to the gateway's step (PRODUCT §11, `finalizationRounding`: a ROUNDING line, `rounding`
 * set and `total` lowered by it; a USD, EUR… invoice reads nothing for it), then the finalization
 * entry (`amount_due` = total − credit), or PAID when nothing is left due
 * (its `charge_at` cleared; paid whole by the credit, it logs `invoice.paid` with `paid_by:
 * customer_credit` besides `invoice.finalized`, so the outbound event fires). It is numbered from its customer's prefix (`invoice_prefix`, else `INV`)
 * at the end of `work` (`numberAtEnd`: the returned row's `number` is still null), and takes its
 * payment terms from itself, else its customer, else 0 (net N days:
 * `due_date` = now + N × 24 h, stored with the terms used). The due date says when payment is owed;
 * when the scheduler charges it is still `charge_at` (and dunning), unchanged.
 * @param openCustomer the unit of work's `openCustomerOnce` of the invoice's customer, when it has one
 * (a renewal's), so the customer is read once; default: one of its own
 * @returns the invoice as finalized (status, credit applied, amount due, dates)
 * @throws ConflictError `invoice_not_draft` from any other state, `customer_closed` for a closed customer
 */
export async function finalizeLocked<I extends InvoiceRow>(
  work: UnitOfWork,
  invoice: I,
  now: Date,
  openCustomer: OpenCustomer = openCustomerOnce(work.trx, invoice.customer_id),
): Promise<I> {
  const id = invoice.id;
  if (invoice.status !== 'DRAFT') {
    throw new ConflictError(
      'invoice_not_draft',
      `invoice ${id} is ${invoice.status}; only a DRAFT can be finalized`,
    );
  }
  const customer = await openCustomer();
  assertSameCustomer(customer, invoice.customer_id);
  let credit = 0n;
  let rounded: Pick<InvoiceRow, 'total' | 'rounding'> | undefined;
  if (invoice.total > 0n) {
    // The credit first: what is left due decides the rounding (PRODUCT §11), which the finalization
    // entry books. The credit is at most the total, and what is due at least the rounding, so the
    // credit applied never exceeds the lowered total.
    credit = await applyCustomerCredit(work, invoice);
    const rounding = await finalizationRounding(work.trx, invoice, invoice.total - credit);
    if (rounding) {
      rounded = { total: invoice.total - rounding.amount, rounding: rounding.amount };
      await insertRoundingLine(work, id, rounding);
    }
    await postEntry(work, invoiceFinalized(ledgerAmounts({ ...invoice, ...rounded })));
  }
  const total = rounded?.total ?? invoice.total;
  const due = total - credit;
  const status = due > 0n ? ('OPEN' as const) : ('PAID' as const);
  const terms = invoice.payment_terms_days ?? customer.payment_terms_days ?? 0;
  const changes = {
    ...rounded,
    status,
    credit_applied: credit,
    amount_due: due,
    payment_terms_days: terms,
    due_date: dueDate(now, terms),
    finalized_at: now,
    paid_at: status === 'PAID' ? now : null,
    ...(status === 'PAID' ? { charge_at: null } : {}),
    updated_at: now,
  };
  await work.trx.updateTable('invoices').set(changes).where('id', '=', id).execute();
  numberAtEnd(work, id, customer.invoice_prefix ?? DEFAULT_INVOICE_PREFIX);
  await invoiceActivity(work, invoice, 'invoice.finalized', {
    status,
    total,
    ...(rounded ? { rounding: rounded.rounding } : {}),
    ...(credit > 0n ? { credit_applied: credit } : {}),
  });
  // Paid whole by the customer's credit: PAID as by a payment, so the merchant hears of it (the
  // outbound `invoice.paid` event is built from this activity); no money moved (`amount` 0). An
  // invoice of 0 is PAID with nothing to pay: no event.
  if (status === 'PAID' && credit > 0n) {
    await invoiceActivity(work, invoice, 'invoice.paid', {
      currency: invoice.currency,
      amount: 0n,
      amount_paid: 0n,
      amount_due: 0n,
      paid_by: 'customer_credit',
      credit_applied: credit,
    });
  }
  // The row is locked and no trigger rewrites it: the finalized row is the locked one with the changes.
  return { ...invoice, ...changes };
}

/**
 * Rounds what the locked OPEN `invoice` still owes once a credit is taken off it (`due`, minor units:
 * its `amount_due` after the credit, > 0) down to the step of the gateway that will charge it, as
 * finalization rounds (PRODUCT §11's explicit rounding line, `finalizationRounding`): a change's
 * credit or a cancellation's share can leave an amount off that step, which the gateway would refuse
 * (`amount_not_representable`). Rounded down, so the customer gets all of the credit and the merchant
 * absorbs less than one step, like at finalization. Posts `inv_…:rounded:<rounding>`
 * (`invoiceRoundedAgain`: rounding debited, the receivable credited) and makes the invoice's ROUNDING
 * line say the new `rounding` (added when it had none); the caller writes the returned `rounding`
 * and `total` (lowered by what is rounded off, so total = subtotal + tax − rounding still holds) and
 * takes `amount` off `amount_due`. Stripe TND 12340 owed (12342 rounded by 2), a downgrade's credit
 * of 5729: 6611 → 1 rounded off, 6610 due, rounding 3, total 12339. Undefined when nothing is rounded
 * (on the step, a currency never rounded, no chargeable payment method).
 */
export async function roundOwedAgain(
  work: UnitOfWork,
  invoice: InvoiceRow,
  due: bigint,
): Promise<{ amount: bigint; rounding: bigint; total: bigint } | undefined> {
  const found = await finalizationRounding(work.trx, invoice, due);
  if (!found) return undefined;
  const rounding = invoice.rounding + found.amount;
  await postEntry(
    work,
    invoiceRoundedAgain({
      invoiceId: invoice.id,
      customerId: invoice.customer_id,
      currency: invoice.currency,
      amount: found.amount,
      rounding,
    }),
  );
  const updated = await work.trx
    .updateTable('invoice_lines')
    .set({ amount: -rounding })
    .where('invoice_id', '=', invoice.id)
    .where('type', '=', 'ROUNDING')
    .executeTakeFirst();
  if (updated.numUpdatedRows === 0n)
    await insertRoundingLine(work, invoice.id, { ...found, amount: rounding });
  return { amount: found.amount, rounding, total: invoice.total - found.amount };
}

/**
 * Adds finalization's ROUNDING line (billing/invoice-rounding.ts) after invoice `invoiceId`'s last
 * line: untaxed, quantity 1, its amount −`rounding.amount` (minor units), not in the subtotal.
 */
async function insertRoundingLine(work: UnitOfWork, invoiceId: string, rounding: Rounding): Promise<void> {
  const last = await work.trx
    .selectFrom('invoice_lines')
    .select((eb) => eb.fn.max('position').as('position'))
    .where('invoice_id', '=', invoiceId)
    .executeTakeFirst();
  await work.trx
    .insertInto('invoice_lines')
    .values({
      id: newId('il'),
      invoice_id: invoiceId,
      position: (last?.position ?? -1) + 1,
      type: 'ROUNDING',
      description: rounding.description,
      unit_amount: null,
      quantity: 1,
      amount: -rounding.amount,
      tax_rate_ppm: 0,
      tax_amount: 0n,
      taxes: '[]',
    })
    .execute();
}

/** `terms` days (net N) after `finalizedAt`: the due date of an invoice finalized then. */
function dueDate(finalizedAt: Date, terms: number): Date {
  return new Date(finalizedAt.getTime() + terms * DAY_MS);
}

/**
 * Records `amount` (minor units) paid against a locked invoice, inside the transaction that posts the
 * payment (called by payments and offline payments): amount_paid grows and the invoice is PAID (its
 * scheduled charge cleared) once nothing is due (PARTIALLY_REFUNDED when part of what it was paid
 * was refunded meanwhile); a VOID one (paid after its void: a charge that
 * failed, then succeeded) stays VOID with nothing due. On an UNCOLLECTIBLE invoice the payment
 * recovers bad debt: the write-off is reversed for what it pays (`inv_…:recovered:<amount_paid>`:
 * debit the receivable, credit bad debt), and the invoice becomes PAID once nothing is due. Logs
 * `invoice.paid` when it becomes paid up, else `invoice.payment_applied` (a part paid, a payment
 * after a void, or a payment of an invoice paid already: a duplicate payment, whose excess the caller
 * books as credit). When a
 * subscription's invoice becomes PAID, the subscription may become ACTIVE again
 * (`reinstateAfterPayment`, resuming as `policy` says: the configuration's
 * `BILL_SUSPENDED_SUBSCRIPTIONS`, as the renewal sweep reads it). Once it is paid up, the open
 * `amount_not_representable` exceptions of the attempts the collection sweep set it aside with
 * (payments/charges.ts `setAsideUnsendableCharge`) are resolved, their note naming `paidBy`.
 * @param paidBy what paid it, for that note: `charge txn_… (stripe)`, `offline payment op_… (BANK)`
 */
export async function applyPayment(
  work: UnitOfWork,
  invoice: InvoiceRow,
  amount: bigint,
  now: Date = new Date(),
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
  paidBy = 'a payment',
): Promise<void> {
  const paid = invoice.amount_paid + amount;
  const owed = invoice.total - invoice.credit_applied - invoice.proration_credited - paid;
  const collectible = invoice.status === 'OPEN' || invoice.status === 'UNCOLLECTIBLE';
  // A VOID invoice owes nothing, whatever arrives after its void (all of it the customer's credit).
  const due = collectible && owed > 0n ? owed : 0n;
  const settled = due === 0n && collectible;
  let recovered = 0n;
  if (invoice.status === 'UNCOLLECTIBLE') {
    recovered = amount < invoice.amount_due ? amount : invoice.amount_due;
    if (recovered > 0n) {
      await postEntry(
        work,
        badDebtRecovered({
          invoiceId: invoice.id,
          customerId: invoice.customer_id,
          currency: invoice.currency,
          amount: recovered,
          amountPaid: paid,
          writeOff: await writeOffsOf(work.trx, invoice.id),
        }),
      );
    }
  }
  await work.update('invoices', invoice, {
    amount_paid: paid,
    amount_due: due,
    // Settled after a refund of part of what it had been paid (one made in the gateway's dashboard
    // while it was OPEN or UNCOLLECTIBLE: `applyRefund`), it keeps the rest: PARTIALLY_REFUNDED, as
    // `paidStatus` says of a paid invoice with money given back and cash kept.
    ...(settled
      ? {
          status: invoice.amount_refunded > 0n ? ('PARTIALLY_REFUNDED' as const) : ('PAID' as const),
          paid_at: now,
          charge_at: null,
        }
      : {}),
    updated_at: now,
  });
  // `invoice.paid` (an outbound event: outbound/events.ts) once, when the invoice becomes PAID; a
  // payment of an invoice paid already (money moved twice) is applied, not paid again.
  await invoiceActivity(work, invoice, settled ? 'invoice.paid' : 'invoice.payment_applied', {
    currency: invoice.currency,
    amount,
    amount_paid: paid,
    amount_due: due,
    ...(invoice.status === 'UNCOLLECTIBLE' ? { bad_debt_recovered: recovered } : {}),
  });
  if (settled) {
    await resolveSetAsideCharges(
      work,
      invoice.id,
      `invoice ${invoice.id} was paid by ${paidBy} (${paid} ${invoice.currency} paid in all): nothing is left to charge`,
    );
  }
  if (settled && invoice.subscription_id) {
    await reinstateAfterPayment(work, invoice.subscription_id, invoice.id, now, policy);
  }
}

/**
 * How many times invoice `invoiceId` was written off (its `inv_…:uncollectible` entries,
 * ledger/movements.ts `badDebtWrittenOff`), 0 when never: more than once only when a payment that
 * recovered it all was voided (payments/voids.ts: the invoice OPEN again) and it was written off again.
 * Each write-off and its recoveries are booked under keys of their own (`entryKeys`), so the second
 * is booked as the first was. Read under the invoice's lock (`lockInvoice`).
 */
export async function writeOffsOf(trx: Kysely<Database>, invoiceId: string): Promise<number> {
  const row = await trx
    .selectFrom('journal_entries')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('source_type', '=', 'invoice')
    .where('source_id', '=', invoiceId)
    .where((eb) =>
      eb.or([
        eb('idempotency_key', '=', entryKeys.badDebtWrittenOff(invoiceId)),
        eb(
          sql<boolean>`starts_with(idempotency_key, ${entryKeys.badDebtWrittenOffAgainPrefix(invoiceId)})`,
          '=',
          true,
        ),
      ]),
    )
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The statuses of a paid invoice (`PAID_STATUSES`), as `paidStatus` derives them. */
export type PaidStatus = 'PAID' | 'PARTIALLY_REFUNDED' | 'REFUNDED';

/**
 * The one rule of a paid invoice's status (pure), from what went back of what it took in: PAID while
 * billhook gave nothing back of it (no refund, `amount_refunded` 0, no credit returned,
 * `credit_returned` 0: a dispute alone, open or lost, leaves a PAID invoice PAID, as Stripe keeps an
 * invoice `paid` after a lost dispute; its `amount_disputed` shows what disputes took); REFUNDED once
 * it keeps neither cash nor credit: its cash paid all back, refunded or taken by disputes
 * (`amount_paid` − `amount_refunded` − `disputed` ≤ 0), and the customer credit that paid it all back
 * too, given back (`credit_returned`) or held by the customer already as the part of its period's
 * change credit it carries (`carried`); else PARTIALLY_REFUNDED, so an invoice refunded in cash only
 * while credit it took is neither returned nor carried stays open to give that credit back (`POST
 * /v1/invoices/:id/credit/return`, billing/credit-returns.ts `returnCreditByHand`; a period
 * invoice's by its cancellation's refund).
 * @param carried the part of its period's change credit to the customer it carries, minor units ≥ 0
 * (billing/proration.ts `periodCreditToCustomer`; 0 for an invoice of no such period)
 * @param disputed what disputes took of its payments and hold or lost, minor units ≥ 0
 * (billing/invoice-payment.ts `disputedAway`: open, or lost and carried by no refund; a lost one a
 * refund carried is in `amount_refunded` already), so disputes count as given back here as wherever
 * billhook works out what an invoice kept: 750 by card charged back and 1250 of credit returned is
 * REFUNDED, as 750 refunded and 1250 returned is
 */
export function paidStatus(
  invoice: Pick<
    InvoiceRow,
    'amount_paid' | 'amount_refunded' | 'credit_applied' | 'credit_returned' | 'cash_credited'
  >,
  carried: bigint,
  disputed: bigint,
): PaidStatus {
  if (invoice.amount_refunded === 0n && invoice.credit_returned === 0n && invoice.cash_credited === 0n)
    return 'PAID';
  // Cash given to the customer's credit for want of a gateway step is given back as a refund is.
  const cashKept = invoice.amount_paid - invoice.amount_refunded - invoice.cash_credited - disputed;
  const creditKept = invoice.credit_applied - invoice.credit_returned;
  return cashKept <= 0n && creditKept <= carried ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
}

/**
 * The status of a paid invoice once money was given back (pure): `paidStatus` (`carried` and
 * `disputed` as it reads them), forward only: a REFUNDED invoice stays REFUNDED. Two ways lead back,
 * each worked by `paidStatus` again: a refund reversed after it succeeded (`reverseRefund`), and a
 * dispute that moved funds (billing/period-statuses.ts `statusesWorkedAgain`, for the invoice and
 * its period's invoices): one won, or lost for less than it held, after the invoice was made
 * REFUNDED while it was open gives the merchant that money again, so the invoice (or the one of its
 * period whose carried change credit moves back to it) keeps something again: REFUNDED →
 * PARTIALLY_REFUNDED.
 */
export function givenBackStatus(
  invoice: Pick<
    InvoiceRow,
    'status' | 'amount_paid' | 'amount_refunded' | 'credit_applied' | 'credit_returned' | 'cash_credited'
  >,
  carried: bigint,
  disputed: bigint,
): PaidStatus {
  if (invoice.status === 'REFUNDED') return 'REFUNDED';
  return paidStatus(invoice, carried, disputed);
}

/**
 * Records `amount` refunded on a locked, paid invoice: PARTIALLY_REFUNDED, or REFUNDED once it keeps
 * nothing (`givenBackStatus`: `carried`, the part of its period's change credit to the customer it
 * carries, minor units ≥ 0; what disputes took of its payments read here, `disputedAway`). An invoice
 * not paid (`PAID_STATUSES`) keeps its status: a refund made in the gateway's dashboard of a payment
 * of an OPEN or UNCOLLECTIBLE invoice paid in part (a partial capture) leaves it owing what it owed,
 * chargeable, and recoverable; a VOID one (paid after its void) stays VOID.
 * @throws ConflictError `refund_exceeds_paid` when the refunds would exceed what was paid
 */
export async function applyRefund(
  work: UnitOfWork,
  invoice: InvoiceRow,
  amount: bigint,
  carried: bigint,
): Promise<void> {
  const refunded = invoice.amount_refunded + amount;
  // Not counting `cash_credited`: a refund a gateway reported (its dashboard) moved money and is
  // booked; one billhook sends is bounded by it before it is sent (payments/refunds.ts `createRefund`).
  if (refunded > invoice.amount_paid) {
    throw new ConflictError('refund_exceeds_paid', `refunds on ${invoice.id} would exceed the paid amount`);
  }
  const disputed = await disputedAway(work.trx, invoice.id);
  await work.trx
    .updateTable('invoices')
    .set({
      amount_refunded: refunded,
      status: PAID_STATUSES.includes(invoice.status)
        ? givenBackStatus({ ...invoice, amount_refunded: refunded }, carried, disputed)
        : invoice.status,
      updated_at: new Date(),
    })
    .where('id', '=', invoice.id)
    .execute();
  await invoiceActivity(work, invoice, 'invoice.refunded', { amount, amount_refunded: refunded });
}

/**
 * Reverses a refund that failed after it had succeeded: the refunded amount shrinks again and the
 * status is worked again (`paidStatus`, `carried` as `applyRefund` takes it, what disputes took read
 * here): PAID when nothing is given back any more, cash or credit, else PARTIALLY_REFUNDED, or
 * REFUNDED when what is left given back (refunds, credit, disputes) still covers all it took in. An
 * invoice not paid (OPEN, UNCOLLECTIBLE, VOID) keeps its status, as `applyRefund` left it.
 */
export async function reverseRefund(
  work: UnitOfWork,
  invoice: InvoiceRow,
  amount: bigint,
  carried: bigint,
): Promise<void> {
  const refunded = invoice.amount_refunded - amount;
  const disputed = await disputedAway(work.trx, invoice.id);
  await work.trx
    .updateTable('invoices')
    .set({
      amount_refunded: refunded,
      status: PAID_STATUSES.includes(invoice.status)
        ? paidStatus({ ...invoice, amount_refunded: refunded }, carried, disputed)
        : invoice.status,
      updated_at: new Date(),
    })
    .where('id', '=', invoice.id)
    .execute();
  await invoiceActivity(work, invoice, 'invoice.refund_reversed', { amount, amount_refunded: refunded });
}

/**
 * Takes back a payment of `amount` (minor units) from a locked invoice because the gateway voided it
 * before it settled (the money never moved), or an offline payment was reversed (a bounced cheque:
 * payments/offline-reversals.ts): `amount_paid` shrinks, what is due grows again, and a
 * PAID invoice is OPEN again, unscheduled here (a void's invoice is charged again by hand; an offline
 * reversal puts a subscription's invoice back on the charge schedule itself: payments/
 * offline-reversals.ts). The subscription it may have reinstated is left as it is. Records `invoice.payment_reversed` (the outbound event of that name:
 * outbound/events.ts) with the amount, `currency`, the invoice's `status`, `amount_paid` and
 * `amount_due` after it, and `payment` (which payment: `txn_…` or `op_…`) and `data` beside them.
 * @throws ConflictError `invoice_not_reversible` when the invoice is neither OPEN nor PAID (refunded,
 *   void, uncollectible) or the payment is more than it shows paid
 */
export async function reversePayment(
  work: UnitOfWork,
  invoice: InvoiceRow,
  amount: bigint,
  payment: string,
  now: Date = new Date(),
  data: Record<string, unknown> = {},
): Promise<void> {
  if ((invoice.status !== 'OPEN' && invoice.status !== 'PAID') || amount > invoice.amount_paid) {
    throw new ConflictError(
      'invoice_not_reversible',
      `invoice ${invoice.id} is ${invoice.status} with ${invoice.amount_paid} paid: a payment of ${amount} cannot be taken back`,
    );
  }
  const paid = invoice.amount_paid - amount;
  const owed = invoice.total - invoice.credit_applied - invoice.proration_credited - paid;
  const due = owed > 0n ? owed : 0n;
  await work.trx
    .updateTable('invoices')
    .set({
      amount_paid: paid,
      amount_due: due,
      ...(due > 0n ? { status: 'OPEN' as const, paid_at: null } : {}),
      updated_at: now,
    })
    .where('id', '=', invoice.id)
    .execute();
  await invoiceActivity(work, invoice, 'invoice.payment_reversed', {
    payment,
    currency: invoice.currency,
    amount,
    status: due > 0n ? 'OPEN' : invoice.status,
    amount_paid: paid,
    amount_due: due,
    ...data,
  });
}

/**
 * OPEN (nothing paid, no charge in flight) or DRAFT → VOID (`voidLocked`), in its own unit of work.
 * A VOID invoice owes nothing: a subscription PAST_DUE (or SUSPENDED by dunning) only because of
 * it becomes ACTIVE in the same unit (`reinstateAfterVoid`, resuming as `policy` says).
 * @throws NotFoundError `invoice_not_found`; ConflictError `invoice_not_voidable` as `voidLocked`
 */
export async function voidInvoice(
  db: Db,
  actor: Actor,
  id: string,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<InvoiceWithLines> {
  await inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, id);
    const now = new Date();
    await voidLocked(work, invoice, now);
    if (invoice.subscription_id) await reinstateAfterVoid(work, invoice.subscription_id, [id], now, policy);
  });
  return getInvoice(db, id);
}

/**
 * Voids a locked invoice inside `work`: OPEN (nothing paid, no charge in flight) or DRAFT → VOID,
 * nothing due and off the charge schedule (`charge_at` null: neither the scheduler nor dunning charges
 * it again). An OPEN invoice's finalization entry is reversed (`inv_…:voided`: debit revenue, credit
 * the receivable) and the credit applied to it goes back to the customer (`returnAppliedCredit`); what
 * prorated changes credited to it while owed (`proration_credited`) goes back to revenue and tax
 * payable, not to the customer (`undoProrationCredit`): that time was never paid.
 * Records `invoice.voided` with `data` beside `from` (why, when another flow voids it). The open
 * `amount_not_representable` exceptions of the attempts the collection sweep set it aside with
 * (payments/charges.ts `setAsideUnsendableCharge`) are resolved: nothing is left to charge.
 * @throws ConflictError `invoice_not_voidable` once money was paid or a charge is in flight
 */
export async function voidLocked(
  work: UnitOfWork,
  invoice: InvoiceRow,
  now: Date,
  data: Record<string, unknown> = {},
): Promise<void> {
  const id = invoice.id;
  const [inFlight] = await chargesInFlight(work.trx, id);
  if ((invoice.status !== 'OPEN' && invoice.status !== 'DRAFT') || invoice.amount_paid > 0n || inFlight) {
    throw new ConflictError(
      'invoice_not_voidable',
      `invoice ${id} is ${invoice.status}${inFlight ? ` with charge ${inFlight.id} in flight` : ''}; only an unpaid DRAFT or OPEN invoice can be voided`,
    );
  }
  if (invoice.status === 'OPEN' && invoice.total > 0n) {
    await postEntry(work, invoiceVoided(ledgerAmounts(invoice)));
    await returnAppliedCredit(work, invoice);
    await undoProrationCredit(work, invoice);
  }
  await work.trx
    .updateTable('invoices')
    .set({ status: 'VOID', amount_due: 0n, charge_at: null, voided_at: now, updated_at: now })
    .where('id', '=', id)
    .execute();
  await invoiceActivity(work, invoice, 'invoice.voided', { from: invoice.status, ...data });
  const why = typeof data.reason === 'string' ? ` (${data.reason})` : '';
  await resolveSetAsideCharges(work, id, `invoice ${id} was voided${why}: nothing is left to charge`);
}

/** A payment received outside any gateway. Amount in minor units of the invoice's currency. */
export interface OfflinePayment {
  method: 'BANK' | 'CHECK' | 'CASH' | 'OTHER';
  amount: bigint;
  reference?: string;
}

/**
 * Refuses an offline partial payment of `amount` (minor units) on locked `invoice` that would leave
 * due an amount the gateway that will charge the rest cannot take (PRODUCT §11: refused before
 * anything is created, never rounded silently): Stripe TND (step 10), 12340 due, 5005 paid would
 * leave 7335, which the charge would refuse (`amount_not_representable`). Refused rather than
 * rounded again (`roundOwedAgain`), so a later reversal of the payment has no rounding to undo.
 * Paying everything due always fits. Nothing is read for a currency never rounded.
 * @throws ValidationError (`amount`) naming the rule, what would be left and the nearest amounts
 * that fit (5000 or 5010 above; only the higher when the lower would be nothing)
 */
async function refuseOffStepRest(work: UnitOfWork, invoice: InvoiceRow, amount: bigint): Promise<void> {
  const rest = invoice.amount_due - amount;
  const off = await dueOffStep(work.trx, invoice, rest);
  if (!off) return;
  const lower = amount - (off.step - off.remainder);
  const higher = amount + off.remainder;
  const fits = lower > 0n ? `${lower} or ${higher}` : `${higher}`;
  throw new ValidationError('payment leaves an amount the gateway cannot charge', {
    amount: `${amount} would leave ${rest} due (${invoice.currency} minor units), which cannot be charged: ${off.rule}. Pay ${fits}, or all ${invoice.amount_due} due`,
  });
}

/**
 * Records an offline payment on an OPEN or UNCOLLECTIBLE invoice (partial payments allowed, never more
 * than is due, never leaving due an amount off the charging gateway's step: `refuseOffStepRest`):
 * posts `op_…` (debit offline receipts, credit the receivable) and pays the invoice down
 * (`applyPayment`, which may reinstate its subscription under `policy`). Refused while a gateway
 * charge of the invoice is in flight (`chargesInFlight`), as a void and a new charge are: that charge
 * was asked for everything due before this payment, and its success would take it all again, the
 * excess silently the customer's credit (10000 due, a charge of 10000 in flight, 4000 by bank: 14000
 * paid). Recorded once the charge has settled: failed, on what is due; succeeded, nothing is due.
 * @throws ConflictError `invoice_not_open`, `charge_in_progress` (naming the charge); ValidationError
 * (`amount`) when the amount exceeds what is due or leaves what is due off the gateway's step
 */
export async function recordOfflinePayment(
  db: Db,
  actor: Actor,
  id: string,
  payment: OfflinePayment,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<InvoiceWithLines> {
  await inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, id);
    if (invoice.status !== 'OPEN' && invoice.status !== 'UNCOLLECTIBLE') {
      throw new ConflictError(
        'invoice_not_open',
        `invoice ${id} is ${invoice.status}; payments are recorded on OPEN or UNCOLLECTIBLE invoices`,
      );
    }
    const [inFlight] = await chargesInFlight(work.trx, id);
    if (inFlight) {
      throw new ConflictError(
        'charge_in_progress',
        `invoice ${id} has charge ${inFlight.id} in flight (${inFlight.status}) for what is due: record the payment once it has settled (a success leaves nothing due). Nothing changed`,
      );
    }
    if (payment.amount > invoice.amount_due) {
      throw new ValidationError('payment exceeds the amount due', {
        amount: `at most ${invoice.amount_due} is due (${invoice.currency} minor units)`,
      });
    }
    await refuseOffStepRest(work, invoice, payment.amount);
    const row = await work.trx
      .insertInto('offline_payments')
      .values({
        id: newId('op'),
        invoice_id: id,
        method: payment.method,
        amount: payment.amount,
        currency: invoice.currency,
        reference: payment.reference ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await postEntry(
      work,
      offlinePaymentReceived({
        offlinePaymentId: row.id,
        method: payment.method,
        invoiceId: id,
        customerId: invoice.customer_id,
        currency: invoice.currency,
        amount: payment.amount,
      }),
    );
    await invoiceActivity(work, invoice, 'invoice.offline_payment_recorded', {
      offline_payment: row.id,
      method: payment.method,
      amount: payment.amount,
    });
    await applyPayment(
      work,
      invoice,
      payment.amount,
      new Date(),
      policy,
      `offline payment ${row.id} (${payment.method})`,
    );
  });
  return getInvoice(db, id);
}

/**
 * Locks (`FOR UPDATE`) offline payment `paymentId` recorded on invoice `invoiceId` inside `work`, the
 * invoice locked first (`lockInvoice`, the lock order), and reads it as it is now: for a reversal
 * (payments/offline-reversals.ts), so two reversals of one payment serialise and the second sees the
 * first's `reversed_at`.
 * @throws NotFoundError `offline_payment_not_found` when the invoice has no such offline payment (one
 * of another invoice too)
 */
export async function lockOfflinePayment(
  work: UnitOfWork,
  invoiceId: string,
  paymentId: string,
): Promise<OfflinePaymentRow> {
  const row = await work.trx
    .selectFrom('offline_payments')
    .selectAll()
    .where('id', '=', paymentId)
    .where('invoice_id', '=', invoiceId)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new NotFoundError('offline_payment', paymentId);
  return row;
}

/**
 * Marks locked offline payment `payment` reversed at `now` for `reason` (billing/ owns the table;
 * payments/offline-reversals.ts books the reversal): `reversed_at` and `reversal_reason` set, so the
 * `transaction_list` view shows it `canceled`, failure code `reversed`. Moves no money itself.
 */
export async function markOfflinePaymentReversed(
  work: UnitOfWork,
  payment: OfflinePaymentRow,
  reason: string,
  now: Date,
): Promise<OfflinePaymentRow> {
  await work.trx
    .updateTable('offline_payments')
    .set({ reversed_at: now, reversal_reason: reason })
    .where('id', '=', payment.id)
    .execute();
  return { ...payment, reversed_at: now, reversal_reason: reason };
}

/**
 * For a query over `invoices as i`: whether one of invoice `i`'s lines charges an add-on
 * (`add_on_id` set), as an add-on's proration invoice's do (add-on-proration.ts).
 */
export function hasAddOnLine(eb: ExpressionBuilder<Database & { i: Database['invoices'] }, 'i'>) {
  return eb.exists(
    eb
      .selectFrom('invoice_lines as l')
      .select('l.id')
      .whereRef('l.invoice_id', '=', 'i.id')
      .where('l.add_on_id', 'is not', null),
  );
}
