import { askAccountCurrencies, clientForAccount, type GatewayClients } from '../accounts/clients.ts';
import { unscheduleCharge } from '../billing/charge-schedule.ts';
import { assertCustomerOpen } from '../billing/customer-status.ts';
import { gatewayPaymentMethod, getPaymentMethod, paymentMethodFor } from '../billing/customers.ts';
import { chargesInFlight } from '../billing/invoice-payment.ts';
import { getInvoice, type InvoiceWithLines, lockInvoice } from '../billing/invoices.ts';
import { recordCardDetails } from '../billing/payment-methods.ts';
import { DEFAULT_RENEWAL_POLICY, type RenewalPolicy } from '../billing/renewal.ts';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { InvoiceRow, TransactionRow } from '../db/schema.ts';
import { AppError, ConflictError } from '../errors.ts';
import { raiseException } from '../exceptions/exceptions.ts';
import { assertAccountCurrency, assertGatewayCanTake } from '../gateways/currencies.ts';
import type { ChargeOutcome, ChargeRequest, GatewayName } from '../gateways/types.ts';
import { type Actor, inUnitOfWork, type UnitOfWork } from '../ledger/unit-of-work.ts';
import {
  type ChargeResult,
  type OnOverpaid,
  recordChargeResult,
  transactionActivity,
} from './transactions.ts';

/** The result of charging an invoice: the invoice as it is now and the attempt's transaction. */
export interface ChargeInvoiceResult {
  invoice: InvoiceWithLines;
  transaction: TransactionRow;
}

/** How an attempt was asked for. */
export interface ChargeOptions {
  /** The scheduler charges (scheduled payment, renewal, dunning retry): a failure enters dunning. */
  automatic?: boolean;
  /**
   * The `charge_at` the scheduler's claim wrote (its lease): the charge goes ahead only if the
   * invoice still has it, so a claim overtaken by a reschedule, a dunning step or another sweep's
   * claim never charges.
   */
  claimedChargeAt?: Date;
  /**
   * The configuration's renewal policy (`BILL_SUSPENDED_SUBSCRIPTIONS`), under which a success that
   * reinstates the invoice's subscription resumes it (billing/reinstate.ts); default: not billed.
   */
  policy?: RenewalPolicy;
}

/**
 * The gateway request of a payment attempt: our id as reference and idempotency key, its amount and
 * currency, its stored payment method, and its merchant-initiated kind: `recurring` for an attempt
 * the scheduler made (renewal, scheduled charge, dunning retry) or one on a subscription's invoice,
 * `unscheduled` otherwise (an operator charging a one-off invoice). The poller repeats it as-is where
 * the repeat is the check, so a repeat carries the same indicator.
 */
export async function chargeRequestOf(db: Db, attempt: TransactionRow): Promise<ChargeRequest> {
  const method = await getPaymentMethod(db, attempt.payment_method_id ?? '');
  const invoice = attempt.invoice_id
    ? await db
        .selectFrom('invoices')
        .select('subscription_id')
        .where('id', '=', attempt.invoice_id)
        .executeTakeFirst()
    : undefined;
  return {
    reference: attempt.id,
    amount: attempt.amount,
    currency: attempt.currency,
    paymentMethod: gatewayPaymentMethod(method),
    description: attempt.invoice_id ? `invoice ${attempt.invoice_id}` : undefined,
    invoiceId: attempt.invoice_id ?? undefined,
    initiation: attempt.automatic || invoice?.subscription_id ? 'recurring' : 'unscheduled',
  };
}

/** Maps an adapter's outcome to the transaction state it leaves. */
export function chargeResultOf(outcome: ChargeOutcome): ChargeResult {
  switch (outcome.status) {
    case 'succeeded':
      return {
        status: 'succeeded',
        gatewayTransactionId: outcome.gatewayTransactionId,
        ...(outcome.amount === undefined ? {} : { amountCaptured: outcome.amount }),
      };
    case 'pending':
      return { status: outcome.status, gatewayTransactionId: outcome.gatewayTransactionId };
    case 'declined':
      return {
        status: 'failed',
        gatewayTransactionId: outcome.gatewayTransactionId,
        failureCode: outcome.code,
        failureMessage: outcome.message,
      };
    case 'unknown':
      return { status: 'unknown', failureCode: 'unknown_outcome', failureMessage: outcome.message };
  }
}

/**
 * Commits a `pending` payment attempt for everything due on an OPEN or UNCOLLECTIBLE invoice, before
 * any gateway call (PRODUCT §11: an UNCOLLECTIBLE invoice can still be charged; its success reverses
 * the write-off, `applyPayment`). The invoice row is locked and re-read, so a paid or voided invoice is
 * never charged, and the unique index `transactions_one_in_flight` keeps a second attempt out while
 * one is pending or unknown.
 * The attempt records the payment method's gateway account (`gateway_account`), whose client charges it.
 * @throws ConflictError `customer_closed` (billing/customer-status.ts), `invoice_not_open`,
 * `charge_in_progress`, `gateway_not_configured`,
 * `gateway_account_disabled`, `charge_not_claimed` (see `ChargeOptions.claimedChargeAt`)
 * @throws AmountNotRepresentable (422 `amount_not_representable`) when the payment method's gateway
 * cannot take the amount due in the invoice's currency exactly, or its account says it does not
 * process that currency (field `currency`: Authorize.Net getMerchantDetails; not when the account
 * cannot be asked) (gateways/currencies.ts)
 * @throws NotFoundError for a missing invoice or payment method
 */
export async function startCharge(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  invoiceId: string,
  paymentMethodId?: string,
  options: ChargeOptions = {},
): Promise<TransactionRow> {
  // The account's currencies may need an HTTP call (Authorize.Net getMerchantDetails, up to
  // GATEWAY_TIMEOUT_MS): asked before the invoice is locked, so no row lock is held across it.
  const asked = await currenciesBeforeLock(db, gateways, invoiceId, paymentMethodId);
  return inUnitOfWork(db, { actor }, async (work) => {
    const invoice = await lockInvoice(work, invoiceId);
    await assertCustomerOpen(work.trx, invoice.customer_id);
    if ((invoice.status !== 'OPEN' && invoice.status !== 'UNCOLLECTIBLE') || invoice.amount_due <= 0n) {
      throw new ConflictError(
        'invoice_not_open',
        `invoice ${invoiceId} is ${invoice.status}; only an OPEN or UNCOLLECTIBLE invoice with an amount due can be charged`,
      );
    }
    if (options.claimedChargeAt && invoice.charge_at?.getTime() !== options.claimedChargeAt.getTime()) {
      throw new ConflictError(
        'charge_not_claimed',
        `invoice ${invoiceId} was rescheduled or claimed again since this charge was scheduled`,
      );
    }
    const method = await paymentMethodFor(work.trx, invoice.customer_id, paymentMethodId);
    // The payment method's account must take charges: a disabled one is refused before anything exists.
    await clientForAccount(gateways, method.gateway, method.gateway_account);
    // Refused before anything is created: an amount the gateway would misread or refuse never starts,
    // nor one in a currency the account said, before the lock, it does not process (unknown, or
    // another account than the one asked — the default method changed meanwhile: sent as before).
    assertGatewayCanTake(method.gateway, invoice.amount_due, invoice.currency);
    const currencies =
      asked?.gateway === method.gateway && asked.account === method.gateway_account
        ? asked.currencies
        : undefined;
    assertAccountCurrency(currencies, method.gateway, method.gateway_account, invoice.currency);
    const [inFlight] = await chargesInFlight(work.trx, invoiceId);
    if (inFlight) {
      throw new ConflictError(
        'charge_in_progress',
        `invoice ${invoiceId} already has attempt ${inFlight.id} (${inFlight.status})`,
      );
    }
    const transaction = await work.trx
      .insertInto('transactions')
      .values({
        id: newId('txn'),
        invoice_id: invoiceId,
        customer_id: invoice.customer_id,
        payment_method_id: method.id,
        gateway: method.gateway,
        gateway_account: method.gateway_account,
        amount: invoice.amount_due,
        currency: invoice.currency,
        status: 'pending',
        automatic: options.automatic ?? false,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await transactionActivity(work, transaction, 'transaction.created');
    return transaction;
  });
}

/**
 * The currencies the gateway account of the payment method that would charge `invoiceId` says it
 * processes (`askAccountCurrencies`), read without any lock before `startCharge`'s unit of work, which
 * re-reads the invoice and the method under lock and checks against this answer only for the same
 * account. Refusals here (no invoice or method, a disabled account) are left to that unit of work,
 * which makes them again in its order: undefined.
 * @returns the account asked and its currencies (undefined when unknown), or undefined when no
 * account could be asked (or the invoice cannot be charged anyway)
 */
async function currenciesBeforeLock(
  db: Db,
  gateways: GatewayClients,
  invoiceId: string,
  paymentMethodId: string | undefined,
): Promise<{ gateway: GatewayName; account: string | null; currencies?: readonly string[] } | undefined> {
  try {
    const invoice = await db
      .selectFrom('invoices')
      .select(['customer_id', 'status', 'amount_due'])
      .where('id', '=', invoiceId)
      .executeTakeFirst();
    if (!invoice || !['OPEN', 'UNCOLLECTIBLE'].includes(invoice.status) || invoice.amount_due <= 0n)
      return undefined;
    const method = await paymentMethodFor(db, invoice.customer_id, paymentMethodId);
    const currencies = await askAccountCurrencies(gateways, method.gateway, method.gateway_account);
    return { gateway: method.gateway, account: method.gateway_account, currencies };
  } catch (error) {
    if (error instanceof AppError) return undefined;
    throw error;
  }
}

/**
 * Records, inside `work`, a scheduled charge that was never sent because the gateway of the invoice's
 * payment method cannot take its amount exactly, or its account does not process the invoice's
 * currency (`AmountNotRepresentable`): a `failed` automatic attempt with code
 * `amount_not_representable` and no gateway id, then set aside as `setAsideUnsendableCharge` says
 * (not counted by dunning, off the schedule, one exception for a person).
 * @param invoice the locked OPEN invoice; `message` the refusal naming the gateway and the rule
 * @returns the failed attempt
 */
export async function recordUnsendableCharge(
  work: UnitOfWork,
  invoice: InvoiceRow,
  paymentMethodId: string | undefined,
  message: string,
  now: Date,
): Promise<TransactionRow> {
  const method = await paymentMethodFor(work.trx, invoice.customer_id, paymentMethodId);
  const transaction = await work.trx
    .insertInto('transactions')
    .values({
      id: newId('txn'),
      invoice_id: invoice.id,
      customer_id: invoice.customer_id,
      payment_method_id: method.id,
      gateway: method.gateway,
      gateway_account: method.gateway_account,
      amount: invoice.amount_due,
      currency: invoice.currency,
      status: 'failed',
      failure_code: 'amount_not_representable',
      failure_message: message,
      automatic: true,
      dunning_counted_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await transactionActivity(work, transaction, 'transaction.failed');
  await setAsideUnsendableCharge(work, invoice, transaction, message, now);
  return transaction;
}

/**
 * Sets aside, inside `work`, locked OPEN `invoice` whose failed automatic attempt `attempt` can never
 * succeed as asked — billhook could not send it (`recordUnsendableCharge`), or the gateway refused the
 * charge itself with one of its `refusalsNotRetried` codes (Stripe `amount_too_small` for USD 0.30,
 * `amount_too_large`: `countFailedAttempt` in payments/dunning.ts). Retrying cannot help (the amount
 * does not change), and the customer did nothing wrong, so the attempt is not counted by dunning (its
 * `dunning_counted_at` is set by the caller: no retry schedule, no PAST_DUE) and the invoice is taken
 * off the schedule (`charge_at` null), still OPEN and owed, with an open `amount_not_representable`
 * reconciliation exception about the attempt for a person (once per attempt), until someone voids
 * and reissues it, changes the payment method, or records the payment another way, and charges or
 * schedules it again.
 * @param reason why it was not charged, naming the gateway and the rule or the gateway's code
 */
export async function setAsideUnsendableCharge(
  work: UnitOfWork,
  invoice: InvoiceRow,
  attempt: TransactionRow,
  reason: string,
  now: Date,
): Promise<void> {
  await unscheduleCharge(work, invoice.id, now);
  await raiseException(work, {
    kind: 'amount_not_representable',
    gateway: attempt.gateway,
    gatewayAccount: attempt.gateway_account,
    transactionId: attempt.id,
    message:
      `invoice ${invoice.id} was not charged: ${reason}. Void and reissue it in an amount the gateway can ` +
      'take, change its payment method, or record the payment another way; then charge or schedule it again',
    details: {
      invoice: invoice.id,
      amount: invoice.amount_due,
      currency: invoice.currency,
      code: attempt.failure_code,
    },
  });
}

/**
 * Sends a committed attempt to its gateway account (the attempt's `gateway_account`) with the attempt id as idempotency key and reference, then
 * records the outcome. A timeout or 5xx leaves the attempt `unknown`: it is never retried blindly.
 * The card details a succeeded charge's answer reports are stored on its payment method
 * (billing/payment-methods.ts `recordCardDetails`). A success that reinstates the invoice's
 * subscription resumes it under `policy` (`recordChargeResult`).
 */
export async function executeCharge(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  attempt: TransactionRow,
  onOverpaid: OnOverpaid,
  policy: RenewalPolicy = DEFAULT_RENEWAL_POLICY,
): Promise<TransactionRow> {
  const client = await clientForAccount(gateways, attempt.gateway, attempt.gateway_account);
  const outcome = await client.charge(await chargeRequestOf(db, attempt));
  const recorded = await inUnitOfWork(db, { actor }, async (work) => {
    if (outcome.status === 'succeeded' && outcome.card && attempt.payment_method_id)
      await recordCardDetails(work, attempt.payment_method_id, outcome.card);
    return recordChargeResult(work, attempt, chargeResultOf(outcome), onOverpaid, policy);
  });
  return recorded.transaction;
}

/**
 * Charges an OPEN or UNCOLLECTIBLE invoice now with the given (or the customer's default) payment
 * method.
 * @param onOverpaid told when the charge succeeded after the invoice was paid some other way
 * @param options.automatic the scheduler's attempt: its failure enters dunning (payments/dunning.ts)
 * @returns the invoice and the attempt, which is succeeded, failed, pending or unknown
 */
export async function chargeInvoice(
  db: Db,
  actor: Actor,
  gateways: GatewayClients,
  invoiceId: string,
  paymentMethodId: string | undefined,
  onOverpaid: OnOverpaid,
  options: ChargeOptions = {},
): Promise<ChargeInvoiceResult> {
  const attempt = await startCharge(db, actor, gateways, invoiceId, paymentMethodId, options);
  const transaction = await executeCharge(db, actor, gateways, attempt, onOverpaid, options.policy);
  return { invoice: await getInvoice(db, invoiceId), transaction };
}
