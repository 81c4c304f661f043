import { describe, expect, it } from 'vitest';
import type { EntryInput } from '../../src/ledger/journal.ts';
import {
  badDebtRecovered,
  badDebtWrittenOff,
  customerCreditApplied,
  customerCreditReturned,
  disputeHoldRefunded,
  disputeHoldReleased,
  disputeHoldRestored,
  disputeLossRefunded,
  disputeLossReturned,
  disputeLost,
  disputeLostByRefund,
  disputeOpened,
  disputeOverpaymentChargedBack,
  disputeOverpaymentReturned,
  disputeOverpaymentShareChanged,
  disputeWon,
  invoiceCashCredited,
  invoiceCreditGivenBack,
  invoiceFinalized,
  invoiceRoundedAgain,
  invoiceVoided,
  offlineOverpaymentReversed,
  offlinePaymentReceived,
  offlinePaymentReversed,
  overpaymentSettledShort,
  overpaymentVoided,
  paymentOverpaid,
  paymentSettledShort,
  paymentSucceeded,
  paymentVoided,
  payoutCreated,
  payoutPaid,
  payoutReturned,
  prorationCredited,
  prorationCreditedOnInvoice,
  prorationCreditVoided,
  refundReversed,
  refundSucceeded,
  settlementLineBooked,
  settlementLineMoves,
  subscriptionCreditMoved,
} from '../../src/ledger/movements.ts';

/**
 * The chart of accounts in use (PRODUCT §5), one row per business movement: what it debits (+) and
 * credits (−), per account code, in minor units of EUR, and the idempotency key it posts under.
 * Keys are those existing databases hold: a changed key here would post a fact twice.
 */
const invoice = { invoiceId: 'inv_1', customerId: 'cus_1', currency: 'EUR', rounding: 0n };
const payment = {
  transactionId: 'txn_1',
  gateway: 'stripe',
  gatewayAccount: null,
  customerId: 'cus_1',
  currency: 'EUR',
};
const dispute = {
  disputeId: 'dp_1',
  transactionId: 'txn_1',
  gateway: 'stripe',
  gatewayAccount: null,
  currency: 'EUR',
  amount: 500n,
};
const settled = { settlementLineId: 'stl_1', gateway: 'stripe', gatewayAccount: null, currency: 'EUR' };
const payout = {
  payoutId: 'pyo_1',
  gateway: 'stripe',
  gatewayAccount: 'gwa_eu',
  currency: 'EUR',
  amount: 9_000n,
};
const refund = { refundId: 're_1', gateway: 'paypal', gatewayAccount: null, currency: 'EUR', amount: 1100n };

const rows: {
  movement: string;
  entry: EntryInput;
  key: string;
  source: string;
  postings: [string, bigint][];
}[] = [
  {
    movement: 'invoice finalized',
    entry: invoiceFinalized({ ...invoice, subtotal: 1000n, tax: 100n, total: 1100n }),
    key: 'inv_1:finalized',
    source: 'invoice inv_1',
    postings: [
      ['receivable:cus_1', 1100n],
      ['revenue', -1000n],
      ['tax_payable', -100n],
    ],
  },
  {
    movement: 'invoice finalized, no tax',
    entry: invoiceFinalized({ ...invoice, subtotal: 1000n, tax: 0n, total: 1000n }),
    key: 'inv_1:finalized',
    source: 'invoice inv_1',
    postings: [
      ['receivable:cus_1', 1000n],
      ['revenue', -1000n],
    ],
  },
  {
    movement: 'invoice voided',
    entry: invoiceVoided({ ...invoice, subtotal: 1000n, tax: 100n, total: 1100n }),
    key: 'inv_1:voided',
    source: 'invoice inv_1',
    postings: [
      ['receivable:cus_1', -1100n],
      ['revenue', 1000n],
      ['tax_payable', 100n],
    ],
  },
  {
    // PRODUCT §11: 1122 fils + 112 tax = 1234, rounded down by 4 for Stripe KWD (step 10).
    movement: 'invoice finalized, rounded',
    entry: invoiceFinalized({ ...invoice, subtotal: 1122n, tax: 112n, rounding: 4n, total: 1230n }),
    key: 'inv_1:finalized',
    source: 'invoice inv_1',
    postings: [
      ['receivable:cus_1', 1230n],
      ['revenue', -1122n],
      ['tax_payable', -112n],
      ['rounding', 4n],
    ],
  },
  {
    movement: 'invoice voided, rounded',
    entry: invoiceVoided({ ...invoice, subtotal: 1122n, tax: 112n, rounding: 4n, total: 1230n }),
    key: 'inv_1:voided',
    source: 'invoice inv_1',
    postings: [
      ['receivable:cus_1', -1230n],
      ['revenue', 1122n],
      ['tax_payable', 112n],
      ['rounding', -4n],
    ],
  },
  {
    // PRODUCT §11: Stripe TND 12340 owed less a downgrade's 5729 leaves 6611, rounded again by 1.
    movement: 'OPEN invoice rounded again after a credit (what is left due back on the step)',
    entry: invoiceRoundedAgain({ ...invoice, amount: 1n, rounding: 3n }),
    key: 'inv_1:rounded:3',
    source: 'invoice inv_1',
    postings: [
      ['rounding', 1n],
      ['receivable:cus_1', -1n],
    ],
  },
  {
    movement: 'customer credit applied (proration credit used)',
    entry: customerCreditApplied({ ...invoice, amount: 300n }),
    key: 'inv_1:credit_applied',
    source: 'invoice inv_1',
    postings: [
      ['customer_credit:cus_1', 300n],
      ['receivable:cus_1', -300n],
    ],
  },
  {
    movement: 'customer credit returned (invoice voided)',
    entry: customerCreditReturned({ ...invoice, amount: 300n }),
    key: 'inv_1:credit_returned',
    source: 'invoice inv_1',
    postings: [
      ['receivable:cus_1', 300n],
      ['customer_credit:cus_1', -300n],
    ],
  },
  {
    movement: 'customer credit given back by a credit note (cancellation refund)',
    entry: invoiceCreditGivenBack({
      ...invoice,
      amount: 300n,
      subtotal: 240n,
      tax: 60n,
      creditReturned: 300n,
    }),
    key: 'inv_1:credit_given_back:300',
    source: 'invoice inv_1',
    postings: [
      ['refunds', 240n],
      ['tax_payable', 60n],
      ['customer_credit:cus_1', -300n],
    ],
  },
  {
    movement: 'customer credit that paid a rounded invoice given back whole (1122 + 112 − 4 of rounding)',
    entry: invoiceCreditGivenBack({
      ...invoice,
      amount: 1230n,
      subtotal: 1122n,
      tax: 112n,
      rounding: 4n,
      creditReturned: 1230n,
    }),
    key: 'inv_1:credit_given_back:1230',
    source: 'invoice inv_1',
    postings: [
      ['refunds', 1122n],
      ['tax_payable', 112n],
      ['rounding', -4n],
      ['customer_credit:cus_1', -1230n],
    ],
  },
  {
    movement:
      'cash the gateway cannot refund (below its step) given to the customer credit (Stripe KWD 667 owed, 660 to the card)',
    entry: invoiceCashCredited({
      ...invoice,
      amount: 7n,
      subtotal: 6n,
      tax: 1n,
      cashCredited: 7n,
    }),
    key: 'inv_1:cash_credited:7',
    source: 'invoice inv_1',
    postings: [
      ['refunds', 6n],
      ['tax_payable', 1n],
      ['customer_credit:cus_1', -7n],
    ],
  },
  {
    movement: 'bad debt written off',
    entry: badDebtWrittenOff({ ...invoice, amount: 800n }),
    key: 'inv_1:uncollectible',
    source: 'invoice inv_1',
    postings: [
      ['bad_debt', 800n],
      ['receivable:cus_1', -800n],
    ],
  },
  {
    movement: 'bad debt recovered',
    entry: badDebtRecovered({ ...invoice, amount: 200n, amountPaid: 500n }),
    key: 'inv_1:recovered:500',
    source: 'invoice inv_1',
    postings: [
      ['receivable:cus_1', 200n],
      ['bad_debt', -200n],
    ],
  },
  {
    movement: 'bad debt written off again (its recovering payment voided)',
    entry: badDebtWrittenOff({ ...invoice, amount: 800n, writeOff: 2 }),
    key: 'inv_1:uncollectible:2',
    source: 'invoice inv_1',
    postings: [
      ['bad_debt', 800n],
      ['receivable:cus_1', -800n],
    ],
  },
  {
    movement: 'bad debt recovered of a second write-off',
    entry: badDebtRecovered({ ...invoice, amount: 200n, amountPaid: 500n, writeOff: 2 }),
    key: 'inv_1:recovered:2:500',
    source: 'invoice inv_1',
    postings: [
      ['receivable:cus_1', 200n],
      ['bad_debt', -200n],
    ],
  },
  {
    movement: 'offline payment',
    entry: offlinePaymentReceived({ ...invoice, offlinePaymentId: 'op_1', method: 'BANK', amount: 400n }),
    key: 'op_1',
    source: 'offline_payment op_1',
    postings: [
      ['offline_receipts', 400n],
      ['receivable:cus_1', -400n],
    ],
  },
  {
    movement: 'offline payment reversed (a bounced cheque)',
    entry: offlinePaymentReversed({ ...invoice, offlinePaymentId: 'op_1', amount: 400n }),
    key: 'op_1:reversed',
    source: 'offline_payment op_1',
    postings: [
      ['receivable:cus_1', 400n],
      ['offline_receipts', -400n],
    ],
  },
  {
    movement: 'overpayment credit taken back when an offline payment is reversed',
    entry: offlineOverpaymentReversed({ ...invoice, offlinePaymentId: 'op_1', amount: 300n }),
    key: 'op_1:overpaid_reversed',
    source: 'offline_payment op_1',
    postings: [
      ['customer_credit:cus_1', 300n],
      ['receivable:cus_1', -300n],
    ],
  },
  {
    movement: 'payment succeeded',
    entry: paymentSucceeded({ ...payment, amount: 1100n }),
    key: 'txn_1:succeeded',
    source: 'transaction txn_1',
    postings: [
      ['gateway_clearing:stripe', 1100n],
      ['receivable:cus_1', -1100n],
    ],
  },
  {
    movement: 'payment succeeded on a gateway account (its own clearing account)',
    entry: paymentSucceeded({ ...payment, gatewayAccount: 'gwa_eu', amount: 1100n }),
    key: 'txn_1:succeeded',
    source: 'transaction txn_1',
    postings: [
      ['gateway_clearing:stripe:gwa_eu', 1100n],
      ['receivable:cus_1', -1100n],
    ],
  },
  {
    movement: 'payment beyond what the invoice asked',
    entry: paymentOverpaid({ ...payment, invoiceId: 'inv_1', amount: 100n }),
    key: 'txn_1:overpaid',
    source: 'transaction txn_1',
    postings: [
      ['receivable:cus_1', 100n],
      ['customer_credit:cus_1', -100n],
    ],
  },
  {
    movement: 'payment voided before settlement',
    entry: paymentVoided({ ...payment, amount: 1100n }),
    key: 'txn_1:voided',
    source: 'transaction txn_1',
    postings: [
      ['receivable:cus_1', 1100n],
      ['gateway_clearing:stripe', -1100n],
    ],
  },
  {
    movement: 'the customer credit a voided payment made',
    entry: overpaymentVoided({ ...payment, amount: 100n }),
    key: 'txn_1:overpaid_voided',
    source: 'transaction txn_1',
    postings: [
      ['customer_credit:cus_1', 100n],
      ['receivable:cus_1', -100n],
    ],
  },
  {
    movement: 'the part of a payment its gateway settled short (USD 100.00 booked, 80.00 settled)',
    entry: paymentSettledShort({ ...payment, settlementLineId: 'stl_1', amount: 2000n }),
    key: 'txn_1:settled_short:stl_1',
    source: 'transaction txn_1',
    postings: [
      ['receivable:cus_1', 2000n],
      ['gateway_clearing:stripe', -2000n],
    ],
  },
  {
    movement: 'the customer credit an overpaying payment made, settled short',
    entry: overpaymentSettledShort({ ...payment, settlementLineId: 'stl_1', amount: 500n }),
    key: 'txn_1:overpaid_settled_short:stl_1',
    source: 'transaction txn_1',
    postings: [
      ['customer_credit:cus_1', 500n],
      ['receivable:cus_1', -500n],
    ],
  },
  {
    movement: 'refund to card of an invoice (credit note 1000 + 100 tax)',
    entry: refundSucceeded({
      ...refund,
      kind: 'invoice',
      customerId: 'cus_1',
      creditPaidBack: 0n,
      creditNote: { subtotal: 1000n, tax: 100n },
    }),
    key: 're_1:succeeded',
    source: 'refund re_1',
    postings: [
      ['refunds', 1000n],
      ['tax_payable', 100n],
      ['gateway_clearing:paypal', -1100n],
    ],
  },
  {
    // PRODUCT §11: all of a Stripe KWD invoice of 1122 + 112 rounded by 4 refunded, 1230.
    movement: 'refund of everything a rounded invoice asked (note 1122 + 112 − 4 of rounding)',
    entry: refundSucceeded({
      ...refund,
      amount: 1230n,
      kind: 'invoice',
      customerId: 'cus_1',
      creditPaidBack: 0n,
      creditNote: { subtotal: 1122n, tax: 112n, rounding: 4n },
    }),
    key: 're_1:succeeded',
    source: 'refund re_1',
    postings: [
      ['refunds', 1122n],
      ['tax_payable', 112n],
      ['rounding', -4n],
      ['gateway_clearing:paypal', -1230n],
    ],
  },
  {
    movement: 'refund of an invoice paying back an overpayment first',
    entry: refundSucceeded({
      ...refund,
      kind: 'invoice',
      customerId: 'cus_1',
      creditPaidBack: 100n,
      creditNote: { subtotal: 910n, tax: 90n },
    }),
    key: 're_1:succeeded',
    source: 'refund re_1',
    postings: [
      ['customer_credit:cus_1', 100n],
      ['refunds', 910n],
      ['tax_payable', 90n],
      ['gateway_clearing:paypal', -1100n],
    ],
  },
  {
    movement: 'refund of an invoice without credit note',
    entry: refundSucceeded({
      ...refund,
      kind: 'invoice',
      customerId: 'cus_1',
      creditPaidBack: 0n,
      creditNote: undefined,
    }),
    key: 're_1:succeeded',
    source: 'refund re_1',
    postings: [
      ['refunds', 1100n],
      ['gateway_clearing:paypal', -1100n],
    ],
  },
  {
    movement: 'refund of a payment without invoice',
    entry: refundSucceeded({ ...refund, kind: 'payment' }),
    key: 're_1:succeeded',
    source: 'refund re_1',
    postings: [
      ['refunds', 1100n],
      ['gateway_clearing:paypal', -1100n],
    ],
  },
  {
    movement: 'refund of customer credit to card',
    entry: refundSucceeded({ ...refund, kind: 'customer_credit', customerId: 'cus_1' }),
    key: 're_1:succeeded',
    source: 'refund re_1',
    postings: [
      ['customer_credit:cus_1', 1100n],
      ['gateway_clearing:paypal', -1100n],
    ],
  },
  {
    movement: 'refund reversed (failed after succeeding)',
    entry: refundReversed({
      ...refund,
      kind: 'invoice',
      customerId: 'cus_1',
      creditPaidBack: 0n,
      creditNote: { subtotal: 1000n, tax: 100n },
    }),
    key: 're_1:reversed',
    source: 'refund re_1',
    postings: [
      ['refunds', -1000n],
      ['tax_payable', -100n],
      ['gateway_clearing:paypal', 1100n],
    ],
  },
  {
    movement: 'dispute opened',
    entry: disputeOpened(dispute),
    key: 'dp_1:opened',
    source: 'dispute dp_1',
    postings: [
      ['disputed_funds', 500n],
      ['gateway_clearing:stripe', -500n],
    ],
  },
  {
    movement: 'dispute opened on a gateway account (its own clearing account)',
    entry: disputeOpened({ ...dispute, gatewayAccount: 'gwa_eu' }),
    key: 'dp_1:opened',
    source: 'dispute dp_1',
    postings: [
      ['disputed_funds', 500n],
      ['gateway_clearing:stripe:gwa_eu', -500n],
    ],
  },
  {
    movement: 'dispute won',
    entry: disputeWon(dispute),
    key: 'dp_1:won',
    source: 'dispute dp_1',
    postings: [
      ['gateway_clearing:stripe', 500n],
      ['disputed_funds', -500n],
    ],
  },
  {
    movement: 'dispute lost',
    entry: disputeLost(dispute),
    key: 'dp_1:lost',
    source: 'dispute dp_1',
    postings: [
      ['chargeback_losses', 500n],
      ['disputed_funds', -500n],
    ],
  },
  {
    movement: 'dispute lost for less than withheld: the rest of the hold released',
    entry: disputeHoldReleased(dispute),
    key: 'dp_1:released',
    source: 'dispute dp_1',
    postings: [
      ['gateway_clearing:stripe', 500n],
      ['disputed_funds', -500n],
    ],
  },
  {
    movement: 'dispute lost, paid to the customer by a refund',
    entry: disputeLostByRefund({ ...dispute, refundId: 're_1' }),
    key: 'dp_1:refunded',
    source: 'dispute dp_1',
    postings: [
      ['gateway_clearing:stripe', 500n],
      ['disputed_funds', -500n],
    ],
  },
  {
    movement: 'open claim whose hold paid a refund of the same amount (PayPal)',
    entry: disputeHoldRefunded({ ...dispute, refundId: 're_1' }),
    key: 'dp_1:hold_refunded:re_1',
    source: 'dispute dp_1',
    postings: [
      ['gateway_clearing:stripe', 500n],
      ['disputed_funds', -500n],
    ],
  },
  {
    movement: 'claim leaving open (or its refund failed): the hold that paid the refund put back',
    entry: disputeHoldRestored({ ...dispute, refundId: 're_1' }),
    key: 'dp_1:hold_restored:re_1',
    source: 'dispute dp_1',
    postings: [
      ['disputed_funds', 500n],
      ['gateway_clearing:stripe', -500n],
    ],
  },
  {
    movement: 'dispute booked lost, then its refund seen',
    entry: disputeLossRefunded({ ...dispute, refundId: 're_1' }),
    key: 'dp_1:refunded_after_loss',
    source: 'dispute dp_1',
    postings: [
      ['gateway_clearing:stripe', 500n],
      ['chargeback_losses', -500n],
    ],
  },
  {
    movement: 'chargeback booked lost, then decided for the merchant: the money back',
    entry: disputeLossReturned(dispute),
    key: 'dp_1:loss_returned',
    source: 'dispute dp_1',
    postings: [
      ['gateway_clearing:stripe', 500n],
      ['chargeback_losses', -500n],
    ],
  },
  {
    movement: "dispute lost: the invoice's overpayment taken off the customer's credit",
    entry: disputeOverpaymentChargedBack({
      disputeId: 'dp_1',
      customerId: 'cus_1',
      amount: 300n,
      currency: 'EUR',
    }),
    key: 'dp_1:overpayment_charged_back',
    source: 'dispute dp_1',
    postings: [
      ['customer_credit:cus_1', 300n],
      ['chargeback_losses', -300n],
    ],
  },
  {
    movement: "dispute won after its loss: the overpayment taken is the customer's credit again",
    entry: disputeOverpaymentReturned({
      disputeId: 'dp_1',
      customerId: 'cus_1',
      amount: 300n,
      currency: 'EUR',
    }),
    key: 'dp_1:overpayment_returned',
    source: 'dispute dp_1',
    postings: [
      ['chargeback_losses', 300n],
      ['customer_credit:cus_1', -300n],
    ],
  },
  {
    movement: "a lost dispute's share of the overpayment raised: more taken off the customer's credit",
    entry: disputeOverpaymentShareChanged({
      disputeId: 'dp_1',
      customerId: 'cus_1',
      amount: 300n,
      currency: 'EUR',
      cause: 'txn_2:overpaid',
    }),
    key: 'dp_1:overpayment_share:txn_2:overpaid',
    source: 'dispute dp_1',
    postings: [
      ['customer_credit:cus_1', 300n],
      ['chargeback_losses', -300n],
    ],
  },
  {
    movement: "a lost dispute's share of the overpayment lowered: given back to the customer's credit",
    entry: disputeOverpaymentShareChanged({
      disputeId: 'dp_1',
      customerId: 'cus_1',
      amount: -300n,
      currency: 'EUR',
      cause: 'txn_2:voided',
    }),
    key: 'dp_1:overpayment_share:txn_2:voided',
    source: 'dispute dp_1',
    postings: [
      ['customer_credit:cus_1', -300n],
      ['chargeback_losses', 300n],
    ],
  },
  {
    movement: 'proration credit made (downgrade)',
    entry: prorationCredited({
      subscriptionId: 'sub_1',
      customerId: 'cus_1',
      currency: 'EUR',
      subtotal: -500n,
      tax: -50n,
      total: -550n,
      at: new Date('2026-03-15T12:00:00Z'),
      from: { planId: 'plan_pro', quantity: 2 },
      to: { planId: 'plan_basic', quantity: 2 },
    }),
    key: 'sub_1:proration_credit:2026-03-15T12:00:00.000Z:plan_pro*2:plan_basic*2',
    source: 'subscription sub_1',
    postings: [
      ['revenue', 500n],
      ['tax_payable', 50n],
      ['customer_credit:cus_1', -550n],
    ],
  },
  {
    movement: 'proration credit of a change of tax alone',
    entry: prorationCredited({
      subscriptionId: 'sub_1',
      customerId: 'cus_1',
      currency: 'EUR',
      subtotal: 0n,
      tax: -20n,
      total: -20n,
      at: new Date('2026-03-15T12:00:00Z'),
      from: { planId: 'plan_taxed', quantity: 1 },
      to: { planId: 'plan_untaxed', quantity: 1 },
    }),
    key: 'sub_1:proration_credit:2026-03-15T12:00:00.000Z:plan_taxed*1:plan_untaxed*1',
    source: 'subscription sub_1',
    postings: [
      ['tax_payable', 20n],
      ['customer_credit:cus_1', -20n],
    ],
  },
  {
    movement: 'proration credit taken off the OPEN period invoice',
    entry: prorationCreditedOnInvoice({
      ...invoice,
      subtotal: -400n,
      tax: -100n,
      total: -500n,
      prorationCredited: 500n,
    }),
    key: 'inv_1:proration_credited:500',
    source: 'invoice inv_1',
    postings: [
      ['revenue', 400n],
      ['tax_payable', 100n],
      ['receivable:cus_1', -500n],
    ],
  },
  {
    movement: 'proration credit taken off an invoice undone by its void',
    entry: prorationCreditVoided({ ...invoice, subtotal: -400n, tax: -100n, total: -500n }),
    key: 'inv_1:proration_credit_voided',
    source: 'invoice inv_1',
    postings: [
      ['revenue', -400n],
      ['tax_payable', -100n],
      ['receivable:cus_1', 500n],
    ],
  },
  {
    movement: 'subscription credit moved to the customer (migration 0015)',
    entry: subscriptionCreditMoved({
      subscriptionId: 'sub_1',
      customerId: 'cus_1',
      currency: 'EUR',
      amount: 500n,
      tax: 50n,
    }),
    key: 'sub_1:credit_moved',
    source: 'subscription sub_1',
    postings: [
      ['receivable:cus_1', 500n],
      ['tax_payable', 50n],
      ['customer_credit:cus_1', -550n],
    ],
  },
  {
    movement: "a charge's fee known (its settlement line)",
    entry: settlementLineBooked({ ...settled, kind: 'charge', gross: 1000n, fee: 59n, net: 941n }),
    key: 'stl_1:booked',
    source: 'settlement_line stl_1',
    postings: [
      ['gateway_fees:stripe', 59n],
      ['gateway_clearing:stripe', -59n],
    ],
  },
  {
    movement: 'a fee given back with a refund',
    entry: settlementLineBooked({ ...settled, kind: 'refund', gross: -1000n, fee: -29n, net: -971n }),
    key: 'stl_1:booked',
    source: 'settlement_line stl_1',
    postings: [
      ['gateway_fees:stripe', -29n],
      ['gateway_clearing:stripe', 29n],
    ],
  },
  {
    movement: 'a standalone gateway fee',
    entry: settlementLineBooked({ ...settled, kind: 'fee', gross: -200n, fee: 0n, net: -200n }),
    key: 'stl_1:booked',
    source: 'settlement_line stl_1',
    postings: [
      ['gateway_fees:stripe', 200n],
      ['gateway_clearing:stripe', -200n],
    ],
  },
  {
    movement: 'a settlement adjustment',
    entry: settlementLineBooked({ ...settled, kind: 'adjustment', gross: 300n, fee: 0n, net: 300n }),
    key: 'stl_1:booked',
    source: 'settlement_line stl_1',
    postings: [
      ['gateway_clearing:stripe', 300n],
      ['settlement_adjustments:stripe', -300n],
    ],
  },
  {
    movement: 'payout sent',
    entry: payoutCreated(payout),
    key: 'pyo_1:created',
    source: 'payout pyo_1',
    postings: [
      ['payouts_in_transit:stripe:gwa_eu', 9_000n],
      ['gateway_clearing:stripe:gwa_eu', -9_000n],
    ],
  },
  {
    movement: 'payout arrived at the bank',
    entry: payoutPaid(payout),
    key: 'pyo_1:paid',
    source: 'payout pyo_1',
    postings: [
      ['bank:stripe:gwa_eu', 9_000n],
      ['payouts_in_transit:stripe:gwa_eu', -9_000n],
    ],
  },
  {
    movement: 'payout failed in transit',
    entry: payoutReturned({ ...payout, wasPaid: false }),
    key: 'pyo_1:returned',
    source: 'payout pyo_1',
    postings: [
      ['gateway_clearing:stripe:gwa_eu', 9_000n],
      ['payouts_in_transit:stripe:gwa_eu', -9_000n],
    ],
  },
  {
    movement: 'payout failed after it was reported paid',
    entry: payoutReturned({ ...payout, wasPaid: true }),
    key: 'pyo_1:returned',
    source: 'payout pyo_1',
    postings: [
      ['gateway_clearing:stripe:gwa_eu', 9_000n],
      ['bank:stripe:gwa_eu', -9_000n],
    ],
  },
];

describe('ledger movements (the chart of accounts in use)', () => {
  it.each(rows)('$movement', ({ entry, key, source, postings }) => {
    expect(entry.idempotencyKey).toBe(key);
    expect(`${entry.source.type} ${entry.source.id}`).toBe(source);
    expect(entry.postings.map((p) => [p.account.code, p.amount])).toEqual(postings);
    expect(entry.postings.every((p) => p.currency === 'EUR')).toBe(true);
    expect(entry.postings.reduce((sum, p) => sum + p.amount, 0n)).toBe(0n);
    expect(entry.description).toMatch(/\S/);
  });

  it('gives each account its type from the chart', () => {
    const types = new Map(
      rows.flatMap((row) => row.entry.postings.map((p) => [p.account.code, p.account.type])),
    );
    expect(Object.fromEntries(types)).toEqual({
      'receivable:cus_1': 'asset',
      'gateway_clearing:stripe': 'asset',
      'gateway_clearing:stripe:gwa_eu': 'asset',
      'gateway_clearing:paypal': 'asset',
      'customer_credit:cus_1': 'liability',
      revenue: 'revenue',
      tax_payable: 'liability',
      refunds: 'contra_revenue',
      disputed_funds: 'asset',
      chargeback_losses: 'expense',
      offline_receipts: 'asset',
      bad_debt: 'expense',
      rounding: 'expense',
      'gateway_fees:stripe': 'expense',
      'settlement_adjustments:stripe': 'expense',
      'payouts_in_transit:stripe:gwa_eu': 'asset',
      'bank:stripe:gwa_eu': 'asset',
    });
  });

  it('books a conversion through FX: clearing moves from the charge currency to the settlement currency', () => {
    // EUR 100.00 charged, settled as USD 108.00 less a USD 3.43 fee.
    const entry = settlementLineBooked({
      ...settled,
      currency: 'USD',
      kind: 'charge',
      gross: 10_800n,
      fee: 343n,
      net: 10_457n,
      original: { currency: 'EUR', amount: 10_000n },
    });
    expect(entry.postings.map((p) => [p.account.code, p.currency, p.amount])).toEqual([
      ['gateway_fees:stripe', 'USD', 343n],
      ['gateway_clearing:stripe', 'USD', -343n],
      ['gateway_clearing:stripe', 'EUR', -10_000n],
      ['fx:stripe', 'EUR', 10_000n],
      ['gateway_clearing:stripe', 'USD', 10_800n],
      ['fx:stripe', 'USD', -10_800n],
    ]);
    expect(settlementLineMoves({ ...settled, kind: 'charge', gross: 1000n, fee: 0n, net: 1000n })).toBe(
      false,
    );
  });

  it('derives every key from the business fact alone', () => {
    const again = prorationCredited({
      subscriptionId: 'sub_1',
      customerId: 'cus_1',
      currency: 'EUR',
      subtotal: -500n,
      tax: -50n,
      total: -550n,
      at: new Date('2026-03-15T12:00:00Z'),
      from: { planId: 'plan_pro', quantity: 2 },
      to: { planId: 'plan_basic', quantity: 2 },
    });
    expect(again).toEqual(rows.find((row) => row.movement === 'proration credit made (downgrade)')?.entry);
  });
});
