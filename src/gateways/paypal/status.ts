import type { PaymentEventType } from '../types.ts';

/**
 * The one place where PayPal's statuses become billhook's outcomes. Rule everywhere: only an
 * explicit success is success, only an explicit failure is failure, only a documented in-flight
 * status is pending; a status these tables do not know (one PayPal adds later) is `unknown`
 * (PRODUCT.md §11): never a decline, which would free the invoice for a second charge.
 */

/** What a PayPal status means for money: the outcome kinds of charges, refunds and disputes. */
export type StatusMeaning = 'succeeded' | 'pending' | 'failed';

/**
 * Capture status → what it says about the charge
 * (https://developer.paypal.com/docs/api/orders/v2/#definition-capture_status):
 * - `COMPLETED`: funds credited to us → succeeded;
 * - `PARTIALLY_REFUNDED` / `REFUNDED`: the capture succeeded and was later (partly) refunded; the
 *   refunds are their own events, so for the charge itself → succeeded;
 * - `DECLINED` ("the funds could not be captured") and `FAILED` → failed;
 * - `PENDING` (see `status_details.reason`, e.g. `UNILATERAL`, `PENDING_REVIEW`) → pending.
 */
export const CAPTURE_STATUS: ReadonlyMap<string, StatusMeaning> = new Map([
  ['COMPLETED', 'succeeded'],
  ['PARTIALLY_REFUNDED', 'succeeded'],
  ['REFUNDED', 'succeeded'],
  ['DECLINED', 'failed'],
  ['FAILED', 'failed'],
  ['PENDING', 'pending'],
]);

/**
 * Refund status → outcome (https://developer.paypal.com/docs/api/payments/v2/#definition-refund_status):
 * `COMPLETED` → succeeded; `FAILED` / `CANCELLED` → failed; `PENDING` → pending.
 */
export const REFUND_STATUS: ReadonlyMap<string, StatusMeaning> = new Map([
  ['COMPLETED', 'succeeded'],
  ['FAILED', 'failed'],
  ['CANCELLED', 'failed'],
  ['PENDING', 'pending'],
]);

/** A status's meaning in `table`, `unknown` when PayPal sent one the table does not list. */
export function meaningOf(
  table: ReadonlyMap<string, StatusMeaning>,
  status: string,
): StatusMeaning | 'unknown' {
  return table.get(status) ?? 'unknown';
}

/**
 * Webhook event type → canonical charge event for the `PAYMENT.CAPTURE.*` events whose resource is
 * the capture (https://developer.paypal.com/api/rest/webhooks/event-names/#payments-v2):
 * COMPLETED → charge.succeeded; DECLINED and DENIED (older name of a declined capture) →
 * charge.failed; PENDING → charge.pending.
 */
export const CAPTURE_EVENTS: ReadonlyMap<string, PaymentEventType> = new Map([
  ['PAYMENT.CAPTURE.COMPLETED', 'charge.succeeded'],
  ['PAYMENT.CAPTURE.DECLINED', 'charge.failed'],
  ['PAYMENT.CAPTURE.DENIED', 'charge.failed'],
  ['PAYMENT.CAPTURE.PENDING', 'charge.pending'],
]);

/**
 * Refund status (of a `PAYMENT.CAPTURE.REFUNDED` resource) → canonical refund event. A status the
 * table does not know is reported as `refund.pending`, which moves no money and leaves the refund
 * open for the next event or a person.
 */
export const REFUND_EVENT: Readonly<Record<StatusMeaning | 'unknown', PaymentEventType>> = {
  succeeded: 'refund.succeeded',
  failed: 'refund.failed',
  pending: 'refund.pending',
  unknown: 'refund.pending',
};

/**
 * A resolved dispute's `dispute_outcome.outcome_code` → what it means for our money
 * (https://developer.paypal.com/docs/api/customer-disputes/v1/#definition-dispute_outcome):
 * - `RESOLVED_SELLER_FAVOUR`, `CANCELED_BY_BUYER`, `DENIED` (the claim was denied): the held funds
 *   come back → won;
 * - `RESOLVED_WITH_PAYOUT` ("PayPal provided the merchant or customer with protection"): the payout
 *   is PayPal's, not taken from our balance → won;
 * - `RESOLVED_BUYER_FAVOUR`, `ACCEPTED` (we accepted the claim and refund it): the funds go to the
 *   customer → lost;
 * - `NONE` ("a dispute was created for the same transaction and the previous one was closed without
 *   a decision") or no outcome: still open.
 */
export const DISPUTE_OUTCOME: ReadonlyMap<string, 'dispute.won' | 'dispute.lost'> = new Map([
  ['RESOLVED_SELLER_FAVOUR', 'dispute.won'],
  ['CANCELED_BY_BUYER', 'dispute.won'],
  ['DENIED', 'dispute.won'],
  ['RESOLVED_WITH_PAYOUT', 'dispute.won'],
  ['RESOLVED_BUYER_FAVOUR', 'dispute.lost'],
  ['ACCEPTED', 'dispute.lost'],
]);

/** The dispute webhook events (https://developer.paypal.com/docs/disputes/webhooks/). */
export const DISPUTE_EVENT_TYPES: ReadonlySet<string> = new Set([
  'CUSTOMER.DISPUTE.CREATED',
  'CUSTOMER.DISPUTE.UPDATED',
  'CUSTOMER.DISPUTE.RESOLVED',
]);

/**
 * A dispute event → canonical dispute event: a `RESOLVED` dispute (by its `status`, whichever event
 * carries it) is won or lost by `DISPUTE_OUTCOME`; everything else (created, updated, waiting for a
 * response, under review, or resolved without a known outcome) keeps it open.
 */
export function disputeEventType(status: string, outcomeCode: string | undefined): PaymentEventType {
  if (status !== 'RESOLVED') return 'dispute.opened';
  return (outcomeCode && DISPUTE_OUTCOME.get(outcomeCode)) || 'dispute.opened';
}
