import { type AccountRef, chart } from './chart.ts';
import { type EntryInput, type PostingInput, transfer } from './journal.ts';

/**
 * Every business movement that reaches the ledger, as a pure function of plain values (ids, amounts
 * in minor units as `bigint`, ISO 4217 currency) returning the journal entry to post: description,
 * source, postings and idempotency key. Callers post exactly what these return (`postEntry`), so
 * this file is the chart of accounts in use (PRODUCT §5): which accounts each fact debits (+) and
 * credits (−), and the key that makes each fact post once (`entryKeys`, which code reading an entry
 * back uses too). Keys derive from the business fact only, never from a random value, and never
 * change (existing databases hold them).
 * Postings of amount 0 are left out (an entry with a zero posting is refused).
 */

/** An invoice's amounts as finalized: total = subtotal + tax − rounding, minor units. */
export interface InvoiceAmounts {
  invoiceId: string;
  customerId: string;
  currency: string;
  /** Revenue, net of discounts and credits on its lines (minor units, may be 0). */
  subtotal: bigint;
  tax: bigint;
  /** What finalization took off for the gateway's step (PRODUCT §11: billing/invoice-rounding.ts), ≥ 0. */
  rounding: bigint;
  total: bigint;
}

/** `amount` (minor units, > 0) moved by a fact about one invoice of one customer. */
export interface InvoiceMovement {
  invoiceId: string;
  customerId: string;
  currency: string;
  amount: bigint;
}

/**
 * A payment through a gateway (`txn_…`), `amount` minor units (> 0), on the gateway account that took
 * it (`gatewayAccount`: `gwa_…`, or null for the gateway's default account).
 */
export interface PaymentMovement {
  transactionId: string;
  gateway: string;
  gatewayAccount: string | null;
  customerId: string;
  currency: string;
  amount: bigint;
}

/**
 * A dispute (`dp_…`) on a payment through `gateway`, `amount` minor units (> 0), on the payment's
 * gateway account (`gatewayAccount`, null for the default account).
 */
export interface DisputeMovement {
  disputeId: string;
  transactionId: string;
  gateway: string;
  gatewayAccount: string | null;
  currency: string;
  amount: bigint;
}

/**
 * A succeeded refund (`re_…`) of `amount` (minor units, > 0) through `gateway`:
 * - `customer_credit`: it pays back the customer's credit (no invoice);
 * - `invoice`: it refunds part of an invoice's payment: `creditPaidBack` of it pays back the
 *   customer's credit (what the payments brought beyond what the invoice asked, an overpayment; and
 *   what it gave back, beyond what the invoice's period kept, of the credit the period's changes had
 *   given the customer: billing/credit-notes.ts `RefundSplit`), the rest refunds the sale, split by
 *   its credit note into revenue given back (`subtotal`) and tax payable given back (`tax`); without a
 *   credit note (a refund that refunds no sale, or one made before credit notes existed) the rest is
 *   refunds whole;
 * - `payment`: it refunds a payment that has no invoice.
 */
export type RefundMovement = {
  refundId: string;
  gateway: string;
  /** The gateway account the refund went through (`gwa_…`), null for the gateway's default account. */
  gatewayAccount: string | null;
  currency: string;
  amount: bigint;
} & (
  | { kind: 'customer_credit'; customerId: string }
  | {
      kind: 'invoice';
      customerId: string;
      creditPaidBack: bigint;
      /** `rounding`: what of the invoice's rounding the note gives back (≥ 0; 0 when omitted). */
      creditNote: { subtotal: bigint; tax: bigint; rounding?: bigint } | undefined;
    }
  | { kind: 'payment' }
);

/**
 * The idempotency key of each movement's journal entry, by movement (named as its function here),
 * from the ids of its business fact: the movements post under these, and code that reads an entry
 * back (`entryPostings`, a check that one is written) finds it by these, so the key format has this
 * one home. Never change one: existing databases hold them (test/ledger/movements.test.ts lists them).
 */
export const entryKeys = {
  invoiceFinalized: (invoiceId: string) => `${invoiceId}:finalized`,
  invoiceVoided: (invoiceId: string) => `${invoiceId}:voided`,
  customerCreditApplied: (invoiceId: string) => `${invoiceId}:credit_applied`,
  customerCreditReturned: (invoiceId: string) => `${invoiceId}:credit_returned`,
  /** One per return: `creditReturned` is the invoice's cumulative credit returned after it (minor units). */
  invoiceCreditGivenBack: (invoiceId: string, creditReturned: bigint) =>
    `${invoiceId}:credit_given_back:${creditReturned}`,
  invoiceCashCredited: (invoiceId: string, cashCredited: bigint) =>
    `${invoiceId}:cash_credited:${cashCredited}`,
  /**
   * One per write-off: `writeOff` counts the invoice's write-offs, 1 for its first (a payment that
   * recovered it all, voided later, leaves it OPEN, to be written off again: its second).
   */
  badDebtWrittenOff: (invoiceId: string, writeOff = 1) =>
    writeOff === 1 ? `${invoiceId}:uncollectible` : `${invoiceId}:uncollectible:${writeOff}`,
  /** What the keys of an invoice's write-offs after its first begin with. */
  badDebtWrittenOffAgainPrefix: (invoiceId: string) => `${invoiceId}:uncollectible:`,
  /**
   * One per payment of a write-off: `amountPaid` is the invoice's `amount_paid` after it (minor
   * units), `writeOff` the write-off it recovers (`badDebtWrittenOff`).
   */
  badDebtRecovered: (invoiceId: string, amountPaid: bigint, writeOff = 1) =>
    writeOff === 1
      ? `${invoiceId}:recovered:${amountPaid}`
      : `${invoiceId}:recovered:${writeOff}:${amountPaid}`,
  /** The offline payment's own id (`op_…`). */
  offlinePaymentReceived: (offlinePaymentId: string) => offlinePaymentId,
  offlinePaymentReversed: (offlinePaymentId: string) => `${offlinePaymentId}:reversed`,
  offlineOverpaymentReversed: (offlinePaymentId: string) => `${offlinePaymentId}:overpaid_reversed`,
  paymentSucceeded: (transactionId: string) => `${transactionId}:succeeded`,
  paymentOverpaid: (transactionId: string) => `${transactionId}:overpaid`,
  paymentVoided: (transactionId: string) => `${transactionId}:voided`,
  overpaymentVoided: (transactionId: string) => `${transactionId}:overpaid_voided`,
  /** The payment and the settlement line (`stl_…`) that said it settled for less. */
  paymentSettledShort: (transactionId: string, settlementLineId: string) =>
    `${transactionId}:settled_short:${settlementLineId}`,
  overpaymentSettledShort: (transactionId: string, settlementLineId: string) =>
    `${transactionId}:overpaid_settled_short:${settlementLineId}`,
  refundSucceeded: (refundId: string) => `${refundId}:succeeded`,
  refundReversed: (refundId: string) => `${refundId}:reversed`,
  disputeOpened: (disputeId: string) => `${disputeId}:opened`,
  disputeWon: (disputeId: string) => `${disputeId}:won`,
  disputeHoldReleased: (disputeId: string) => `${disputeId}:released`,
  disputeLost: (disputeId: string) => `${disputeId}:lost`,
  disputeLostByRefund: (disputeId: string) => `${disputeId}:refunded`,
  disputeLossRefunded: (disputeId: string) => `${disputeId}:refunded_after_loss`,
  disputeLossReturned: (disputeId: string) => `${disputeId}:loss_returned`,
  /** Once per open claim and the refund paid out of its hold (`re_…`). */
  disputeHoldRefunded: (disputeId: string, refundId: string) => `${disputeId}:hold_refunded:${refundId}`,
  /** Once per claim and the refund whose `disputeHoldRefunded` it undoes. */
  disputeHoldRestored: (disputeId: string, refundId: string) => `${disputeId}:hold_restored:${refundId}`,
  disputeOverpaymentChargedBack: (disputeId: string) => `${disputeId}:overpayment_charged_back`,
  disputeOverpaymentReturned: (disputeId: string) => `${disputeId}:overpayment_returned`,
  /**
   * One per dispute and cause: `cause` is the key of the entry that changed the invoice's overpayment
   * or its lost disputes (`txn_…:overpaid`, `txn_…:voided`, `re_…:reversed`, `dp_…:overpayment_returned`),
   * each posted once.
   */
  disputeOverpaymentShareChanged: (disputeId: string, cause: string) =>
    `${disputeId}:overpayment_share:${cause}`,
  /** The change itself: the subscription, when it took effect, and from what plan and quantity to what. */
  prorationCredited: ({
    subscriptionId,
    at,
    from,
    to,
  }: Pick<ProrationCredit, 'subscriptionId' | 'at' | 'from' | 'to'>) =>
    `${entryKeys.prorationCreditedPrefix(subscriptionId)}${at.toISOString()}:${from.planId}*${from.quantity}:${to.planId}*${to.quantity}`,
  /**
   * What every `prorationCredited` key of the subscription starts with, the change's ISO time (24
   * characters) following it: the period's changes are read back by it (billing/proration.ts).
   */
  prorationCreditedPrefix: (subscriptionId: string) => `${subscriptionId}:proration_credit:`,
  /** One per change: `prorationCredited` is the invoice's cumulative `proration_credited` after it (minor units). */
  prorationCreditedOnInvoice: (invoiceId: string, prorationCredited: bigint) =>
    `${invoiceId}:proration_credited:${prorationCredited}`,
  /** What every `prorationCreditedOnInvoice` key of the invoice starts with: a void reads them back by it. */
  prorationCreditedOnInvoicePrefix: (invoiceId: string) => `${invoiceId}:proration_credited:`,
  prorationCreditVoided: (invoiceId: string) => `${invoiceId}:proration_credit_voided`,
  /** One per rounding after finalization: `rounding` is the invoice's cumulative `rounding` after it (minor units). */
  invoiceRoundedAgain: (invoiceId: string, rounding: bigint) => `${invoiceId}:rounded:${rounding}`,
  subscriptionCreditMoved: (subscriptionId: string) => `${subscriptionId}:credit_moved`,
  settlementLineBooked: (settlementLineId: string) => `${settlementLineId}:booked`,
  settlementLineConverted: (settlementLineId: string) => `${settlementLineId}:converted`,
  /** `payoutCreated`, `payoutPaid`, `payoutReturned`: the payout's id and that step. */
  payout: (payoutId: string, step: PayoutStep) => `${payoutId}:${step}`,
};

/** One posting of `amount` (debit > 0, credit < 0) to `account`. */
function line(account: PostingInput['account'], amount: bigint, currency: string): PostingInput {
  return { account, amount, currency };
}

const nonZero = (postings: PostingInput[]) => postings.filter((posting) => posting.amount !== 0n);
const negated = (postings: PostingInput[]) =>
  postings.map((posting) => ({ ...posting, amount: -posting.amount }));

function finalizationPostings(invoice: InvoiceAmounts): PostingInput[] {
  return nonZero([
    line(chart.receivable(invoice.customerId), invoice.total, invoice.currency),
    line(chart.revenue, -invoice.subtotal, invoice.currency),
    line(chart.taxPayable, -invoice.tax, invoice.currency),
    line(chart.rounding, invoice.rounding, invoice.currency),
  ]);
}

/**
 * `inv_…:finalized`: debit the receivable the total, credit revenue the subtotal and tax payable the
 * tax, and debit rounding what finalization took off (PRODUCT §11; none when 0): 1122 fils + 112 tax
 * rounded by 4 for Stripe KWD → receivable 1230, rounding 4, revenue −1122, tax payable −112.
 */
export function invoiceFinalized(invoice: InvoiceAmounts): EntryInput {
  const id = invoice.invoiceId;
  return {
    idempotencyKey: entryKeys.invoiceFinalized(id),
    description: `invoice ${id} finalized`,
    source: { type: 'invoice', id },
    postings: finalizationPostings(invoice),
  };
}

/** `inv_…:voided`: the finalization reversed (debit revenue and tax payable, credit the receivable and rounding). */
export function invoiceVoided(invoice: InvoiceAmounts): EntryInput {
  const id = invoice.invoiceId;
  return {
    idempotencyKey: entryKeys.invoiceVoided(id),
    description: `invoice ${id} voided`,
    source: { type: 'invoice', id },
    postings: negated(finalizationPostings(invoice)),
  };
}

/** `inv_…:credit_applied`: the customer's credit used at finalization (debit their credit, credit their receivable). */
export function customerCreditApplied(movement: InvoiceMovement): EntryInput {
  const id = movement.invoiceId;
  return {
    idempotencyKey: entryKeys.customerCreditApplied(id),
    description: `customer credit applied to invoice ${id}`,
    source: { type: 'invoice', id },
    postings: transfer(
      chart.customerCredit(movement.customerId),
      chart.receivable(movement.customerId),
      movement.amount,
      movement.currency,
    ),
  };
}

/** `inv_…:credit_returned`: a voided invoice's applied credit given back (debit the receivable, credit their credit). */
export function customerCreditReturned(movement: InvoiceMovement): EntryInput {
  const id = movement.invoiceId;
  return {
    idempotencyKey: entryKeys.customerCreditReturned(id),
    description: `customer credit applied to invoice ${id} given back (voided)`,
    source: { type: 'invoice', id },
    postings: transfer(
      chart.receivable(movement.customerId),
      chart.customerCredit(movement.customerId),
      movement.amount,
      movement.currency,
    ),
  };
}

/**
 * The customer credit that paid part of an invoice, given back to the customer's credit by a credit
 * note (a cancellation's refund, billing/credit-returns.ts): the note's `subtotal` and `tax` (minor
 * units, `amount` = subtotal + tax), and the invoice's `credit_returned` after it (`creditReturned`).
 */
export interface CreditGivenBack extends InvoiceMovement {
  subtotal: bigint;
  tax: bigint;
  /** The note's share of the invoice's rounding given back (≥ 0; 0 when omitted): amount = subtotal + tax − rounding. */
  rounding?: bigint;
  creditReturned: bigint;
}

/**
 * `inv_…:credit_given_back:<creditReturned>`: applied credit given back as credit by a credit note,
 * the sale undone as a cash refund's credit note undoes it but into the customer's credit instead of a
 * gateway's clearing (debit refunds the note's subtotal and tax payable its tax, credit rounding the
 * note's share of the invoice's rounding and the customer's credit the whole). One entry per return: the key holds the invoice's cumulative credit returned.
 */
export function invoiceCreditGivenBack(movement: CreditGivenBack): EntryInput {
  const id = movement.invoiceId;
  return {
    idempotencyKey: entryKeys.invoiceCreditGivenBack(id, movement.creditReturned),
    description: `customer credit that paid invoice ${id} given back by credit note`,
    source: { type: 'invoice', id },
    postings: nonZero([
      line(chart.refunds, movement.subtotal, movement.currency),
      line(chart.taxPayable, movement.tax, movement.currency),
      line(chart.rounding, -(movement.rounding ?? 0n), movement.currency),
      line(chart.customerCredit(movement.customerId), -movement.amount, movement.currency),
    ]),
  };
}

/**
 * The rest of a prorated cash refund that the gateway cannot take (below its step: Stripe KWD 667
 * owed, 660 to the card), given to the customer's credit by a credit note (billing/credit-returns.ts
 * `creditCashRest`): the note's `subtotal`, `tax` and `rounding` share (minor units, `amount` =
 * subtotal + tax − rounding), and the invoice's `cash_credited` after it (`cashCredited`).
 */
export interface CashCredited extends InvoiceMovement {
  subtotal: bigint;
  tax: bigint;
  rounding?: bigint;
  cashCredited: bigint;
}

/**
 * `inv_…:cash_credited:<cashCredited>`: cash an invoice was paid given back to the customer's credit
 * (not the card: the gateway takes the currency only on a step), the sale undone by a credit note as
 * a cash refund's is, into the customer's credit instead of a gateway's clearing: debit refunds the
 * note's subtotal and tax payable its tax, credit rounding the note's share of the invoice's rounding
 * and the customer's credit the whole (as `invoiceCreditGivenBack`, and as a downgrade's credit
 * lands in the customer's credit). KWD 667 owed of 800 + 200 tax: note 6 + 1 tax → refunds 6, tax
 * payable 1, customer credit −7. One entry per rest: the key holds the invoice's cumulative
 * `cash_credited`.
 */
export function invoiceCashCredited(movement: CashCredited): EntryInput {
  const id = movement.invoiceId;
  return {
    idempotencyKey: entryKeys.invoiceCashCredited(id, movement.cashCredited),
    description: `cash paid on invoice ${id} the gateway cannot refund (below its step) given to the customer's credit by credit note`,
    source: { type: 'invoice', id },
    postings: nonZero([
      line(chart.refunds, movement.subtotal, movement.currency),
      line(chart.taxPayable, movement.tax, movement.currency),
      line(chart.rounding, -(movement.rounding ?? 0n), movement.currency),
      line(chart.customerCredit(movement.customerId), -movement.amount, movement.currency),
    ]),
  };
}

/**
 * `inv_…:uncollectible` (`inv_…:uncollectible:<writeOff>` after the first): what is still due written
 * off (debit bad debt, credit the receivable).
 * @param writeOff which write-off of the invoice this is, 1 for its first (default)
 */
export function badDebtWrittenOff(movement: InvoiceMovement & { writeOff?: number }): EntryInput {
  const id = movement.invoiceId;
  return {
    idempotencyKey: entryKeys.badDebtWrittenOff(id, movement.writeOff),
    description: `invoice ${id} written off as uncollectible`,
    source: { type: 'invoice', id },
    postings: transfer(
      chart.badDebt,
      chart.receivable(movement.customerId),
      movement.amount,
      movement.currency,
    ),
  };
}

/**
 * `inv_…:recovered:<amountPaid>` (`inv_…:recovered:<writeOff>:<amountPaid>` after the first write-off):
 * a payment on a written-off invoice reverses the write-off for what it pays (debit the receivable,
 * credit bad debt).
 * @param amountPaid the invoice's `amount_paid` after this payment (minor units): one entry per payment
 * @param writeOff the write-off it recovers (`badDebtWrittenOff`), 1 for the first (default)
 */
export function badDebtRecovered(
  movement: InvoiceMovement & { amountPaid: bigint; writeOff?: number },
): EntryInput {
  const id = movement.invoiceId;
  return {
    idempotencyKey: entryKeys.badDebtRecovered(id, movement.amountPaid, movement.writeOff),
    description: `bad debt recovered on invoice ${id}`,
    source: { type: 'invoice', id },
    postings: transfer(
      chart.receivable(movement.customerId),
      chart.badDebt,
      movement.amount,
      movement.currency,
    ),
  };
}

/** `op_…`: a payment received outside any gateway (debit offline receipts, credit the receivable). */
export function offlinePaymentReceived(
  movement: InvoiceMovement & { offlinePaymentId: string; method: 'BANK' | 'CHECK' | 'CASH' | 'OTHER' },
): EntryInput {
  const id = movement.offlinePaymentId;
  return {
    idempotencyKey: entryKeys.offlinePaymentReceived(id),
    description: `${movement.method.toLowerCase()} payment ${id} on invoice ${movement.invoiceId}`,
    source: { type: 'offline_payment', id },
    postings: transfer(
      chart.offlineReceipts,
      chart.receivable(movement.customerId),
      movement.amount,
      movement.currency,
    ),
  };
}

/**
 * `op_…:reversed`: an offline payment taken back (a bounced cheque, a recalled transfer:
 * payments/offline-reversals.ts), the invoice owed it again: debit the receivable, credit offline
 * receipts, `amount` the payment's whole amount (minor units, > 0), once per payment.
 */
export function offlinePaymentReversed(movement: InvoiceMovement & { offlinePaymentId: string }): EntryInput {
  const id = movement.offlinePaymentId;
  return {
    idempotencyKey: entryKeys.offlinePaymentReversed(id),
    description: `offline payment ${id} on invoice ${movement.invoiceId} reversed`,
    source: { type: 'offline_payment', id },
    postings: transfer(
      chart.receivable(movement.customerId),
      chart.offlineReceipts,
      movement.amount,
      movement.currency,
    ),
  };
}

/**
 * `op_…:overpaid_reversed`: the customer credit an invoice no longer owes its customer once offline
 * payment `op_…` is reversed is taken back (debit their credit, credit the receivable), `amount`: by
 * how much the reversal lowered what the invoice was paid beyond what it asked and no refund gave
 * back (10000 paid by cheque and 10000 again by card, 10000 the customer's credit: the cheque bounces,
 * 10000 taken back).
 */
export function offlineOverpaymentReversed(
  movement: InvoiceMovement & { offlinePaymentId: string },
): EntryInput {
  const id = movement.offlinePaymentId;
  return {
    idempotencyKey: entryKeys.offlineOverpaymentReversed(id),
    description: `offline payment ${id} reversed: the customer credit its invoice's overpayment made is taken back`,
    source: { type: 'offline_payment', id },
    postings: transfer(
      chart.customerCredit(movement.customerId),
      chart.receivable(movement.customerId),
      movement.amount,
      movement.currency,
    ),
  };
}

/** `txn_…:succeeded`: money captured by a gateway (debit its clearing account, credit the receivable). */
export function paymentSucceeded(payment: PaymentMovement): EntryInput {
  const id = payment.transactionId;
  return {
    idempotencyKey: entryKeys.paymentSucceeded(id),
    description: `payment ${id} via ${payment.gateway}`,
    source: { type: 'transaction', id },
    postings: transfer(
      chart.gatewayClearing(payment.gateway, payment.gatewayAccount),
      chart.receivable(payment.customerId),
      payment.amount,
      payment.currency,
    ),
  };
}

/**
 * `txn_…:overpaid`: what a payment brought beyond what its invoice asked becomes the customer's credit
 * (debit the receivable, credit their credit).
 */
export function paymentOverpaid(
  payment: Omit<PaymentMovement, 'gateway' | 'gatewayAccount'> & { invoiceId: string },
): EntryInput {
  const id = payment.transactionId;
  return {
    idempotencyKey: entryKeys.paymentOverpaid(id),
    description: `payment ${id} beyond what invoice ${payment.invoiceId} asked: customer credit`,
    source: { type: 'transaction', id },
    postings: transfer(
      chart.receivable(payment.customerId),
      chart.customerCredit(payment.customerId),
      payment.amount,
      payment.currency,
    ),
  };
}

/**
 * `txn_…:voided`: a succeeded payment its gateway voided before settlement (the money never moved)
 * is taken back: the reverse of `txn_…:succeeded` (debit the customer's receivable, credit the
 * gateway's clearing account) for what it moved.
 */
export function paymentVoided(payment: PaymentMovement): EntryInput {
  const id = payment.transactionId;
  return {
    idempotencyKey: entryKeys.paymentVoided(id),
    description: `payment ${id} voided at ${payment.gateway}`,
    source: { type: 'transaction', id },
    postings: transfer(
      chart.receivable(payment.customerId),
      chart.gatewayClearing(payment.gateway, payment.gatewayAccount),
      payment.amount,
      payment.currency,
    ),
  };
}

/**
 * `txn_…:overpaid_voided`: the customer credit a voided payment's invoice no longer owes them is taken
 * back (debit their credit, credit the receivable), `amount`: by how much the void lowered what the
 * invoice was paid beyond what it asked and no refund had given back (payments/voids.ts `bookVoid`),
 * which is the voided payment's own `txn_…:overpaid` when it was the duplicate, and the duplicate's
 * when the first of two payments is voided.
 */
export function overpaymentVoided(payment: Omit<PaymentMovement, 'gateway' | 'gatewayAccount'>): EntryInput {
  const id = payment.transactionId;
  return {
    idempotencyKey: entryKeys.overpaymentVoided(id),
    description: `payment ${id} voided: the customer credit it made is taken back`,
    source: { type: 'transaction', id },
    postings: transfer(
      chart.customerCredit(payment.customerId),
      chart.receivable(payment.customerId),
      payment.amount,
      payment.currency,
    ),
  };
}

/**
 * A payment (`txn_…`) its gateway settled for less than billhook booked, as settlement line
 * `settlementLineId` (`stl_…`) of the gateway's report says: `amount` (minor units, > 0) is what billhook
 * booked into clearing (`txn_…:succeeded`) beyond what settled.
 */
export interface SettledShortMovement extends PaymentMovement {
  settlementLineId: string;
}

/**
 * `txn_…:settled_short:stl_…`: the part of a payment its gateway did not settle (the settlement report
 * is the bank's truth: PRODUCT §11, §13) leaves the gateway's clearing account and is owed again by
 * the customer (debit the receivable, credit clearing): the reverse of `txn_…:succeeded` for that
 * part. Authorize.Net's batch settling USD 100.00 booked as 80.00: receivable +2000, clearing −2000.
 */
export function paymentSettledShort(payment: SettledShortMovement): EntryInput {
  const id = payment.transactionId;
  return {
    idempotencyKey: entryKeys.paymentSettledShort(id, payment.settlementLineId),
    description: `payment ${id} settled by ${payment.gateway} for ${payment.amount} less than booked (line ${payment.settlementLineId})`,
    source: { type: 'transaction', id },
    postings: transfer(
      chart.receivable(payment.customerId),
      chart.gatewayClearing(payment.gateway, payment.gatewayAccount),
      payment.amount,
      payment.currency,
    ),
  };
}

/**
 * `txn_…:overpaid_settled_short:stl_…`: the customer credit an invoice's overpayment made that a
 * short settlement of one of its payments undoes (`paymentSettledShort`: the invoice is paid that much
 * less beyond what it asked) is taken back (debit their credit, credit the receivable), `amount`
 * minor units > 0. 3000 paid twice, the second settled for 2500: 500 off the customer's 3000 credit.
 */
export function overpaymentSettledShort(
  payment: Omit<PaymentMovement, 'gateway' | 'gatewayAccount'> & { settlementLineId: string },
): EntryInput {
  const id = payment.transactionId;
  return {
    idempotencyKey: entryKeys.overpaymentSettledShort(id, payment.settlementLineId),
    description: `payment ${id} settled short (line ${payment.settlementLineId}): the customer credit it made is taken back`,
    source: { type: 'transaction', id },
    postings: transfer(
      chart.customerCredit(payment.customerId),
      chart.receivable(payment.customerId),
      payment.amount,
      payment.currency,
    ),
  };
}

function refundPostings(refund: RefundMovement): PostingInput[] {
  const clearing = chart.gatewayClearing(refund.gateway, refund.gatewayAccount);
  if (refund.kind === 'customer_credit') {
    return transfer(chart.customerCredit(refund.customerId), clearing, refund.amount, refund.currency);
  }
  const paidBack = refund.kind === 'invoice' ? refund.creditPaidBack : 0n;
  const note = refund.kind === 'invoice' ? refund.creditNote : undefined;
  return nonZero([
    ...(refund.kind === 'invoice'
      ? [line(chart.customerCredit(refund.customerId), paidBack, refund.currency)]
      : []),
    line(chart.refunds, note ? note.subtotal : refund.amount - paidBack, refund.currency),
    line(chart.taxPayable, note?.tax ?? 0n, refund.currency),
    line(chart.rounding, -(note?.rounding ?? 0n), refund.currency),
    line(clearing, -refund.amount, refund.currency),
  ]);
}

/**
 * `re_…:succeeded`: money given back through a gateway (credit its clearing account). Debited: for a
 * refund of customer credit, their credit; for a refund of an invoice, their credit for what it pays
 * back of it (an overpayment, change credit taken back), refunds (contra-revenue) for its credit note's subtotal and tax payable for
 * its tax, with the note's share of the invoice's rounding credited back to `rounding` (PRODUCT §11:
 * Stripe KWD 1230 paid of 1122 + 112 rounded by 4, all refunded → refunds 1122, tax payable 112,
 * rounding −4, clearing −1230); for a payment without invoice, refunds.
 */
export function refundSucceeded(refund: RefundMovement): EntryInput {
  const id = refund.refundId;
  return {
    idempotencyKey: entryKeys.refundSucceeded(id),
    description: `refund ${id} via ${refund.gateway}`,
    source: { type: 'refund', id },
    postings: refundPostings(refund),
  };
}

/** `re_…:reversed`: a refund that failed after succeeding, its `refundSucceeded` postings negated. */
export function refundReversed(refund: RefundMovement): EntryInput {
  const id = refund.refundId;
  return {
    idempotencyKey: entryKeys.refundReversed(id),
    description: `refund ${id} failed after succeeding`,
    source: { type: 'refund', id },
    postings: negated(refundPostings(refund)),
  };
}

/** `dp_…:opened`: the gateway withholds the disputed amount (debit disputed funds, credit its clearing). */
export function disputeOpened(dispute: DisputeMovement): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeOpened(id),
    description: `dispute ${id} opened on ${dispute.transactionId}`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.disputedFunds,
      chart.gatewayClearing(dispute.gateway, dispute.gatewayAccount),
      dispute.amount,
      dispute.currency,
    ),
  };
}

/** `dp_…:won`: the withheld amount comes back (debit the gateway's clearing, credit disputed funds). */
export function disputeWon(dispute: DisputeMovement): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeWon(id),
    description: `dispute ${id} won`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.gatewayClearing(dispute.gateway, dispute.gatewayAccount),
      chart.disputedFunds,
      dispute.amount,
      dispute.currency,
    ),
  };
}

/**
 * `dp_…:released`: a dispute lost for less than its gateway withheld (PayPal's `amount_refunded`
 * below its `dispute_amount`): the part of the hold the cardholder does not get comes back (debit the
 * gateway's clearing, credit disputed funds), `amount` being that part (held − lost, minor units).
 */
export function disputeHoldReleased(dispute: DisputeMovement): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeHoldReleased(id),
    description: `dispute ${id} lost for less than withheld: the rest of the hold released`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.gatewayClearing(dispute.gateway, dispute.gatewayAccount),
      chart.disputedFunds,
      dispute.amount,
      dispute.currency,
    ),
  };
}

/** `dp_…:lost`: the cardholder keeps the money (debit chargeback losses, credit disputed funds). */
export function disputeLost(dispute: DisputeMovement): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeLost(id),
    description: `dispute ${id} lost`,
    source: { type: 'dispute', id },
    postings: transfer(chart.chargebackLosses, chart.disputedFunds, dispute.amount, dispute.currency),
  };
}

/**
 * `dp_…:refunded`: a dispute lost whose money reached the customer as refund `refundId` (which posts
 * its own entry): the withheld amount is released (debit the gateway's clearing, credit disputed funds).
 */
export function disputeLostByRefund(dispute: DisputeMovement & { refundId: string }): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeLostByRefund(id),
    description: `dispute ${id} lost and paid to the customer by refund ${dispute.refundId}: the held funds are released`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.gatewayClearing(dispute.gateway, dispute.gatewayAccount),
      chart.disputedFunds,
      dispute.amount,
      dispute.currency,
    ),
  };
}

/**
 * `dp_…:hold_refunded:<re_…>`: an open claim's hold spent by refund `refundId` of the same payment and
 * amount (PayPal pays a refund issued while a claim is open out of the funds it holds for it, PayPal
 * Help "the payment is on hold in my PayPal account": "You can use these funds to issue a refund
 * anytime during the dispute"): the refund's own entry credits clearing, so the hold goes back to
 * clearing (debit the gateway's clearing, credit disputed funds) and clearing says what PayPal holds.
 * JPY 1000 paid, claim of 400 open, refund of 400: clearing 600, disputed funds 0 (not 200 and 400).
 */
export function disputeHoldRefunded(dispute: DisputeMovement & { refundId: string }): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeHoldRefunded(id, dispute.refundId),
    description: `claim ${id} still open: its hold paid refund ${dispute.refundId}`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.gatewayClearing(dispute.gateway, dispute.gatewayAccount),
      chart.disputedFunds,
      dispute.amount,
      dispute.currency,
    ),
  };
}

/**
 * `dp_…:hold_restored:<re_…>`: `dp_…:hold_refunded:<re_…>` undone (debit disputed funds, credit the
 * gateway's clearing): the claim leaves `open` (its resolution then books from the hold as it always
 * did: `dp_…:won`, `dp_…:refunded`, `dp_…:released`, `dp_…:lost`), or refund `refundId` failed after
 * succeeding or no longer pairs with it, so the claim holds its amount again.
 */
export function disputeHoldRestored(dispute: DisputeMovement & { refundId: string }): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeHoldRestored(id, dispute.refundId),
    description: `claim ${id}: its hold no longer spent by refund ${dispute.refundId}`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.disputedFunds,
      chart.gatewayClearing(dispute.gateway, dispute.gatewayAccount),
      dispute.amount,
      dispute.currency,
    ),
  };
}

/**
 * `dp_…:refunded_after_loss`: a dispute booked lost, then paid to the customer by refund `refundId`:
 * the loss is the refund, taken back (debit the gateway's clearing, credit chargeback losses).
 */
export function disputeLossRefunded(
  dispute: Omit<DisputeMovement, 'transactionId'> & { refundId: string },
): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeLossRefunded(id),
    description: `dispute ${id} was paid to the customer by refund ${dispute.refundId}: its loss is the refund`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.gatewayClearing(dispute.gateway, dispute.gatewayAccount),
      chart.chargebackLosses,
      dispute.amount,
      dispute.currency,
    ),
  };
}

/**
 * `dp_…:loss_returned`: a chargeback booked lost when the gateway took the money back (a reversal),
 * then decided for the merchant: the gateway returns the money (PayPal's T1202 "chargeback
 * reversal"), so the loss is taken back (debit the gateway's clearing, credit chargeback losses).
 */
export function disputeLossReturned(dispute: DisputeMovement): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeLossReturned(id),
    description: `dispute ${id} won after the chargeback took its money: the money came back`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.gatewayClearing(dispute.gateway, dispute.gatewayAccount),
      chart.chargebackLosses,
      dispute.amount,
      dispute.currency,
    ),
  };
}

/**
 * `dp_…:overpayment_charged_back`: the part `amount` of a lost dispute's money that was its payment's
 * invoice's overpayment (a duplicate payment's excess, the customer's credit: `txn_…:overpaid`) is
 * taken off the customer's credit, not lost: the chargeback gave them back money they held as credit
 * (debit their credit, credit chargeback losses, which `dp_…:lost` debited for the whole dispute).
 */
export function disputeOverpaymentChargedBack(
  dispute: Omit<DisputeMovement, 'transactionId' | 'gateway' | 'gatewayAccount'> & { customerId: string },
): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeOverpaymentChargedBack(id),
    description: `dispute ${id} lost: ${dispute.amount} of it was the customer's credit from an overpayment`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.customerCredit(dispute.customerId),
      chart.chargebackLosses,
      dispute.amount,
      dispute.currency,
    ),
  };
}

/**
 * `dp_…:overpayment_returned`: a dispute lost and then won (`dp_…:loss_returned`) gives back what its
 * loss took off the customer's credit (`dp_…:overpayment_charged_back`, `amount`): the reverse (debit
 * chargeback losses, credit their credit).
 */
export function disputeOverpaymentReturned(
  dispute: Omit<DisputeMovement, 'transactionId' | 'gateway' | 'gatewayAccount'> & { customerId: string },
): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeOverpaymentReturned(id),
    description: `dispute ${id} won after its loss: the ${dispute.amount} taken off the customer's credit is theirs again`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.chargebackLosses,
      chart.customerCredit(dispute.customerId),
      dispute.amount,
      dispute.currency,
    ),
  };
}

/**
 * `dp_…:overpayment_share:<cause>`: the share of its invoice's overpayment a lost dispute gave back
 * (`dp_…:overpayment_charged_back`) changed because of `cause` (a later payment overpaid the invoice,
 * a payment of it was voided, a refund of it failed after succeeding, another lost dispute of it was
 * won: payments/overpayment-shares.ts),
 * by `amount` (minor units, signed, never 0): more than 0 takes that much more off the customer's
 * credit (debit their credit, credit chargeback losses), less than 0 gives that much back to it
 * (debit chargeback losses, credit their credit).
 */
export function disputeOverpaymentShareChanged(
  dispute: Omit<DisputeMovement, 'transactionId' | 'gateway' | 'gatewayAccount'> & {
    customerId: string;
    cause: string;
  },
): EntryInput {
  const id = dispute.disputeId;
  return {
    idempotencyKey: entryKeys.disputeOverpaymentShareChanged(id, dispute.cause),
    description:
      dispute.amount > 0n
        ? `dispute ${id} lost: ${dispute.amount} more of it was the customer's credit from an overpayment (${dispute.cause})`
        : `dispute ${id} lost: ${-dispute.amount} of the overpayment it took is the customer's credit again (${dispute.cause})`,
    source: { type: 'dispute', id },
    postings: transfer(
      chart.customerCredit(dispute.customerId),
      chart.chargebackLosses,
      dispute.amount,
      dispute.currency,
    ),
  };
}

/** A subscription change not invoiced: its proration lines' net amounts, each ≤ 0 (minor units). */
export interface ProrationCredit {
  subscriptionId: string;
  customerId: string;
  currency: string;
  /** Net of the change's lines (≤ 0); `total` = `subtotal` + `tax`. */
  subtotal: bigint;
  tax: bigint;
  total: bigint;
  /** When the change took effect. */
  at: Date;
  /** The plan and quantity before and after the change. */
  from: { planId: string; quantity: number };
  to: { planId: string; quantity: number };
}

/**
 * `sub_…:proration_credit:<at ISO>:<from plan>*<qty>:<to plan>*<qty>`: the unused time of a change
 * not invoiced becomes the customer's credit (debit revenue for the net credit and tax payable for its
 * tax, credit the customer's credit account), which later invoices use (`customerCreditApplied`).
 * The key is the change itself: the subscription, when, and from what to what.
 */
export function prorationCredited(credit: ProrationCredit): EntryInput {
  const id = credit.subscriptionId;
  return {
    idempotencyKey: entryKeys.prorationCredited(credit),
    description: `proration credit of subscription ${id} (unused time at the old price)`,
    source: { type: 'subscription', id },
    postings: nonZero([
      line(chart.revenue, -credit.subtotal, credit.currency),
      line(chart.taxPayable, -credit.tax, credit.currency),
      line(chart.customerCredit(credit.customerId), credit.total, credit.currency),
    ]),
  };
}

/**
 * The part of a change's net credit (`subtotal` + `tax` = `total`, each ≤ 0 as in `ProrationCredit`,
 * minor units) that lowers what the customer still owes on the OPEN period invoice `invoiceId`
 * (billing/proration.ts), whose `proration_credited` is `prorationCredited` after it.
 */
export interface ProrationCreditOnInvoice {
  invoiceId: string;
  customerId: string;
  currency: string;
  subtotal: bigint;
  tax: bigint;
  total: bigint;
  prorationCredited: bigint;
}

/**
 * `inv_…:proration_credited:<prorationCredited>`: a change's credit for unused time taken off the
 * period invoice still owed, as a credit note on an open invoice lowers what is due (debit revenue for
 * its net and tax payable for its tax, credit the customer's receivable): never customer credit, so
 * nothing of it can be refunded in cash or outlive the invoice. One entry per change: the key holds the
 * invoice's cumulative `proration_credited`.
 */
export function prorationCreditedOnInvoice(credit: ProrationCreditOnInvoice): EntryInput {
  const id = credit.invoiceId;
  return {
    idempotencyKey: entryKeys.prorationCreditedOnInvoice(id, credit.prorationCredited),
    description: `proration credit of a change taken off invoice ${id} (unused time not paid yet)`,
    source: { type: 'invoice', id },
    postings: nonZero([
      line(chart.revenue, -credit.subtotal, credit.currency),
      line(chart.taxPayable, -credit.tax, credit.currency),
      line(chart.receivable(credit.customerId), credit.total, credit.currency),
    ]),
  };
}

/**
 * `inv_…:proration_credit_voided`: a voided invoice's `prorationCreditedOnInvoice` entries undone in
 * one (`subtotal`, `tax`, `total`: their sums, each ≤ 0; debit the receivable, credit revenue and tax
 * payable), so the void reverses the invoice as it stood: the time the changes credited was never paid,
 * and nothing of it goes to the customer's credit.
 */
export function prorationCreditVoided(
  credit: Omit<ProrationCreditOnInvoice, 'prorationCredited'>,
): EntryInput {
  const id = credit.invoiceId;
  return {
    idempotencyKey: entryKeys.prorationCreditVoided(id),
    description: `proration credit taken off invoice ${id} undone (voided)`,
    source: { type: 'invoice', id },
    postings: nonZero([
      line(chart.revenue, credit.subtotal, credit.currency),
      line(chart.taxPayable, credit.tax, credit.currency),
      line(chart.receivable(credit.customerId), -credit.total, credit.currency),
    ]),
  };
}

/**
 * `inv_…:rounded:<rounding>`: what an OPEN invoice still owes after a credit was taken off it
 * (a change's credit, a cancellation's share) rounded down to the step of the gateway that will
 * charge it, as finalization rounds (PRODUCT §11, billing/invoices.ts `roundOwedAgain`): debit
 * rounding `amount` (minor units, > 0), credit the receivable; `rounding` is the invoice's
 * `rounding` after it (its key). Stripe TND 12340 owed, 5729 credited → 6611, rounded by 1: 6610.
 * A void reverses it with the rest of the finalization (`invoiceVoided` of the rounded amounts).
 */
export function invoiceRoundedAgain(movement: InvoiceMovement & { rounding: bigint }): EntryInput {
  const id = movement.invoiceId;
  return {
    idempotencyKey: entryKeys.invoiceRoundedAgain(id, movement.rounding),
    description: `invoice ${id} rounded again for its gateway after a credit`,
    source: { type: 'invoice', id },
    postings: transfer(
      chart.rounding,
      chart.receivable(movement.customerId),
      movement.amount,
      movement.currency,
    ),
  };
}

/**
 * `sub_…:credit_moved`: a subscription's proration credit of before credit notes (booked against the
 * receivable, `amount` minor units before tax) moved to its customer's credit with the tax its
 * CREDIT line would have carried (debit the receivable and tax payable, credit the customer's
 * credit). Posted once, by migration 0015.
 */
export function subscriptionCreditMoved(credit: {
  subscriptionId: string;
  customerId: string;
  currency: string;
  amount: bigint;
  tax: bigint;
}): EntryInput {
  const id = credit.subscriptionId;
  return {
    idempotencyKey: entryKeys.subscriptionCreditMoved(id),
    description: `proration credit of subscription ${id} moved to its customer's credit`,
    source: { type: 'subscription', id },
    postings: nonZero([
      line(chart.receivable(credit.customerId), credit.amount, credit.currency),
      line(chart.taxPayable, credit.tax, credit.currency),
      line(chart.customerCredit(credit.customerId), -(credit.amount + credit.tax), credit.currency),
    ]),
  };
}

/**
 * A line of a gateway balance as billhook books it (`stl_…`, PRODUCT.md §13), on the gateway account
 * that reported it: amounts in minor units of `currency` (the currency the gateway settles in), signed
 * from the merchant's side (`net = gross - fee`); `original`, when the gateway converted, is the
 * payment's (or refund's, dispute's) own currency and amount, signed like `gross`.
 */
export interface SettlementLineMovement {
  settlementLineId: string;
  gateway: string;
  gatewayAccount: string | null;
  kind: 'charge' | 'refund' | 'dispute' | 'fee' | 'adjustment' | 'payout_return' | 'conversion' | 'hold';
  currency: string;
  gross: bigint;
  fee: bigint;
  net: bigint;
  original?: { currency: string; amount: bigint } | undefined;
}

function settlementLinePostings(movement: SettlementLineMovement): PostingInput[] {
  const { gateway, gatewayAccount: account, currency } = movement;
  const clearing = chart.gatewayClearing(gateway, account);
  if (movement.kind === 'fee') {
    return nonZero([
      line(chart.gatewayFees(gateway, account), -movement.net, currency),
      line(clearing, movement.net, currency),
    ]);
  }
  // A failed payout's money coming back: its payout's `pyo_…:returned` books it. A hold (or its
  // release) moves money within the gateway balance, not out of it: the gateway owes it still.
  if (movement.kind === 'payout_return' || movement.kind === 'hold') return [];
  if (movement.kind === 'adjustment') {
    return nonZero([
      line(clearing, movement.net, currency),
      line(chart.settlementAdjustments(gateway, account), -movement.net, currency),
    ]);
  }
  // One currency's side of a conversion of the balance: its gross against the FX account in that
  // currency (the other side is a line of its own, in the other currency), a fee to gateway fees.
  if (movement.kind === 'conversion') {
    return nonZero([
      line(clearing, movement.net, currency),
      line(chart.fx(gateway, account), -movement.gross, currency),
      line(chart.gatewayFees(gateway, account), movement.fee, currency),
    ]);
  }
  const { original } = movement;
  return nonZero([
    line(chart.gatewayFees(gateway, account), movement.fee, currency),
    line(clearing, -movement.fee, currency),
    ...(original
      ? [
          line(clearing, -original.amount, original.currency),
          line(chart.fx(gateway, account), original.amount, original.currency),
          line(clearing, movement.gross, currency),
          line(chart.fx(gateway, account), -movement.gross, currency),
        ]
      : []),
  ]);
}

/** True when `settlementLineBooked` has something to post for the line (a fee, a conversion, a standalone fee or adjustment). */
export function settlementLineMoves(movement: SettlementLineMovement): boolean {
  return settlementLinePostings(movement).length > 0;
}

/**
 * `stl_…:booked`: what a settlement line adds to the books beyond the payment, refund or dispute it is
 * about (whose gross their own movements booked into clearing):
 * - its fee, for a charge, refund or dispute line: debit gateway fees, credit clearing (a fee given
 *   back, negative, the reverse);
 * - a `fee` line: its whole net out of clearing into gateway fees;
 * - an `adjustment` line: its net into clearing against settlement adjustments, for a person;
 * - a `conversion` line (one currency's side of a conversion of the balance, e.g. PayPal's `T0201`
 *   rows −1930000 HUF and +4957 EUR, two lines): its gross between clearing and the FX account in its
 *   currency (HUF: credit clearing, debit FX; EUR: debit clearing, credit FX), a fee (if any) from
 *   clearing to gateway fees;
 * - a `payout_return` line: nothing (its payout's `pyo_…:returned` moved the money back);
 * - a `hold` line: nothing (money held or released within the gateway balance, still the merchant's);
 * - a conversion (`original` set): clearing credited in the payment's currency and debited in the
 *   settlement currency, each against the FX account in its own currency.
 * Post it only when `settlementLineMoves` (an entry needs postings).
 */
export function settlementLineBooked(movement: SettlementLineMovement): EntryInput {
  const id = movement.settlementLineId;
  const converted = movement.original ? ` (converted from ${movement.original.currency})` : '';
  return {
    idempotencyKey: entryKeys.settlementLineBooked(id),
    description: `${movement.kind} line ${id} settled by ${movement.gateway}${converted}`,
    source: { type: 'settlement_line', id },
    postings: settlementLinePostings(movement),
  };
}

/**
 * `stl_…:converted`: a settlement line booked unconverted (`was`, by its `stl_…:booked` entry, in the
 * payment's currency) replaced by the same line converted (`now`, in the balance currency with
 * `original`): reverses what `was` posted and posts what `now` adds (`settlementLineBooked`), in one
 * entry. E.g. PayPal's USD 10.99 capture swept with fee 0.33 before its conversion rows, then its
 * webhook line CNY 60.39, fee 1.13, from USD 10.99: USD fees −33, USD clearing +33 − 1099, USD fx
 * +1099, CNY clearing +6039 − 113, CNY fx −6039, CNY fees +113 (minor units).
 */
export function settlementLineConverted(
  was: SettlementLineMovement,
  now: SettlementLineMovement,
): EntryInput {
  const id = now.settlementLineId;
  return {
    idempotencyKey: entryKeys.settlementLineConverted(id),
    description: `${now.kind} line ${id} settled by ${now.gateway} converted from ${was.currency}, replacing its booking in ${was.currency}`,
    source: { type: 'settlement_line', id },
    postings: [...negated(settlementLinePostings(was)), ...settlementLinePostings(now)],
  };
}

/**
 * A payout (`pyo_…`) of `amount` (minor units of `currency`, the net the gateway sends to the bank)
 * from a gateway account (`gatewayAccount`, null for the gateway's default account).
 */
export interface PayoutMovement {
  payoutId: string;
  gateway: string;
  gatewayAccount: string | null;
  currency: string;
  amount: bigint;
}

/** What happened to a payout, each step one journal entry: sent, arrived at the bank, come back. */
type PayoutStep = 'created' | 'paid' | 'returned';

function payoutEntry(
  payout: PayoutMovement,
  step: PayoutStep,
  debit: AccountRef,
  credit: AccountRef,
  description: string,
): EntryInput {
  const id = payout.payoutId;
  return {
    idempotencyKey: entryKeys.payout(id, step),
    description: `payout ${id} ${description}`,
    source: { type: 'payout', id },
    postings: transfer(debit, credit, payout.amount, payout.currency),
  };
}

/** `pyo_…:created`: the gateway sends the payout (debit payouts in transit, credit clearing). */
export function payoutCreated(payout: PayoutMovement): EntryInput {
  const { gateway, gatewayAccount: account } = payout;
  return payoutEntry(
    payout,
    'created',
    chart.payoutsInTransit(gateway, account),
    chart.gatewayClearing(gateway, account),
    `sent by ${gateway}`,
  );
}

/** `pyo_…:paid`: the payout arrived at the bank (debit bank, credit payouts in transit). */
export function payoutPaid(payout: PayoutMovement): EntryInput {
  const { gateway, gatewayAccount: account } = payout;
  return payoutEntry(
    payout,
    'paid',
    chart.bank(gateway, account),
    chart.payoutsInTransit(gateway, account),
    'arrived at the bank',
  );
}

/**
 * `pyo_…:returned`: a payout that failed or was canceled after it was sent comes back to the gateway
 * balance (debit clearing, credit payouts in transit; or bank, for a payout that had been reported
 * paid: Stripe may fail a payout after reporting it paid, https://docs.stripe.com/payouts#payout-failures).
 */
export function payoutReturned(payout: PayoutMovement & { wasPaid: boolean }): EntryInput {
  const { gateway, gatewayAccount: account } = payout;
  return payoutEntry(
    payout,
    'returned',
    chart.gatewayClearing(gateway, account),
    payout.wasPaid ? chart.bank(gateway, account) : chart.payoutsInTransit(gateway, account),
    'failed or canceled: back in the gateway balance',
  );
}
