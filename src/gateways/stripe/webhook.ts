import Stripe from 'stripe';
import type { z } from 'zod';
import { abs } from '../../money/amount.ts';
import { parseJsonPayload, parsePayload } from '../payload.ts';
import type { PayoutReport, SettlementLine } from '../settlement.ts';
import {
  type PaymentEvent,
  type VerifiedDelivery,
  type WebhookHeaders,
  WebhookPayloadError,
  WebhookVerificationError,
  type WebhookVerifier,
} from '../types.ts';
import { amountOf } from './amounts.ts';
import { REFERENCE_KEY, withDeclineCode } from './conventions.ts';
import { Charge, ChargeBalance, Dispute, Envelope, PaymentIntent, Refund, RefundId } from './schemas.ts';
import { payoutReportOf, payoutWithLines, readPayout, settlementLineOf } from './settlement.ts';
import {
  CHARGE_BALANCE_EVENTS,
  disputeEventType,
  PAYMENT_INTENT_EVENTS,
  PAYOUT_EVENTS,
  refundEventType,
} from './status.ts';

const REFUND_EVENT_TYPES = new Set([
  'charge.refund.updated',
  'refund.created',
  'refund.updated',
  'refund.failed',
]);

const parse = <T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> =>
  parsePayload(schema, value, `Stripe ${what}`);

/**
 * Why a refund or dispute on charge `charge` without a PaymentIntent can match no billhook
 * transaction: billhook charges only through PaymentIntents (client.ts), and Stripe names the
 * PaymentIntent on every refund and dispute of a PaymentIntent's charge
 * (https://docs.stripe.com/api/refunds/object#refund_object-payment_intent,
 * https://docs.stripe.com/api/disputes/object#dispute_object-payment_intent).
 */
const withoutPaymentIntent = (charge: string | null | undefined): string =>
  `Stripe charge ${charge ?? '(none)'} has no PaymentIntent, so billhook did not make it (a Charges API or other integration's payment): book it by hand if it is yours`;

function refundEvent(eventId: string, occurredAt: Date, object: unknown): PaymentEvent {
  const refund = parse(Refund, object, 'refund');
  return {
    type: refundEventType(refund.status),
    gateway: 'stripe',
    gatewayEventId: eventId,
    gatewayTransactionId: refund.payment_intent ?? refund.charge ?? undefined,
    gatewayRefundId: refund.id,
    reference: refund.metadata?.[REFERENCE_KEY],
    amount: amountOf(refund.amount, refund.currency, `refund ${refund.id}`),
    currency: refund.currency,
    occurredAt,
    failureCode: refund.failure_reason ?? undefined,
    reason: refund.reason ?? undefined,
    unmatchable: refund.payment_intent ? undefined : withoutPaymentIntent(refund.charge),
    raw: object,
  };
}

/**
 * One refund event per refund of a charge (`charge.refunded`), each with event id `evt_…:re_…`; a
 * refund without its own payment_intent / charge takes the charge's. Refunds are also delivered as
 * refund.* events: both kinds dedupe on the refund id.
 */
function chargeRefundEvents(
  eventId: string,
  occurredAt: Date,
  charge: z.output<typeof Charge>,
  refunds: readonly object[],
): PaymentEvent[] {
  return refunds.map((refund) =>
    refundEvent(`${eventId}:${parse(RefundId, refund, 'refund').id}`, occurredAt, {
      payment_intent: charge.payment_intent,
      charge: charge.id,
      ...refund,
    }),
  );
}

/**
 * What the webhook half may ask Stripe (the client's calls, when `STRIPE_SECRET_KEY` is set); each
 * throws when Stripe does not answer, which makes the job retry.
 * - `refundsOfCharge`: every refund of a charge (`GET /v1/refunds?charge=`, all pages), what
 *   `charge.refunded` no longer lists since API 2022-11-15;
 * - `paymentIntentOfCharge`: the PaymentIntent of a charge (`GET /v1/charges/:id`), or null when it
 *   has none, for a refund or dispute rendered without `payment_intent` (an endpoint pinned to an
 *   API version older than the field).
 */
export interface StripeLookups {
  refundsOfCharge(chargeId: string): Promise<readonly object[]>;
  paymentIntentOfCharge(chargeId: string): Promise<string | null>;
  /**
   * A balance transaction with its source expanded (`GET /v1/balance_transactions/:id?expand[]=source`),
   * for the `settlement.line` of a charge event naming it; absent: charge events book nothing.
   */
  balanceTransaction?(id: string): Promise<unknown>;
  /**
   * Every balance transaction of a payout, sources expanded (`GET /v1/balance_transactions?payout=`,
   * all pages), for the lines of a `payout.updated`; absent: payouts are reported without lines.
   */
  payoutBalanceTransactions?(payoutId: string): Promise<readonly unknown[]>;
}

/**
 * The `payout.updated` event of a payout event: `amount` and `currency` the payout's
 * (`PaymentEvent`'s rule for settlement events), `payout` its report.
 */
function payoutEvent(eventId: string, occurredAt: Date, payout: PayoutReport, object: unknown): PaymentEvent {
  return {
    type: 'payout.updated',
    gateway: 'stripe',
    gatewayEventId: eventId,
    amount: payout.amount,
    currency: payout.currency,
    occurredAt,
    failureCode: payout.failureCode,
    payout,
    raw: object,
  };
}

/**
 * The `settlement.line` event of a charge's balance transaction: `amount` the line's gross without
 * its sign, `currency` the line's, and the payment, refund or dispute it is about.
 */
function settlementLineEvent(
  eventId: string,
  occurredAt: Date,
  line: SettlementLine,
  object: unknown,
): PaymentEvent {
  return {
    type: 'settlement.line',
    gateway: 'stripe',
    gatewayEventId: eventId,
    gatewayTransactionId: line.gatewayTransactionId,
    gatewayRefundId: line.gatewayRefundId,
    gatewayDisputeId: line.gatewayDisputeId,
    reference: line.reference,
    amount: abs(line.gross),
    currency: line.currency,
    occurredAt,
    settlementLine: line,
    raw: object,
  };
}

/**
 * The canonical events of a Stripe event (see `StripeWebhook.normalize`).
 * @throws WebhookPayloadError when a known event type's object has an unexpected shape
 */
function eventsOf(event: z.output<typeof Envelope>): PaymentEvent[] {
  const occurredAt = new Date(event.created * 1000);
  const object = event.data.object;
  const chargeType = PAYMENT_INTENT_EVENTS.get(event.type);
  if (chargeType) {
    const intent = parse(PaymentIntent, object, 'payment intent');
    const error = intent.last_payment_error;
    return [
      {
        type: chargeType,
        gateway: 'stripe',
        gatewayEventId: event.id,
        gatewayTransactionId: intent.id,
        reference: intent.metadata?.[REFERENCE_KEY],
        amount: amountOf(
          chargeType === 'charge.succeeded' ? (intent.amount_received ?? intent.amount) : intent.amount,
          intent.currency,
          `payment intent ${intent.id}`,
        ),
        currency: intent.currency,
        occurredAt,
        failureCode: error ? (error.code ?? undefined) : (intent.cancellation_reason ?? undefined),
        failureMessage: error?.message ? withDeclineCode(error.message, error.decline_code) : undefined,
        raw: object,
      },
    ];
  }
  if (REFUND_EVENT_TYPES.has(event.type)) return [refundEvent(event.id, occurredAt, object)];
  if (event.type === 'charge.refunded') {
    const charge = parse(Charge, object, 'charge');
    return chargeRefundEvents(event.id, occurredAt, charge, charge.refunds?.data ?? []);
  }
  if (PAYOUT_EVENTS.has(event.type)) {
    return [payoutEvent(event.id, occurredAt, payoutReportOf(readPayout(object)), object)];
  }
  if (CHARGE_BALANCE_EVENTS.has(event.type)) {
    // Its balance transaction is asked of Stripe (`normalize`, with a secret key): the shape only here.
    parse(ChargeBalance, object, 'charge');
    return [];
  }
  if (event.type.startsWith('charge.dispute.')) {
    const dispute = parse(Dispute, object, 'dispute');
    const type = disputeEventType(event.type, dispute.status);
    if (!type) return [];
    return [
      {
        type,
        gateway: 'stripe',
        gatewayEventId: event.id,
        gatewayTransactionId: dispute.payment_intent ?? dispute.charge ?? undefined,
        gatewayDisputeId: dispute.id,
        amount: amountOf(dispute.amount, dispute.currency, `dispute ${dispute.id}`),
        currency: dispute.currency,
        occurredAt,
        reason: dispute.reason ?? undefined,
        unmatchable: dispute.payment_intent ? undefined : withoutPaymentIntent(dispute.charge),
        raw: object,
      },
    ];
  }
  return [];
}

/**
 * `event` matched through its charge when it names no PaymentIntent (`unmatchable`, with the charge
 * id as `gatewayTransactionId`): the charge's PaymentIntent, asked of Stripe, becomes the event's
 * payment; a charge that has none stays unmatchable. Other events are returned as they are.
 */
async function withPaymentIntentOfCharge(event: PaymentEvent, lookups: StripeLookups): Promise<PaymentEvent> {
  const chargeId = event.gatewayTransactionId;
  if (!event.unmatchable || !chargeId?.startsWith('ch_')) return event;
  const paymentIntent = await lookups.paymentIntentOfCharge(chargeId);
  return paymentIntent ? { ...event, gatewayTransactionId: paymentIntent, unmatchable: undefined } : event;
}

/**
 * The timestamp a `Stripe-Signature` header signs, read as stripe-node's `parseHeader` reads it (the
 * LAST `t=` item, `parseInt`), so the future check and the HMAC check see the same one; NaN when
 * there is none (stripe-node then refuses the header).
 */
function signedTimestamp(header: string): number {
  let timestamp = Number.NaN;
  for (const item of header.split(',')) {
    const [key, value] = item.split('=');
    if (key === 't') timestamp = Number.parseInt(value ?? '', 10);
  }
  return timestamp;
}

/**
 * Stripe's inbound side: `Stripe-Signature` verification with the stripe package's verifier, then
 * normalisation of the event types billhook reconciles.
 */
export class StripeWebhook implements WebhookVerifier {
  readonly #stripe: Stripe;
  readonly #secrets: readonly string[];
  readonly #toleranceSeconds: number;
  readonly #lookups: StripeLookups | undefined;

  /**
   * @param secrets endpoint secrets (`whsec_…`); several are accepted during rotation
   * @param toleranceSeconds the largest accepted age of the signed timestamp (Stripe's default 300 s)
   * @param lookups what to ask Stripe (the client's calls, when `STRIPE_SECRET_KEY` is set): a
   *   `charge.refunded` event's refunds when it lists none, the PaymentIntent of a refund's or
   *   dispute's charge when the event does not name it
   */
  constructor(secrets: readonly string[], toleranceSeconds = 300, lookups?: StripeLookups) {
    if (secrets.length === 0) throw new Error('StripeWebhook needs at least one endpoint secret');
    if (toleranceSeconds <= 0) throw new Error('a tolerance of 0 would skip the timestamp check');
    this.#stripe = new Stripe('sk_webhooks_only');
    this.#secrets = secrets;
    this.#toleranceSeconds = toleranceSeconds;
    this.#lookups = lookups;
  }

  /**
   * Verifies `t=…,v1=…` (HMAC-SHA256 of `t + "." + rawBody`, constant-time compare, several `v1`
   * accepted) against each configured secret, with the timestamp within the tolerance either way,
   * then reads the event id and type.
   * Source: https://docs.stripe.com/webhooks#verify-events
   * @throws WebhookVerificationError when no secret matches or the timestamp is outside the tolerance
   * @throws WebhookPayloadError when the signed body is not a Stripe event, or a known event type's
   *   object has an unexpected shape (see `normalize`)
   */
  async verify(rawBody: Buffer, headers: WebhookHeaders): Promise<VerifiedDelivery> {
    const header = headers['stripe-signature'];
    if (typeof header !== 'string' || header === '') {
      throw new WebhookVerificationError('missing Stripe-Signature header');
    }
    // stripe-node checks only that the timestamp is not too old; a clock far ahead is refused too.
    if (signedTimestamp(header) > Date.now() / 1000 + this.#toleranceSeconds) {
      throw new WebhookVerificationError('Stripe signature verification failed: timestamp is in the future');
    }
    // Fail closed: without stripe-node's verifier nothing is accepted.
    const signature = this.#stripe.webhooks.signature;
    if (!signature) throw new WebhookVerificationError('Stripe signature verifier unavailable');
    let lastError: unknown;
    for (const secret of this.#secrets) {
      try {
        signature.verifyHeader(rawBody, header, secret, this.#toleranceSeconds);
        return this.#delivery(rawBody);
      } catch (error) {
        if (error instanceof WebhookPayloadError) throw error;
        lastError = error;
      }
    }
    const reason = lastError instanceof Error ? lastError.message.split('\n')[0] : 'signature mismatch';
    throw new WebhookVerificationError(`Stripe signature verification failed: ${reason}`);
  }

  /**
   * The event id and type, once the whole event has been checked as `normalize` reads it
   * (PRODUCT.md §2: a body not of the gateway's shape is answered 400 and not stored).
   */
  #delivery(rawBody: Buffer): VerifiedDelivery {
    const event = parse(Envelope, parseJsonPayload(rawBody.toString('utf8')), 'event');
    eventsOf(event);
    return { eventId: event.id, eventType: event.type };
  }

  /**
   * Maps payment_intent.succeeded / payment_failed / canceled / processing, charge.refunded,
   * charge.refund.updated and refund.*, charge.dispute.created / funds_withdrawn / closed, payout.*
   * and charge.succeeded / charge.updated (settlement) to canonical events. Amounts are read by
   * Stripe's currency rules (`STRIPE_CURRENCIES`); currencies are upper-cased.
   * - Refunds are matched by the refund id, else our metadata reference, else booked as a refund
   *   made at Stripe on the payment intent. `refund.created` / `refund.updated` / `refund.failed`
   *   (and `charge.refund.updated`) carry every refund, whoever made it. `charge.refunded` books
   *   the refunds it lists (API versions before 2022-11-15); since 2022-11-15 it lists none
   *   (https://docs.stripe.com/upgrades#2022-11-15), so its refunds are asked of Stripe
   *   (`refundsOfCharge`) when a secret key is configured, else it books nothing.
   * - A refund or dispute whose `payment_intent` is null is matched through its charge: Stripe is
   *   asked for the charge's PaymentIntent (an endpoint on an API version older than the field
   *   renders billhook's own refunds so); a charge without one billhook did not make: `unmatchable`,
   *   raised as an exception at once (so too when no secret key lets billhook ask).
   * - Inquiries (`warning_*`) are `dispute.inquiry` / `dispute.inquiry_closed`: no money moves.
   * - `payout.created|updated|paid|failed|canceled|reconciliation_completed` are one `payout.updated`
   *   carrying the payout (settlement.ts `payoutReportOf`), with its lines asked of Stripe when a
   *   secret key is configured and Stripe can list them (`payoutLinesListable`); without one, no lines.
   * - `charge.succeeded` / `charge.updated` naming a `balance_transaction` are that transaction's
   *   `settlement.line` (its fee and net), asked of Stripe; without a secret key, or before Stripe
   *   booked the charge in the balance, nothing (ignored).
   * @throws WebhookPayloadError when a known event type has an unexpected shape (a listed refund
   *   too); any other error (Stripe not answering the refund list) makes the job retry
   */
  async normalize(body: string): Promise<PaymentEvent[]> {
    const event = parse(Envelope, parseJsonPayload(body), 'event');
    const lookups = this.#lookups;
    if (!lookups) return eventsOf(event);
    const settlement = await this.#settlementEvents(event, lookups);
    if (settlement) return settlement;
    let events: PaymentEvent[];
    const charge = event.type === 'charge.refunded' ? parse(Charge, event.data.object, 'charge') : undefined;
    if (charge && !charge.refunds) {
      const refunds = await lookups.refundsOfCharge(charge.id);
      events = chargeRefundEvents(event.id, new Date(event.created * 1000), charge, refunds);
    } else {
      events = eventsOf(event);
    }
    return Promise.all(events.map((e) => withPaymentIntentOfCharge(e, lookups)));
  }

  /**
   * The settlement events of `event` that need Stripe's answers, or undefined for other events:
   * a payout event's `payout.updated` with its lines when Stripe can list them (`payoutWithLines`),
   * a `charge.succeeded` / `charge.updated` naming its balance transaction → that transaction's
   * `settlement.line` (none while the charge has no balance transaction yet).
   */
  async #settlementEvents(
    event: z.output<typeof Envelope>,
    lookups: StripeLookups,
  ): Promise<PaymentEvent[] | undefined> {
    const occurredAt = new Date(event.created * 1000);
    const object = event.data.object;
    const { balanceTransaction, payoutBalanceTransactions } = lookups;
    if (PAYOUT_EVENTS.has(event.type) && payoutBalanceTransactions) {
      const payout = await payoutWithLines(readPayout(object), {
        payoutBalanceTransactions: (id) => payoutBalanceTransactions.call(lookups, id),
      });
      return [payoutEvent(event.id, occurredAt, payout, object)];
    }
    if (CHARGE_BALANCE_EVENTS.has(event.type) && balanceTransaction) {
      const charge = parse(ChargeBalance, object, 'charge');
      if (!charge.balance_transaction) return [];
      const line = settlementLineOf(await balanceTransaction.call(lookups, charge.balance_transaction));
      return line ? [settlementLineEvent(event.id, occurredAt, line, object)] : [];
    }
    return undefined;
  }
}
