import type { Kysely } from 'kysely';
import type { Database, Gateway, InvoiceRow } from '../db/schema.ts';
import { COARSE_STEP_CURRENCIES, gatewayStep } from '../gateways/currencies.ts';
import { findPaymentMethod } from './customers.ts';

/**
 * PRODUCT §11: "An amount a gateway cannot represent exactly is never rounded silently at the
 * boundary: either the charge or refund is refused before any call with a 422 naming the gateway and
 * the rule (nothing created), or the invoice is rounded when it is finalized with an explicit
 * rounding line in the books. Never both, never a silent difference."
 *
 * This module is the second option. At finalization (invoices.ts `finalizeLocked`), when the gateway
 * that will charge the invoice is known (`chargingGateway`: its subscription's payment method, else
 * the customer's default, as collection charges it) and what is due after the customer's credit is
 * not a multiple of that gateway's step for the currency (gateways/currencies.ts `gatewayStep`:
 * PayPal HUF and TWD step 100, Stripe BHD, JOD, KWD, OMR, TND step 10, Stripe MGA step 100), the
 * invoice is lowered by the remainder: rounded down, so the customer never pays more than invoiced and
 * the merchant absorbs less than one step. The remainder is the invoice's `rounding` and a line of
 * type ROUNDING (untaxed, after tax, its amount −rounding, not in the subtotal), booked to the
 * `rounding` account of its currency (ledger/movements.ts `invoiceFinalized`).
 * No payment method, a detached one, a gateway that does not take the currency, or an amount the
 * gateway takes: no rounding. A credit taken off the invoice while it is OPEN (a change's credit, a
 * `prorate` cancellation's share of an add-on invoice) that leaves what is due off the step rounds it
 * again the same way (invoices.ts `roundOwedAgain`, called by proration.ts `creditInvoice`). A later charge through a gateway with a coarser step is still refused
 * (payments/charges.ts `recordUnsendableCharge`). Refunds that work out to amounts a gateway cannot
 * take are refused as before, and so is an offline partial payment that would leave due an amount off
 * the step (`dueOffStep`, invoices.ts `recordOfflinePayment`: 422 on `amount`), never rounded again.
 */

/** What finalization takes off an invoice: `amount` (minor units, > 0) and the line's `description`. */
export interface Rounding {
  amount: bigint;
  description: string;
}

/**
 * The rounding of `due` (minor units ≥ 0 of `currency`) for `gateway` (pure): its remainder modulo
 * the gateway's step, rounded down; undefined when there is none (a multiple of the step, a step of
 * one minor unit, or a currency the gateway does not take). The description names the gateway and
 * its rule: "Rounding: PayPal takes no decimals in HUF". 42857 HUF minor units through PayPal (step
 * 100) → 57; 1234 KWD fils through Stripe (step 10) → 4.
 */
function roundingFor(gateway: Gateway, currency: string, due: bigint): Rounding | undefined {
  const off = offStep(gateway, currency, due);
  return off && { amount: off.remainder, description: `Rounding: ${off.rule}` };
}

/**
 * What is off `gateway`'s step in `due` (minor units ≥ 0 of `currency`), pure: the `remainder`
 * (due modulo the step, > 0), the `step` and its `rule` in words naming the gateway; undefined when
 * `due` is on the step (or the step is one minor unit, or the gateway does not take the currency).
 */
function offStep(gateway: Gateway, currency: string, due: bigint): OffStep | undefined {
  const found = gatewayStep(gateway, currency);
  if (!found || found.step <= 1n) return undefined;
  const remainder = due % found.step;
  if (remainder <= 0n) return undefined;
  const rule = found.rule ?? `${found.gatewayName} takes ${currency} in steps of ${found.step} minor units`;
  return { remainder, step: found.step, rule };
}

/** An amount off a gateway's step: its `remainder` modulo `step` (minor units, > 0) and the `rule` in words. */
export interface OffStep {
  remainder: bigint;
  step: bigint;
  rule: string;
}

/**
 * The gateway that will charge an invoice of customer `customerId`: payment method `methodId` (a
 * subscription's) when given, else the customer's default, as collection picks them
 * (payments/collection.ts); undefined when there is none or it is detached (a charge would be
 * refused). Read in `db` (the finalizing transaction).
 */
async function chargingGateway(
  db: Kysely<Database>,
  customerId: string,
  methodId: string | null,
): Promise<Gateway | undefined> {
  const method = await findPaymentMethod(db, customerId, methodId);
  return method && method.detached_at === null ? method.gateway : undefined;
}

/**
 * The rounding of `due` (minor units) of `currency` for customer `customerId` charged through
 * payment method `methodId` (a subscription's; null: the customer's default): none, without a read,
 * for a currency no gateway takes in steps of more than one minor unit (`COARSE_STEP_CURRENCIES`:
 * USD, EUR… keep the renewal path free of a query), nor for nothing due; else `roundingFor` the
 * gateway that will charge it (`chargingGateway`).
 */
export async function roundingOf(
  db: Kysely<Database>,
  customerId: string,
  methodId: string | null,
  currency: string,
  due: bigint,
): Promise<Rounding | undefined> {
  if (due <= 0n || !COARSE_STEP_CURRENCIES.has(currency.toUpperCase())) return undefined;
  const gateway = await chargingGateway(db, customerId, methodId);
  return gateway ? roundingFor(gateway, currency, due) : undefined;
}

/**
 * The gateway that will charge `invoice` (`chargingGateway`: its subscription's payment method, else
 * the customer's default), undefined when there is none; read only for a currency some gateway takes
 * in steps of more than one minor unit (`COARSE_STEP_CURRENCIES`), else undefined without a read.
 */
async function invoiceChargingGateway(
  db: Kysely<Database>,
  invoice: Pick<InvoiceRow, 'customer_id' | 'subscription_id' | 'currency'>,
): Promise<Gateway | undefined> {
  if (!COARSE_STEP_CURRENCIES.has(invoice.currency.toUpperCase())) return undefined;
  const subscription = invoice.subscription_id
    ? await db
        .selectFrom('subscriptions')
        .select('payment_method_id')
        .where('id', '=', invoice.subscription_id)
        .executeTakeFirst()
    : undefined;
  return chargingGateway(db, invoice.customer_id, subscription?.payment_method_id ?? null);
}

/**
 * The rounding finalization applies to `invoice` with `due` (minor units) left due after the
 * customer's credit (`roundingFor` the gateway that will charge it, `invoiceChargingGateway`: through
 * its subscription's payment method, else the customer's default; nothing is read for nothing due or
 * for a currency that is never rounded).
 */
export async function finalizationRounding(
  db: Kysely<Database>,
  invoice: Pick<InvoiceRow, 'customer_id' | 'subscription_id' | 'currency'>,
  due: bigint,
): Promise<Rounding | undefined> {
  if (due <= 0n) return undefined;
  const gateway = await invoiceChargingGateway(db, invoice);
  return gateway ? roundingFor(gateway, invoice.currency, due) : undefined;
}

/**
 * Whether `due` (minor units), left due on `invoice`, is off the step of the gateway that will charge
 * it (`invoiceChargingGateway`: its subscription's payment method, else the customer's default): the
 * remainder, step and rule (`OffStep`), or undefined when that gateway can charge `due` (on its step,
 * nothing due, no chargeable payment method, a currency never rounded: nothing read). Used to refuse
 * an offline partial payment that would leave such an amount (invoices.ts `recordOfflinePayment`).
 */
export async function dueOffStep(
  db: Kysely<Database>,
  invoice: Pick<InvoiceRow, 'customer_id' | 'subscription_id' | 'currency'>,
  due: bigint,
): Promise<OffStep | undefined> {
  if (due <= 0n) return undefined;
  const gateway = await invoiceChargingGateway(db, invoice);
  return gateway ? offStep(gateway, invoice.currency, due) : undefined;
}
