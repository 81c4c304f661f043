import Stripe from 'stripe';
import { minorUnitsToJson } from '../../money/amount.ts';
import type {
  ChargeOutcome,
  ChargeRequest,
  GatewayClient,
  RefundOutcome,
  RefundRequest,
  TransactionQuery,
  TransactionStatusOutcome,
  VoidOutcome,
  VoidRequest,
} from '../types.ts';
import { REFERENCE_KEY, withDeclineCode } from './conventions.ts';

/** Settings of the outbound Stripe client. */
export interface StripeClientOptions {
  secretKey: string;
  /** Base URL of the API, e.g. `https://api.stripe.com` or a local stub `http://127.0.0.1:12111`. */
  apiBase: string;
  /** Per-request timeout in milliseconds; a timeout is an unknown outcome. */
  timeoutMs: number;
}

const REFUND_REASONS = new Set(['duplicate', 'fraudulent', 'requested_by_customer']);

/**
 * Maps an error thrown by the stripe package to an outcome. Only errors that prove Stripe did not
 * move money are declines: card errors (HTTP 402, https://docs.stripe.com/error-codes), invalid
 * requests (400/404) and authentication/permission errors. Connection errors, timeouts, 5xx, rate
 * limits and idempotency conflicts leave the outcome unknown.
 */
function outcomeOfError(
  error: unknown,
): { status: 'declined'; code: string; message: string } | { status: 'unknown'; message: string } {
  if (error instanceof Stripe.errors.StripeCardError) {
    return {
      status: 'declined',
      code: error.code ?? 'card_declined',
      message: withDeclineCode(error.message, error.decline_code),
    };
  }
  if (
    error instanceof Stripe.errors.StripeInvalidRequestError ||
    error instanceof Stripe.errors.StripeAuthenticationError ||
    error instanceof Stripe.errors.StripePermissionError
  ) {
    return { status: 'declined', code: error.code ?? error.type, message: error.message };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { status: 'unknown', message };
}

/**
 * Maps a PaymentIntent's status (https://docs.stripe.com/payments/paymentintents/lifecycle):
 * `succeeded` → succeeded; `processing` / `requires_capture` → pending; `requires_action` (an
 * off-session charge cannot authenticate) and `requires_payment_method` / `canceled` → declined.
 */
function outcomeOfIntent(intent: Stripe.PaymentIntent): ChargeOutcome {
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
    default:
      return {
        status: 'declined',
        code: intent.last_payment_error?.code ?? intent.status,
        message: withDeclineCode(
          intent.last_payment_error?.message ?? `payment intent is ${intent.status}`,
          intent.last_payment_error?.decline_code,
        ),
        gatewayTransactionId: intent.id,
      };
  }
}

/**
 * Stripe's outbound side: off-session PaymentIntents and refunds, each sent with our id as the
 * `Idempotency-Key` (https://docs.stripe.com/api/idempotent_requests) and in metadata, so a repeated
 * call never charges twice and webhooks can be matched to our rows.
 */
export class StripeClient implements GatewayClient {
  readonly #stripe: Stripe;

  constructor(options: StripeClientOptions) {
    const base = new URL(options.apiBase);
    this.#stripe = new Stripe(options.secretKey, {
      host: base.hostname,
      port: base.port || (base.protocol === 'https:' ? 443 : 80),
      protocol: base.protocol === 'http:' ? 'http' : 'https',
      maxNetworkRetries: 0,
      timeout: options.timeoutMs,
      telemetry: false,
    });
  }

  /**
   * Charges a saved payment method off-session: `POST /v1/payment_intents` with `confirm=true`,
   * `off_session=true` (https://docs.stripe.com/payments/save-and-reuse#charge-saved-payment-method).
   * The answer's status maps as `outcomeOfIntent` says; card errors are declines, the rest unknown.
   */
  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    try {
      const intent = await this.#stripe.paymentIntents.create(
        {
          amount: minorUnitsToJson(request.amount),
          currency: request.currency.toLowerCase(),
          payment_method: request.paymentMethod.token,
          ...(request.paymentMethod.customerId ? { customer: request.paymentMethod.customerId } : {}),
          off_session: true,
          confirm: true,
          description: request.description,
          metadata: { [REFERENCE_KEY]: request.reference },
        },
        { idempotencyKey: request.reference },
      );
      return outcomeOfIntent(intent);
    } catch (error) {
      const outcome = outcomeOfError(error);
      const intentId = error instanceof Stripe.errors.StripeError ? error.payment_intent?.id : undefined;
      return outcome.status === 'declined' && intentId
        ? { ...outcome, gatewayTransactionId: intentId }
        : outcome;
    }
  }

  /**
   * Refunds part or all of a PaymentIntent: `POST /v1/refunds` (https://docs.stripe.com/api/refunds/create).
   * `succeeded` → succeeded; `pending` / `requires_action` → pending; `failed` / `canceled` → declined.
   */
  async refund(request: RefundRequest): Promise<RefundOutcome> {
    try {
      const refund = await this.#stripe.refunds.create(
        {
          payment_intent: request.gatewayTransactionId,
          amount: minorUnitsToJson(request.amount),
          ...(request.reason && REFUND_REASONS.has(request.reason)
            ? { reason: request.reason as 'duplicate' | 'fraudulent' | 'requested_by_customer' }
            : {}),
          metadata: { [REFERENCE_KEY]: request.reference },
        },
        { idempotencyKey: request.reference },
      );
      if (refund.status === 'succeeded') return { status: 'succeeded', gatewayRefundId: refund.id };
      if (refund.status === 'failed' || refund.status === 'canceled') {
        return {
          status: 'declined',
          code: refund.failure_reason ?? refund.status,
          message: `refund ${refund.status}`,
        };
      }
      return { status: 'pending', gatewayRefundId: refund.id };
    } catch (error) {
      return outcomeOfError(error);
    }
  }

  /**
   * Cancels a PaymentIntent that has not succeeded yet: `POST /v1/payment_intents/{id}/cancel`
   * (https://docs.stripe.com/api/payment_intents/cancel). A succeeded one cannot be voided (refund it).
   */
  async void(request: VoidRequest): Promise<VoidOutcome> {
    try {
      const intent = await this.#stripe.paymentIntents.cancel(
        request.gatewayTransactionId,
        {},
        {
          idempotencyKey: `${request.reference}:void`,
        },
      );
      return intent.status === 'canceled'
        ? { status: 'succeeded' }
        : { status: 'declined', code: intent.status, message: `payment intent is ${intent.status}` };
    } catch (error) {
      return outcomeOfError(error);
    }
  }

  /**
   * Every refund of a charge, newest first: `GET /v1/refunds?charge=…`, following `has_more` through
   * all pages (https://docs.stripe.com/api/refunds/list). The webhook side's `RefundsOfCharge`.
   * @throws the stripe package's error when Stripe does not answer (the webhook job retries)
   */
  async refundsOfCharge(chargeId: string): Promise<Stripe.Refund[]> {
    const refunds: Stripe.Refund[] = [];
    for await (const refund of this.#stripe.refunds.list({ charge: chargeId, limit: 100 }))
      refunds.push(refund);
    return refunds;
  }

  /**
   * What became of a charge: `GET /v1/payment_intents/{id}` when its id is known, otherwise a search on
   * our metadata reference (https://docs.stripe.com/search#query-fields-for-payment-intents; the
   * index trails writes by about a minute, so `not_found` is only final for an older attempt).
   */
  async fetchTransaction(query: TransactionQuery): Promise<TransactionStatusOutcome> {
    try {
      if (query.gatewayTransactionId) {
        return outcomeOfIntent(await this.#stripe.paymentIntents.retrieve(query.gatewayTransactionId));
      }
      const found = await this.#stripe.paymentIntents.search({
        query: `metadata['${REFERENCE_KEY}']:'${query.reference}'`,
        limit: 1,
      });
      const intent = found.data[0];
      return intent ? outcomeOfIntent(intent) : { status: 'not_found' };
    } catch (error) {
      const outcome = outcomeOfError(error);
      return outcome.status === 'declined' ? { status: 'unknown', message: outcome.message } : outcome;
    }
  }
}
