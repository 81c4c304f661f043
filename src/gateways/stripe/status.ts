import type Stripe from 'stripe';
import { PAYOUT_STATUSES, type PayoutStatus, type SettlementLineKind } from '../settlement.ts';
import type { ChargeOutcome, PaymentEventType, RefundOutcome } from '../types.ts';
import { withDeclineCode } from './conventions.ts';

/**
 * Stripe's statuses in billhook's terms: THE tables for PaymentIntents (charges, their status checks
 * and voids), Refunds and Disputes, for both the API answers (client.ts) and the webhooks
 * (webhook.ts), and for the settlement data (settlement.ts): balance transaction types and payout
 * statuses. billhook charges only through PaymentIntents, so a Charge object's own `status` is
 * never read: `charge.*` events are read only for their refunds and disputes.
 */

/**
 * THE table of PaymentIntent statuses (https://docs.stripe.com/payments/paymentintents/lifecycle)
 * as outcomes of an off-session charge:
 *
 * | `status`                                | outcome                                              |
 * |-----------------------------------------|------------------------------------------------------|
 * | `succeeded`                             | succeeded                                            |
 * | `processing`, `requires_capture`        | pending                                              |
 * | `requires_action`                       | declined `authentication_required` (off-session)     |
 * | `requires_payment_method`, `canceled`   | declined with `last_payment_error`                   |
 * | `requires_confirmation`, anything else  | unknown (never sent unconfirmed; a new status)       |
 */
export function outcomeOfIntent(intent: Stripe.PaymentIntent): ChargeOutcome {
  switch (intent.status) {
    case 'succeeded':
      return { status: 'succeeded', gatewayTransactionId: intent.id };
    case 'processing':
    case 'requires_capture':
      return { status: 'pending', gatewayTransactionId: intent.id };
    case 'requires_action':
      return {
        status: 'declined',
        code: 'authentication_required',
        message: 'the payment needs customer authentication, which an off-session charge cannot give',
        gatewayTransactionId: intent.id,
      };
    case 'requires_payment_method':
    case 'canceled':
      return {
        status: 'declined',
        code: intent.last_payment_error?.code ?? intent.status,
        message: withDeclineCode(
          intent.last_payment_error?.message ?? `payment intent is ${intent.status}`,
          intent.last_payment_error?.decline_code,
        ),
        gatewayTransactionId: intent.id,
      };
    default:
      return {
        status: 'unknown',
        message: `payment intent ${intent.id} has status ${intent.status}, which billhook does not read as an outcome`,
      };
  }
}

/**
 * Every PaymentIntent status Stripe documents (https://docs.stripe.com/api/payment_intents/object#payment_intent_object-status):
 * a cancel (void) answered with one of these other than `canceled` is a refusal; any other is unknown.
 */
export const INTENT_STATUSES: ReadonlySet<string> = new Set([
  'requires_payment_method',
  'requires_confirmation',
  'requires_action',
  'processing',
  'requires_capture',
  'canceled',
  'succeeded',
]);

/**
 * THE table of Refund statuses (https://docs.stripe.com/api/refunds/object#refund_object-status:
 * `pending`, `requires_action`, `succeeded`, `failed`, `canceled`; failed refunds:
 * https://docs.stripe.com/refunds#failed-refunds) as outcomes of a refund call:
 *
 * | `status`                     | outcome                                   |
 * |------------------------------|-------------------------------------------|
 * | `succeeded`                  | succeeded                                 |
 * | `pending`, `requires_action`  | pending (the webhook reports the end)     |
 * | `failed`, `canceled`         | declined with `failure_reason`            |
 * | anything else                | unknown (a status this table does not know) |
 */
export function refundOutcomeOf(
  refund: Pick<Stripe.Refund, 'id' | 'status' | 'failure_reason'>,
): RefundOutcome {
  switch (refund.status) {
    case 'succeeded':
      return { status: 'succeeded', gatewayRefundId: refund.id };
    case 'pending':
    case 'requires_action':
      return { status: 'pending', gatewayRefundId: refund.id };
    case 'failed':
    case 'canceled':
      return {
        status: 'declined',
        code: refund.failure_reason ?? refund.status,
        message: `refund ${refund.status}`,
      };
    default:
      return {
        status: 'unknown',
        message: `refund ${refund.id} has status ${refund.status}, which billhook does not know`,
      };
  }
}

/**
 * PaymentIntent event types → canonical charge event (https://docs.stripe.com/payments/paymentintents/lifecycle,
 * https://docs.stripe.com/api/events/types#event_types-payment_intent.succeeded): succeeded, failed
 * (back to `requires_payment_method`), canceled, processing. Other PaymentIntent events are not booked.
 */
export const PAYMENT_INTENT_EVENTS: ReadonlyMap<string, PaymentEventType> = new Map([
  ['payment_intent.succeeded', 'charge.succeeded'],
  ['payment_intent.payment_failed', 'charge.failed'],
  ['payment_intent.canceled', 'charge.canceled'],
  ['payment_intent.processing', 'charge.pending'],
]);

/**
 * Refund status in a webhook → canonical refund event (https://docs.stripe.com/api/refunds/object#refund_object-status):
 * `succeeded` → refund.succeeded; `failed` / `canceled` → refund.failed; anything else (`pending`,
 * `requires_action`, none) → refund.pending.
 */
export function refundEventType(status: string | null | undefined): PaymentEventType {
  if (status === 'succeeded') return 'refund.succeeded';
  if (status === 'failed' || status === 'canceled') return 'refund.failed';
  return 'refund.pending';
}

/**
 * Dispute status → canonical dispute event (https://docs.stripe.com/api/disputes/object#dispute_object-status,
 * https://docs.stripe.com/disputes/how-disputes-work#inquiries): the `warning_*` statuses are an
 * inquiry, which withdraws no funds (the real `warning_closed` event shows `balance_transactions: []`)
 * and so moves no money; `needs_response` / `under_review` are a chargeback whose funds Stripe
 * withdrew; `won` / `lost` its outcome.
 */
const DISPUTE_STATUS: ReadonlyMap<string, PaymentEventType> = new Map([
  ['warning_needs_response', 'dispute.inquiry'],
  ['warning_under_review', 'dispute.inquiry'],
  ['warning_closed', 'dispute.inquiry_closed'],
  ['needs_response', 'dispute.opened'],
  ['under_review', 'dispute.opened'],
  ['won', 'dispute.won'],
  ['lost', 'dispute.lost'],
]);

/**
 * A dispute event → canonical dispute event, or undefined for events billhook does not book:
 * - `charge.dispute.created`: by its status (an inquiry, or a chargeback with its funds withdrawn);
 *   a status Stripe adds later is taken as a chargeback (Stripe withdraws the funds of a dispute
 *   that is not an inquiry, https://docs.stripe.com/disputes/how-disputes-work);
 * - `charge.dispute.funds_withdrawn`: the funds left whatever the status says (an inquiry that
 *   escalated) → opened, or its outcome when it is already decided;
 * - `charge.dispute.closed`: by its status (won, lost, or an inquiry closed with nothing withdrawn);
 * - others (`updated`, `funds_reinstated`) move nothing of their own: `closed` reports the outcome.
 */
export function disputeEventType(type: string, status: string): PaymentEventType | undefined {
  const mapped = DISPUTE_STATUS.get(status);
  if (type === 'charge.dispute.created') return mapped ?? 'dispute.opened';
  if (type === 'charge.dispute.funds_withdrawn') {
    return mapped === 'dispute.won' || mapped === 'dispute.lost' ? mapped : 'dispute.opened';
  }
  if (type !== 'charge.dispute.closed') return undefined;
  return mapped === 'dispute.won' || mapped === 'dispute.lost' || mapped === 'dispute.inquiry_closed'
    ? mapped
    : undefined;
}

/**
 * THE table of balance transaction types (https://docs.stripe.com/reports/balance-transaction-types,
 * the `type` enum of https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-type)
 * as settlement line kinds (src/gateways/settlement.ts):
 *
 * | `type`                                                                   | kind                       |
 * |--------------------------------------------------------------------------|----------------------------|
 * | `charge`, `payment` (a card / a non-card charge, source `ch_…` / `py_…`)  | charge                     |
 * | `refund`, `payment_refund` (source `re_…` / `pyr_…`)                      | refund                     |
 * | `refund_failure` (a failed refund's money back in the balance, source `re_…`) | refund (gross positive) |
 * | `adjustment` of `reporting_category` `refund_failure` (the same, as Stripe renders it now) | refund (gross positive) |
 * | `adjustment` whose source is a dispute (`dp_…` / `du_…`)                  | dispute                    |
 * | `stripe_fee`, `stripe_fx_fee`, `tax_fee`, `application_fee`, `application_fee_refund` | fee           |
 * | `payout` (the payout's own withdrawal from the balance)                   | not a line: the payout     |
 * | `payout_failure`, `payout_cancel` (a failed or canceled payout's money back in the balance) | payout_return |
 * | anything else (`adjustment` of another source, `reserve_*`, …)            | adjustment (for a person)  |
 *
 * A dispute's withdrawal and its reinstatement when won are `adjustment`s whose source is the dispute
 * (https://docs.stripe.com/reports/reporting-categories: `reporting_category` separates
 * `type=adjustment` into disputes, dispute reversals and failed refunds; the real withdrawal in
 * test/fixtures/stripe/api.balance_transaction.dispute.extracted.json has source `du_…`). A failed
 * refund's money coming back is such an `adjustment` of category `refund_failure` ("Failed refunds",
 * the same page), the transaction a Refund names as `failure_balance_transaction` ("If the refund
 * failed, this balance transaction describes the adjustment made on your account balance that
 * reverses the initial balance transaction", https://docs.stripe.com/api/refunds/object#refund_object-failure_balance_transaction);
 * its source is the refund. It is a refund line, never an adjustment: billhook books that money back
 * once, with the refund's `re_…:reversed`.
 */
const BALANCE_TRANSACTION_KINDS: ReadonlyMap<string, SettlementLineKind> = new Map([
  ['charge', 'charge'],
  ['payment', 'charge'],
  ['refund', 'refund'],
  ['payment_refund', 'refund'],
  ['refund_failure', 'refund'],
  ['stripe_fee', 'fee'],
  ['stripe_fx_fee', 'fee'],
  ['tax_fee', 'fee'],
  ['application_fee', 'fee'],
  ['application_fee_refund', 'fee'],
  ['payout_failure', 'payout_return'],
  ['payout_cancel', 'payout_return'],
]);

/** True for a Stripe dispute id (`dp_…`, or `du_…` of newer accounts; https://docs.stripe.com/api/disputes/object#dispute_object-id). */
export const isDisputeId = (id: string): boolean => id.startsWith('dp_') || id.startsWith('du_');

/**
 * The kind of a balance transaction of `type` and `reportingCategory` (its `reporting_category`)
 * whose source is `sourceId` (see the table above), or `payout` for the payout's own transaction,
 * which is no line of it.
 */
export function balanceTransactionKind(
  type: string,
  sourceId: string | undefined,
  reportingCategory?: string | null,
): SettlementLineKind | 'payout' {
  if (type === 'payout') return 'payout';
  if (type === 'adjustment' && sourceId && isDisputeId(sourceId)) return 'dispute';
  if (type === 'adjustment' && reportingCategory === 'refund_failure') return 'refund';
  return BALANCE_TRANSACTION_KINDS.get(type) ?? 'adjustment';
}

/**
 * A payout's status as billhook's (https://docs.stripe.com/api/payouts/object#payout_object-status:
 * `paid`, `pending`, `in_transit`, `canceled`, `failed`: billhook's words are Stripe's), or undefined
 * for a status Stripe documents no more (read as a payload error, never guessed).
 */
export function payoutStatusOf(status: string): PayoutStatus | undefined {
  return (PAYOUT_STATUSES as readonly string[]).includes(status) ? (status as PayoutStatus) : undefined;
}

/**
 * Stripe payout event types (https://docs.stripe.com/api/events/types#event_types-payout.paid): each
 * reports the payout as it now is, normalised to one `payout.updated` event.
 */
export const PAYOUT_EVENTS: ReadonlySet<string> = new Set([
  'payout.created',
  'payout.updated',
  'payout.paid',
  'payout.failed',
  'payout.canceled',
  'payout.reconciliation_completed',
]);

/**
 * Charge event types whose charge may name its balance transaction (`balance_transaction`, set once
 * Stripe booked the charge in the balance: https://docs.stripe.com/api/charges/object#charge_object-balance_transaction).
 */
export const CHARGE_BALANCE_EVENTS: ReadonlySet<string> = new Set(['charge.succeeded', 'charge.updated']);
