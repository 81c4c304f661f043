import { z } from 'zod';
import { GATEWAYS, type GatewayName } from '../config/gateways.ts';
import { isCurrency } from '../money/currency.ts';
import { PayoutReportSchema, SettlementLineSchema, type SettlementSource } from './settlement.ts';

export { GATEWAYS, type GatewayName };

/**
 * Canonical event types every gateway's payloads are normalised into (PRODUCT.md §3).
 * `dispute.inquiry` / `dispute.inquiry_closed`: the card issuer asked about a payment without
 * withdrawing funds (a Stripe inquiry); recorded as a dispute that moves no money.
 * `settlement.line`: a line of the gateway balance became known (a charge's fee and net, PRODUCT.md
 * §13), carried in `settlementLine`; `payout.updated`: a payout was created or changed status, carried
 * in `payout` (with its lines once the gateway lists them).
 */
export const PAYMENT_EVENT_TYPES = [
  'charge.succeeded',
  'charge.failed',
  'charge.pending',
  'charge.canceled',
  'refund.succeeded',
  'refund.failed',
  'refund.pending',
  'dispute.opened',
  'dispute.won',
  'dispute.lost',
  'dispute.inquiry',
  'dispute.inquiry_closed',
  'settlement.line',
  'payout.updated',
] as const;
export type PaymentEventType = (typeof PAYMENT_EVENT_TYPES)[number];

/**
 * One gateway event in billhook's own terms.
 * - `amount` is an integer in minor units of `currency` (ISO 4217), never a float;
 * - `gatewayTransactionId` is the gateway's id of the payment (Stripe: the PaymentIntent `pi_…`);
 * - `reference` is our transaction or refund id when the gateway echoes it (metadata, invoice
 *   reference), so an event can be matched before we learned the gateway's id;
 * - `gatewayRefundId` / `gatewayDisputeId` identify the refund or dispute for those event types;
 * - `occurredAt` is when the gateway says it happened;
 * - `unmatchable`, when set, says why no billhook transaction can ever be the payment (the gateway
 *   reports a payment billhook's API calls cannot have made): the event is raised as an exception at
 *   once instead of waiting for the payment to become known;
 * - `reversal` (dispute events): the gateway took the money back by reversing the payment (a card
 *   chargeback), so no refund of the payment carries it;
 * - `settlementLine` (type `settlement.line`) and `payout` (type `payout.updated`): the settlement
 *   data (src/gateways/settlement.ts); `amount` is then the line's gross without its sign, or the
 *   payout's amount, and `currency` theirs.
 */
export const PaymentEventSchema = z.object({
  type: z.enum(PAYMENT_EVENT_TYPES),
  gateway: z.enum(GATEWAYS),
  gatewayEventId: z.string().min(1),
  gatewayTransactionId: z.string().min(1).optional(),
  gatewayRefundId: z.string().min(1).optional(),
  gatewayDisputeId: z.string().min(1).optional(),
  reference: z.string().min(1).optional(),
  amount: z.bigint().nonnegative(),
  currency: z.string().refine(isCurrency, 'not an ISO 4217 currency'),
  occurredAt: z.date(),
  failureCode: z.string().optional(),
  failureMessage: z.string().optional(),
  reason: z.string().optional(),
  unmatchable: z.string().min(1).optional(),
  reversal: z.literal(true).optional(),
  settlementLine: SettlementLineSchema.optional(),
  payout: PayoutReportSchema.optional(),
  raw: z.unknown(),
});
export type PaymentEvent = z.infer<typeof PaymentEventSchema>;

/**
 * Longest event id and event type stored (characters): gateways' ids are far shorter (Stripe's
 * `evt_…` ~28, PayPal's `WH-…` ~40, Authorize.Net's UUID 36), and a longer one is refused with 400
 * `event_id_too_long` before it reaches the inbox's unique index.
 */
export const MAX_EVENT_ID_LENGTH = 255;

/** What a verified delivery says about itself, enough to store it in the inbox. */
export interface VerifiedDelivery {
  /** The gateway's unique id of this event (dedupe key). */
  eventId: string;
  /** The gateway's own event type, e.g. `payment_intent.succeeded`. */
  eventType: string;
  /**
   * What the inbox keeps instead of the raw body: an unsigned hint's few parsed fields (e.g.
   * `{"TransactionID":"11818347"}`), which `normalize` reads back. Absent: the raw body is kept.
   */
  storedBody?: string;
}

/** Raised when a delivery's signature, timestamp or secret is wrong: answered 400, nothing stored. */
export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';
}

/**
 * Raised when a correctly signed body is not JSON or not the gateway's shape: answered 400 with
 * `code` (`invalid_payload` unless said otherwise, e.g. `event_id_too_long`).
 */
export class WebhookPayloadError extends Error {
  override name = 'WebhookPayloadError';
  readonly code: string;

  constructor(message: string, code = 'invalid_payload') {
    super(message);
    this.code = code;
  }
}

/** Headers as Node gives them: lower-case names. */
export type WebhookHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** The inbound half of an adapter: verify on the raw bytes, then translate. */
export interface WebhookVerifier {
  /**
   * True when the gateway signs nothing (eWAY, SecurePay): anyone can post, so the route caps the
   * body at 8 KiB (`UNSIGNED_WEBHOOK_BODY_LIMIT`), rate-limits each source address, and stores only
   * the parsed hint (`VerifiedDelivery.storedBody`).
   */
  readonly unsigned?: boolean;
  /**
   * True when a hint's event id names what the caller pointed at, not an event of the gateway's
   * (eWAY's `transaction:<id>`): a repeat is a duplicate only while a row with that id waits to be
   * processed; once processed its event id is released (suffixed `@<inbox id>`), so a later hint
   * for the same transaction is stored and asked about again. What the gateway answers is deduped
   * by the reconciliation itself (state moves forward only).
   */
  readonly releasesEventIds?: boolean;
  /**
   * Checks the delivery's signature on the exact raw bytes received.
   * @throws WebhookVerificationError (bad signature) or WebhookPayloadError (bad body)
   */
  verify(rawBody: Buffer, headers: WebhookHeaders): Promise<VerifiedDelivery>;
  /**
   * Translates a stored, verified body into canonical events; an empty list means the event type
   * is not one billhook reconciles (it is marked ignored). Where the payload is only a hint
   * (Authorize.Net, eWAY, SecurePay), this asks the gateway for the transaction and reports only
   * what the gateway itself returns.
   * @throws WebhookPayloadError when the body is not the documented shape; any other error (the
   * gateway unreachable) makes the job retry
   */
  normalize(body: string): Promise<PaymentEvent[]>;
}

/** A charge request to a gateway. */
export interface ChargeRequest {
  /** Our transaction id (`txn_…`): the gateway's idempotency key and merchant reference. */
  reference: string;
  /** Amount in minor units of `currency`. */
  amount: bigint;
  currency: string;
  /** The stored payment method: the gateway's token and, where it has one, its customer id. */
  paymentMethod: { token: string; customerId: string | null };
  description?: string;
  /** Our invoice id (`inv_…`) the charge pays, when it pays one: for log lines, never sent. */
  invoiceId?: string;
  /**
   * What kind of merchant-initiated use of the stored card this is, as the card networks'
   * stored-credential rules ask every charge without the customer present to say (PRODUCT.md §11):
   * - `recurring`: a charge on a schedule the customer agreed to — a subscription invoice (renewal,
   *   proration), the collection sweep's scheduled charge of an invoice, a dunning retry of either;
   * - `unscheduled`: any other off-session charge, e.g. an operator charging a one-off invoice
   *   (`POST /v1/invoices/:id/charge`).
   * Each adapter writes it in its gateway's terms (Stripe `off_session`, PayPal
   * `stored_credential.payment_type`, Authorize.Net `recurringBilling`, eWAY `TransactionType`).
   */
  initiation: ChargeInitiation;
}

/** See `ChargeRequest.initiation`. */
export type ChargeInitiation = 'recurring' | 'unscheduled';

/**
 * A card as a gateway describes it in its answer to a charge: brand in the gateway's spelling
 * (Stripe `visa`, PayPal `VISA`), the last four digits, the expiry month (1–12) and four-digit year;
 * each null where the gateway's answer does not say. Each adapter cites where it reads them.
 */
export interface CardDetails {
  brand: string | null;
  last4: string | null;
  expMonth: number | null;
  expYear: number | null;
}

/**
 * What a gateway reports a charge moved (or is moving) when that is not what was sent: `amount` in
 * minor units of `currency` (ISO 4217, upper case) read through the gateway's currency table, null
 * when the gateway's amount cannot be read as one (src/gateways/reported.ts).
 */
export interface ReportedCharge {
  amount: bigint | null;
  currency: string;
}

/**
 * Typed result of a charge. Declines are data; only `unknown` leaves the outcome open. A succeeded
 * charge's `amount`, when present, is what the gateway says moved (minor units of the charge's
 * currency), more than nothing and less than was charged: a partial capture or settlement, reported
 * only by a gateway whose capabilities say `partialCapture`; absent, the whole charge moved. `card`,
 * when present, is the card charged as the gateway's answer describes it. An unknown outcome's
 * `reported`, when present, is a success (or pending charge) the gateway reports for another amount
 * or currency than was sent: not known for sure (PRODUCT.md §11), and the status check that meets it
 * raises an `amount_mismatch` or `currency_mismatch` exception, as a notification saying so does
 * (src/payments/poll.ts).
 */
export type ChargeOutcome =
  | { status: 'succeeded'; gatewayTransactionId: string; amount?: bigint; card?: CardDetails }
  | { status: 'pending'; gatewayTransactionId: string }
  | { status: 'declined'; code: string; message: string; gatewayTransactionId?: string }
  | { status: 'unknown'; message: string; reported?: ReportedCharge };

/** A refund request to a gateway. */
export interface RefundRequest {
  /** Our refund id (`re_…`): idempotency key and reference. */
  reference: string;
  /** Our id of the charge being refunded (`txn_…`): the merchant reference / order id it was sent with. */
  chargeReference: string;
  gatewayTransactionId: string;
  /** Amount in minor units, at most what was paid and not yet refunded. */
  amount: bigint;
  currency: string;
  /** The payment method that was charged, for gateways whose refunds name it (Authorize.Net profiles). */
  paymentMethod: { token: string; customerId: string | null };
  reason?: string;
  /**
   * True when this refund was sent before and its outcome is unknown (a timeout or 5xx): the call is
   * the repeat with the same reference, and a gateway whose answer to a repeat is undocumented
   * (SecurePay) reads a refusal as unknown rather than as a decline.
   */
  repeat?: boolean;
}

/** Typed result of a refund. */
export type RefundOutcome =
  | { status: 'succeeded'; gatewayRefundId: string }
  | { status: 'pending'; gatewayRefundId: string }
  | { status: 'declined'; code: string; message: string }
  | { status: 'unknown'; message: string };

/** A void (cancel before settlement) of a charge. */
export interface VoidRequest {
  /** Our id of the charge (`txn_…`). */
  reference: string;
  gatewayTransactionId: string;
  /** Amount in minor units and currency of the charge. */
  amount: bigint;
  currency: string;
}

/** Typed result of a void. */
export type VoidOutcome =
  | { status: 'succeeded' }
  | { status: 'declined'; code: string; message: string }
  | { status: 'unknown'; message: string };

/** Which charge to look up: by our reference, and by the gateway's id when we learned it. */
export interface TransactionQuery {
  /** Our transaction id (`txn_…`), sent as merchant reference / metadata / order id. */
  reference: string;
  gatewayTransactionId?: string;
  /** The original request, for gateways whose only status check is the idempotent repeat (SecurePay). */
  charge: ChargeRequest;
  /** Which status check of the poll schedule this is (1 for the first), for log lines; absent for a check by hand. */
  attempt?: number;
  /**
   * When the check is made (the sweep's clock), against which a gateway that repeats the charge
   * measures the attempt's age (PayPal's and SecurePay's `SAFE_REPEAT_WINDOW_MS`); absent: the
   * client's own clock.
   */
  at?: Date;
}

/**
 * What the gateway says about a charge now: the charge outcomes, or `not_found` when the gateway
 * confirms it has no charge with this reference (the request never arrived).
 */
export type TransactionStatusOutcome = ChargeOutcome | { status: 'not_found' };

/** The outbound half of an adapter. Every call honours the gateway's `*_API_BASE`. */
export interface GatewayClient {
  /** Charges a stored payment method. Never throws for gateway answers: declines and timeouts are outcomes. */
  charge(request: ChargeRequest): Promise<ChargeOutcome>;
  /** Refunds part or all of a settled charge. */
  refund(request: RefundRequest): Promise<RefundOutcome>;
  /** Cancels a charge that has not settled yet. */
  void(request: VoidRequest): Promise<VoidOutcome>;
  /** Asks the gateway what became of a charge (the poller's question for pending and unknown attempts). */
  fetchTransaction(query: TransactionQuery): Promise<TransactionStatusOutcome>;
  /**
   * The ISO 4217 currencies (upper case) this account processes, as the gateway itself says, where
   * it does and refuses the others (Authorize.Net: getMerchantDetails `currencies`, cached after
   * success; another currency is declined with reason 39). Absent for a gateway whose currency table
   * alone says what it takes (gateways/currencies.ts). Read by `accountCurrenciesOf` before a
   * charge or refund exists.
   * @throws Error when the gateway cannot be asked (no answer, timeout, 5xx, a refusal) or names no
   * ISO 4217 currency: what the account takes is then unknown
   */
  accountCurrencies?(): Promise<readonly string[]>;
}

/**
 * What `GatewayClient.void` can cancel of billhook's charges:
 * - `uncaptured`: a payment that has not succeeded yet (billhook `pending` or `unknown`), e.g. a Stripe
 *   PaymentIntent awaiting capture; a succeeded one is refunded instead;
 * - `unsettled`: also a succeeded charge until the gateway settles it (Authorize.Net's unsettled
 *   transactions); the gateway refuses a settled one;
 * - `none`: none (the gateway voids only pre-authorisations, which billhook never makes).
 */
export type VoidCapability = 'uncaptured' | 'unsettled' | 'none';

/**
 * Facts about a gateway that the rest of billhook acts on, declared by each adapter
 * (src/gateways/<gateway>/capabilities.ts, with the source of each fact) and read through the
 * registry (`capabilitiesOf`, `GatewayAdapter.capabilities`) instead of name sets elsewhere.
 */
export interface GatewayCapabilities {
  /**
   * A succeeded charge can move less than was charged (a partial capture or settlement), and what
   * moved is booked (PRODUCT.md §11); false: a charge event must match the charge exactly.
   */
  readonly partialCapture: boolean;
  /**
   * How long (milliseconds after the refund was created, its time read from its `re_…` id:
   * gateways/attempts.ts) a refund call repeated with the same reference still returns the first
   * refund instead of refunding twice: the gateway's retention of the idempotency key, less a
   * margin. Within it a refund left unknown is sent again (payments/refund-retry.ts); past it, a
   * gateway that forgot the key would take the repeat as a second refund, so the refund goes to a
   * person. null: the refund call has no idempotency key, and an unknown refund always goes to a person.
   */
  readonly refundRepeatWindowMs: number | null;
  /** What a void can cancel (`VoidCapability`); `POST /v1/transactions/:id/void` refuses the rest. */
  readonly void: VoidCapability;
  /**
   * How the status of a charge whose answer was lost (no gateway id learned) is checked: `query` —
   * the gateway is searched by billhook's reference; `repeat` — the charge is sent again with the same
   * idempotency key, which the gateway answers with the first result.
   */
  readonly statusCheck: 'query' | 'repeat';
  /**
   * A lost dispute is paid to the customer as a refund of the same payment, reported as a refund of
   * its own: the dispute and the refund are one movement of money, booked once as the refund.
   */
  readonly lostDisputePaidAsRefund: boolean;
  /**
   * A webhook's charge event reports the payment's state as the gateway's API answers it when billhook
   * processes the delivery (the webhook is only a hint, and normalising it asks the gateway), not a
   * snapshot of a moment that a later event may have overtaken: a succeeded charge such an event
   * reports failed is the gateway's word now, for a person (reconcile/apply.ts), where a snapshot's
   * failure delivered after the success is older news (a PaymentIntent re-confirmed after a decline).
   */
  readonly chargeEventsReadBack: boolean;
  /**
   * Decline codes (an attempt's `failure_code`) by which the gateway refuses the charge itself — its
   * amount or currency, not the card — so the same charge would be refused again however often it
   * is sent (Stripe `amount_too_small`, `amount_too_large`), each with why in words and its source.
   * A scheduled charge so refused is not retried by dunning: it is set aside once with an exception
   * for a person (payments/charges.ts `setAsideUnsendableCharge`), as one billhook cannot send.
   */
  readonly refusalsNotRetried: Readonly<Record<string, string>>;
}

/** One gateway, as the rest of billhook sees it. Either half is absent when not configured. */
export interface GatewayAdapter {
  name: GatewayName;
  /** What the gateway can do, whether or not it is configured. */
  capabilities: GatewayCapabilities;
  webhook?: WebhookVerifier;
  client?: GatewayClient;
  /** Asks the gateway for its settlement data (src/gateways/settlement.ts), where it can be asked. */
  settlement?: SettlementSource;
}
