import { z } from 'zod';
import { AmountNotRepresentable, fromGateway, toGateway } from '../../money/gateway-amount.ts';
import { withinRepeatWindow } from '../attempts.ts';
import { type GatewayResponse, GatewayUnreachable, gatewayRequest, parseJsonBody } from '../http.ts';
import { OAuthError, TokenCache } from '../oauth.ts';
import { type AnsweredMoney, heldAgainstCharge } from '../reported.ts';
import type {
  ChargeInitiation,
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
import { cardOfOrder } from './card.ts';
import { parsePaymentSource, SAFE_REPEAT_WINDOW_MS, type VaultedSource } from './conventions.ts';
import { PAYPAL_CURRENCIES } from './currencies.ts';
import { CaptureState, ErrorBody, Money, Order, RefundAnswer } from './schemas.ts';
import { PaypalSettlementError } from './settlement.ts';
import { CAPTURE_STATUS, meaningOf, REFUND_STATUS } from './status.ts';
import { SearchPage, type SearchQuery } from './transaction-search.ts';
import { declineCode, declineMessage } from './webhook.ts';

/** Settings of the outbound PayPal client. */
export interface PaypalClientOptions {
  clientId: string;
  clientSecret: string;
  /** Base URL of the REST API, e.g. `https://api-m.sandbox.paypal.com` or a local stub; every call goes there. */
  apiBase: string;
  /** Per-request timeout in milliseconds; a timeout is an unknown outcome. */
  timeoutMs: number;
  /**
   * Timeout of the OAuth token request in milliseconds; default `timeoutMs`. (Tests of a timeout
   * give the token request a long one, so that only the call under test can time out.)
   */
  tokenTimeoutMs?: number;
  /** Clock in milliseconds, for the token cache and the age of an attempt (tests pass their own). */
  now?: () => number;
}

type Declined = { status: 'declined'; code: string; message: string };
type Unknown = { status: 'unknown'; message: string };

/** HTTP statuses of an error answer that leave the outcome open: conflict (request in progress), rate limit. */
const OPEN_CLIENT_ERRORS = new Set([408, 409, 425, 429]);

/**
 * 422 issues that do not prove the charge was refused. `DUPLICATE_INVOICE_ID`: PayPal already has a
 * payment with our invoice id (= this attempt's reference), so the money may have moved.
 * (https://developer.paypal.com/docs/api/orders/v2/#errors)
 */
const OPEN_ISSUES = new Set(['DUPLICATE_INVOICE_ID', 'PREVIOUS_REQUEST_IN_PROGRESS']);

/** PayPal's error answer as `{code, message}`: the first detail's issue and description, the debug id appended. */
function errorOf(response: GatewayResponse): { code: string; message: string } {
  const parsed = ErrorBody.safeParse(parseJsonBody(response.text));
  const body = parsed.success ? parsed.data : {};
  const detail = body.details?.[0];
  const code = detail?.issue ?? body.name ?? `HTTP_${response.status}`;
  const text = detail?.description ?? body.message ?? `PayPal answered HTTP ${response.status}`;
  return { code, message: body.debug_id ? `${text} (debug_id ${body.debug_id})` : text };
}

/**
 * What an error answer means: 5xx, 408/409/425/429 and the 422 issues of `OPEN_ISSUES` leave the
 * outcome unknown; any other 4xx is PayPal refusing the request (nothing was charged) → declined
 * with PayPal's issue code, e.g. 422 `INSTRUMENT_DECLINED`, `PAYER_ACTION_REQUIRED`,
 * `TRANSACTION_REFUSED` (https://developer.paypal.com/api/rest/reference/orders/v2/errors/).
 */
function outcomeOfError(response: GatewayResponse): Declined | Unknown {
  const { code, message } = errorOf(response);
  if (response.status >= 500 || OPEN_CLIENT_ERRORS.has(response.status) || OPEN_ISSUES.has(code)) {
    return { status: 'unknown', message: `HTTP ${response.status} ${code}: ${message}` };
  }
  if (response.status >= 400) return { status: 'declined', code, message };
  return { status: 'unknown', message: `unexpected HTTP ${response.status} from PayPal` };
}

/**
 * A capture's status as a charge outcome (table in status.ts); declines keep the processor's codes;
 * a status the table does not know is unknown.
 */
export function outcomeOfCapture(capture: CaptureState): ChargeOutcome {
  switch (meaningOf(CAPTURE_STATUS, capture.status)) {
    case 'succeeded':
      return { status: 'succeeded', gatewayTransactionId: capture.id };
    case 'failed':
      return {
        status: 'declined',
        code: declineCode(capture),
        message: declineMessage(capture),
        gatewayTransactionId: capture.id,
      };
    case 'pending':
      return { status: 'pending', gatewayTransactionId: capture.id };
    case 'unknown':
      return {
        status: 'unknown',
        message: `PayPal capture ${capture.id} has status ${capture.status}, which billhook does not know`,
      };
  }
}

/**
 * An order answer (HTTP 200/201) as a charge outcome. The capture decides, whatever the HTTP status:
 * a capture `DECLINED` inside an HTTP 201 order is a decline (see
 * test/fixtures/paypal/api.orders.capture.card_declined_insufficient_funds.json). Without a capture:
 * `PAYER_ACTION_REQUIRED` (3-D Secure or buyer approval, which a merchant-initiated charge cannot
 * get) and `VOIDED` are declines; any other order status leaves the outcome unknown.
 */
export function outcomeOfOrder(order: Order): ChargeOutcome {
  const capture = order.purchase_units?.[0]?.payments?.captures?.[0];
  if (capture) return outcomeOfCapture(capture);
  if (order.status === 'PAYER_ACTION_REQUIRED' || order.status === 'VOIDED') {
    return {
      status: 'declined',
      code: order.status,
      message: `order ${order.id} is ${order.status}: a merchant-initiated charge cannot complete it`,
    };
  }
  return { status: 'unknown', message: `order ${order.id} is ${order.status} without a capture` };
}

/** True for the HTTP statuses of a processed create (200 for an idempotent repeat, 201 for a new order). */
function isCreated(response: GatewayResponse): boolean {
  return response.status === 200 || response.status === 201;
}

/**
 * A capture's `amount` (Payments v2 `money`: `currency_code`, decimal-string `value`) as
 * `heldAgainstCharge` reads it, through `PAYPAL_CURRENCIES`. A capture without one (or with another
 * shape, such as the older `{total, currency}`) names no amount billhook can read.
 */
function answeredMoneyOf(capture: CaptureState): AnsweredMoney {
  const money = Money.safeParse(capture.amount);
  if (!money.success) {
    return {
      amount: () => {
        throw new AmountNotRepresentable(
          `PayPal capture ${capture.id} names no amount {currency_code, value}`,
        );
      },
    };
  }
  const { currency_code, value } = money.data;
  return { currency: currency_code, amount: (currency) => fromGateway(PAYPAL_CURRENCIES, value, currency) };
}

/**
 * A status check's capture, held against the charge asked about (`heldAgainstCharge`): a capture
 * completed (or pending) for another amount or currency than the charge's, or naming none, is
 * unknown with what PayPal reports.
 */
function checkedCapture(capture: CaptureState, charge: ChargeRequest): ChargeOutcome {
  return heldAgainstCharge('PayPal', outcomeOfCapture(capture), charge, answeredMoneyOf(capture));
}

/**
 * A 200/201 order answer as a charge outcome; an unreadable body leaves it unknown (money may have
 * moved). A success carries the card charged (`cardOfOrder`).
 * @param asked the charge a status check repeated, against which the order's capture is held
 * (`checkedCapture`); absent for the charge's own answer
 */
function orderOutcome(response: GatewayResponse, asked?: ChargeRequest): ChargeOutcome {
  const body = parseJsonBody(response.text);
  const order = Order.safeParse(body);
  if (!order.success)
    return { status: 'unknown', message: `PayPal answered HTTP ${response.status} with an unreadable order` };
  const capture = order.data.purchase_units?.[0]?.payments?.captures?.[0];
  const outcome = asked && capture ? checkedCapture(capture, asked) : outcomeOfOrder(order.data);
  if (outcome.status !== 'succeeded') return outcome;
  const card = cardOfOrder(body);
  return card ? { ...outcome, card } : outcome;
}

/**
 * `stored_credential.payment_type` by the kind of merchant-initiated charge: `RECURRING` ("a
 * transaction in a series of transactions … at regular intervals": renewals, scheduled charges and
 * their retries) or `UNSCHEDULED` ("a transaction … at irregular intervals", e.g. an operator
 * charging a one-off invoice). Source:
 * https://developer.paypal.com/docs/api/orders/v2/#definition-card_stored_credential (`payment_type`
 * ONE_TIME, RECURRING, UNSCHEDULED).
 */
const PAYMENT_TYPE: Readonly<Record<ChargeInitiation, 'RECURRING' | 'UNSCHEDULED'>> = {
  recurring: 'RECURRING',
  unscheduled: 'UNSCHEDULED',
};

/**
 * The `payment_source` of an order charging a vaulted method
 * (https://developer.paypal.com/docs/api/orders/v2/#definition-payment_source): a card is marked as
 * a merchant-initiated, subsequent use of a stored credential, recurring or unscheduled
 * (`stored_credential` {payment_initiator MERCHANT, payment_type, usage SUBSEQUENT},
 * https://developer.paypal.com/docs/api/orders/v2/#definition-card_stored_credential). A PayPal
 * wallet is not a card: the card networks' indicator does not apply.
 */
function paymentSource(source: VaultedSource, initiation: ChargeInitiation): Record<string, unknown> {
  if (source.kind === 'paypal') return { paypal: { vault_id: source.vaultId } };
  return {
    card: {
      vault_id: source.vaultId,
      stored_credential: {
        payment_initiator: 'MERCHANT',
        payment_type: PAYMENT_TYPE[initiation],
        usage: 'SUBSEQUENT',
      },
    },
  };
}

/** The body of PayPal's verify-webhook-signature call: the delivery's PAYPAL-* headers, our webhook id, the event. */
export interface WebhookSignatureCheck {
  auth_algo: string;
  cert_url: string;
  transmission_id: string;
  transmission_sig: string;
  transmission_time: string;
  webhook_id: string;
  webhook_event: unknown;
}

/** PayPal's answer to verify-webhook-signature. */
const SignatureVerdict = z.object({ verification_status: z.enum(['SUCCESS', 'FAILURE']) });

/**
 * PayPal's outbound side (REST, Orders v2 and Payments v2) with an OAuth 2.0 client-credentials
 * token (`POST /v1/oauth2/token`, cached until a minute before it expires; on a 401 the token is
 * dropped and the call is made once more with a new one — safe, as every money call repeats its
 * `PayPal-Request-Id`). Every URL is built from `apiBase`.
 */
export class PaypalClient implements GatewayClient {
  readonly #apiBase: string;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #tokens: TokenCache;

  constructor(options: PaypalClientOptions) {
    this.#apiBase = options.apiBase.replace(/\/+$/, '');
    this.#timeoutMs = options.timeoutMs;
    this.#now = options.now ?? Date.now;
    this.#tokens = new TokenCache(
      {
        tokenUrl: `${this.#apiBase}/v1/oauth2/token`,
        clientId: options.clientId,
        clientSecret: options.clientSecret,
        timeoutMs: options.tokenTimeoutMs ?? options.timeoutMs,
      },
      this.#now,
    );
  }

  /**
   * One authenticated call: bearer token, JSON, `Prefer: return=representation`, and the
   * `PayPal-Request-Id` when given. A 401 invalidates the token and repeats the call once.
   * @throws OAuthError when the token endpoint refuses; GatewayUnreachable without an answer
   */
  async #call(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    requestId?: string,
  ): Promise<GatewayResponse> {
    const send = async () =>
      gatewayRequest({
        method,
        url: `${this.#apiBase}${path}`,
        headers: {
          authorization: `Bearer ${await this.#tokens.get()}`,
          accept: 'application/json',
          prefer: 'return=representation',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(requestId ? { 'paypal-request-id': requestId } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        timeoutMs: this.#timeoutMs,
      });
    const first = await send();
    if (first.status !== 401) return first;
    this.#tokens.invalidate();
    return send();
  }

  /**
   * `POST /v2/checkout/orders` for a charge, with our reference as `PayPal-Request-Id`.
   * @throws AmountNotRepresentable for an amount or currency PayPal cannot take (`PAYPAL_CURRENCIES`;
   *   nothing sent)
   */
  #postOrder(request: ChargeRequest, source: VaultedSource): Promise<GatewayResponse> {
    const currency = request.currency.toUpperCase();
    const body = {
      intent: 'CAPTURE',
      payment_source: paymentSource(source, request.initiation),
      purchase_units: [
        {
          amount: { currency_code: currency, value: toGateway(PAYPAL_CURRENCIES, request.amount, currency) },
          custom_id: request.reference,
          invoice_id: request.reference,
          ...(request.description ? { description: request.description.slice(0, 127) } : {}),
        },
      ],
    };
    return this.#call('POST', '/v2/checkout/orders', body, request.reference);
  }

  /**
   * Charges a vaulted card or PayPal wallet in one call: `POST /v2/checkout/orders` with
   * `intent: CAPTURE`, `payment_source.card.vault_id` or `payment_source.paypal.vault_id` (by the
   * token form, see `parsePaymentSource`), `purchase_units[0]` {amount {currency_code, value as a
   * decimal string}, custom_id and invoice_id = our reference}, header `PayPal-Request-Id: reference`
   * (idempotent for 6 hours). Sources: https://developer.paypal.com/docs/api/orders/v2/#orders_create,
   * https://developer.paypal.com/docs/checkout/save-payment-methods/purchase-later/payment-tokens-api/.
   * Outcomes: the capture's status (`COMPLETED` → succeeded with the capture id, `PENDING` → pending,
   * `DECLINED` → declined with the processor's response code even inside HTTP 201; a status
   * status.ts does not know, or an unreadable answer → unknown); 4xx (e.g. 422
   * `INSTRUMENT_DECLINED`) → declined with PayPal's issue; 5xx, timeouts, network errors → unknown; an
   * OAuth token request that fails with an HTTP answer → declined `authentication_failed` (the charge
   * was never sent); a payment method token that is not a vault id → declined `invalid_payment_method`
   * without a call.
   */
  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    const source = parsePaymentSource(request.paymentMethod.token);
    if (!source) {
      return {
        status: 'declined',
        code: 'invalid_payment_method',
        message:
          'the PayPal payment method token must be a vault id, `card:<vault_id>` or `paypal:<vault_id>`',
      };
    }
    try {
      const response = await this.#postOrder(request, source);
      return isCreated(response) ? orderOutcome(response) : outcomeOfError(response);
    } catch (error) {
      return this.#thrown(error);
    }
  }

  /**
   * Refunds part or all of a capture: `POST /v2/payments/captures/{capture_id}/refund` with
   * `amount` {value, currency_code}, `custom_id` = our refund id, `note_to_payer` = the reason, and
   * `PayPal-Request-Id` = our refund id (https://developer.paypal.com/docs/api/payments/v2/#captures_refund).
   * `COMPLETED` → succeeded; `PENDING` → pending; `FAILED` / `CANCELLED` → declined; any other
   * status, or an answer that is not a refund, → unknown; 4xx (e.g. 422
   * `CAPTURE_FULLY_REFUNDED`, `REFUND_AMOUNT_EXCEEDED`) → declined; 5xx and no answer → unknown.
   */
  async refund(request: RefundRequest): Promise<RefundOutcome> {
    const currency = request.currency.toUpperCase();
    try {
      const response = await this.#call(
        'POST',
        `/v2/payments/captures/${encodeURIComponent(request.gatewayTransactionId)}/refund`,
        {
          amount: { value: toGateway(PAYPAL_CURRENCIES, request.amount, currency), currency_code: currency },
          custom_id: request.reference,
          ...(request.reason ? { note_to_payer: request.reason.slice(0, 255) } : {}),
        },
        request.reference,
      );
      if (response.status !== 200 && response.status !== 201) return outcomeOfError(response);
      const parsed = RefundAnswer.safeParse(parseJsonBody(response.text));
      if (!parsed.success) {
        return {
          status: 'unknown',
          message: `PayPal answered HTTP ${response.status} with an unreadable refund`,
        };
      }
      const refund = parsed.data;
      switch (meaningOf(REFUND_STATUS, refund.status)) {
        case 'succeeded':
          return { status: 'succeeded', gatewayRefundId: refund.id };
        case 'pending':
          return { status: 'pending', gatewayRefundId: refund.id };
        case 'failed':
          return {
            status: 'declined',
            code: refund.status_details?.reason ?? refund.status,
            message: `refund ${refund.id} ${refund.status}`,
          };
        case 'unknown':
          return {
            status: 'unknown',
            message: `PayPal refund ${refund.id} has status ${refund.status}, which billhook does not know`,
          };
      }
    } catch (error) {
      return this.#thrown(error);
    }
  }

  /**
   * Declines without a call: billhook charges with `intent: CAPTURE`, and a capture cannot be
   * voided, only refunded. PayPal voids only authorizations
   * (`POST /v2/payments/authorizations/{id}/void`, https://developer.paypal.com/docs/api/payments/v2/#authorizations_void),
   * which billhook never creates. Code `CAPTURE_NOT_VOIDABLE`.
   */
  async void(request: VoidRequest): Promise<VoidOutcome> {
    return {
      status: 'declined',
      code: 'CAPTURE_NOT_VOIDABLE',
      message: `PayPal capture ${request.gatewayTransactionId} cannot be voided; refund it instead`,
    };
  }

  /**
   * What became of a charge:
   * - capture id known: `GET /v2/payments/captures/{id}` (https://developer.paypal.com/docs/api/payments/v2/#captures_get),
   *   mapped as a charge's capture;
   * - otherwise (the charge's answer was lost): the same `POST /v2/checkout/orders` with the same
   *   `PayPal-Request-Id` and body, which PayPal answers with the original order while it keeps the
   *   key (6 hours, https://developer.paypal.com/docs/api/orders/v2/#orders_create) — or, if the first
   *   request never arrived, processes now, as the one charge of this attempt. This is done only
   *   while the attempt (its creation time is in our id) is younger than `SAFE_REPEAT_WINDOW_MS` at
   *   the check (`query.at`, the sweep's clock; else the client's clock)
   *   (5 hours); later, or for a reference that carries no time, the answer stays unknown, because
   *   a repeat after PayPal forgot the key would be a second charge.
   * Either way a capture completed (or pending) is held against the charge (`checkedCapture`): its
   * `amount` must be the charge's amount and currency (read by `PAYPAL_CURRENCIES`), else the answer
   * is unknown with what PayPal reports, and the poller raises an `amount_mismatch` (or
   * `currency_mismatch`) exception for it.
   * Never `not_found`: PayPal has no search of orders by our reference. Answers that do not settle
   * the question (no answer, 5xx, a refused token, 4xx other than a decline of the repeat) are unknown.
   */
  async fetchTransaction(query: TransactionQuery): Promise<TransactionStatusOutcome> {
    try {
      if (query.gatewayTransactionId) {
        const response = await this.#call(
          'GET',
          `/v2/payments/captures/${encodeURIComponent(query.gatewayTransactionId)}`,
        );
        if (response.status !== 200) {
          return { status: 'unknown', message: `capture lookup answered HTTP ${response.status}` };
        }
        const capture = CaptureState.safeParse(parseJsonBody(response.text));
        return capture.success
          ? checkedCapture(capture.data, query.charge)
          : { status: 'unknown', message: 'PayPal answered the capture lookup with an unreadable capture' };
      }
      if (!withinRepeatWindow(query.reference, query.at?.getTime() ?? this.#now(), SAFE_REPEAT_WINDOW_MS)) {
        return {
          status: 'unknown',
          message: `attempt ${query.reference} is older than PayPal keeps a PayPal-Request-Id (or carries no time): look it up in the PayPal dashboard by invoice id ${query.reference}`,
        };
      }
      const source = parsePaymentSource(query.charge.paymentMethod.token);
      if (!source) return { status: 'unknown', message: 'the payment method token is not a PayPal vault id' };
      const response = await this.#postOrder(query.charge, source);
      if (isCreated(response)) return orderOutcome(response, query.charge);
      // A 422 to the repeat is PayPal declining the charge (a repeat within the key's retention is
      // answered like the original; an original that never arrived is declined now). Other errors
      // (authentication, permissions, a malformed request, 5xx) do not say what became of it.
      const outcome = outcomeOfError(response);
      return response.status === 422 || outcome.status === 'unknown'
        ? outcome
        : { status: 'unknown', message: `${outcome.code}: ${outcome.message}` };
    } catch (error) {
      const outcome = this.#thrown(error);
      return outcome.status === 'declined' ? { status: 'unknown', message: outcome.message } : outcome;
    }
  }

  /**
   * Asks PayPal whether a webhook delivery is genuine: `POST /v1/notifications/verify-webhook-signature`
   * with the delivery's headers, our webhook id and the event as parsed JSON
   * (https://developer.paypal.com/api/webhooks/v1/#verify-webhook-signature_post) → `verification_status`
   * `SUCCESS` or `FAILURE`.
   * @returns true only for `SUCCESS`
   * @throws GatewayUnreachable when PayPal does not answer, or answers anything but a 200 verdict
   * (the delivery is then refused with 503 and PayPal retries it); OAuthError when the token
   * endpoint refuses the credentials
   */
  async verifyWebhookSignature(request: WebhookSignatureCheck): Promise<boolean> {
    const response = await this.#call('POST', '/v1/notifications/verify-webhook-signature', request);
    const verdict =
      response.status === 200 ? SignatureVerdict.safeParse(parseJsonBody(response.text)) : undefined;
    if (!verdict?.success) {
      throw new GatewayUnreachable(
        `PayPal's verify-webhook-signature answered HTTP ${response.status} without a verdict`,
      );
    }
    return verdict.data.verification_status === 'SUCCESS';
  }

  /**
   * One page of PayPal's Transaction Search (https://developer.paypal.com/docs/api/transaction-search/v1/#transactions_get):
   * `GET /v1/reporting/transactions?start_date&end_date&fields=all&page_size&page`, the dates in
   * RFC 3339 with seconds (`2024-02-10T00:00:00Z`), the window at most 31 days (the caller cuts it,
   * transaction-search.ts). The app needs PayPal's "Transaction Search" permission.
   * @returns the page, checked against `SearchPage` (amounts still PayPal's decimal strings)
   * @throws GatewayUnreachable without an answer; OAuthError when the token endpoint refuses;
   *   PaypalSettlementError for any other answer than a 200 of the documented shape (with PayPal's
   *   issue and debug id, e.g. 403 NOT_AUTHORIZED without the permission)
   */
  async searchTransactions(query: SearchQuery): Promise<SearchPage> {
    const rfc3339 = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const params = new URLSearchParams({
      start_date: rfc3339(query.start),
      end_date: rfc3339(query.end),
      fields: 'all',
      page_size: String(query.pageSize),
      page: String(query.page),
    });
    const response = await this.#call('GET', `/v1/reporting/transactions?${params}`);
    if (response.status !== 200) {
      const { code, message } = errorOf(response);
      throw new PaypalSettlementError(
        `PayPal Transaction Search answered HTTP ${response.status} ${code}: ${message}`,
      );
    }
    const page = SearchPage.safeParse(parseJsonBody(response.text));
    if (!page.success) {
      const first = page.error.issues[0];
      throw new PaypalSettlementError(
        `PayPal Transaction Search answered page ${query.page} with something else than a search response: ${first?.path.join('.') || '(root)'}: ${first?.message}`,
      );
    }
    return page.data;
  }

  /**
   * A thrown error as an outcome: no answer → unknown; a failed OAuth token request (OAuthError: the
   * token endpoint answered anything but 200) or an amount PayPal cannot take (`PAYPAL_CURRENCIES`) → declined,
   * since the money call was never sent. Anything else is a bug and is rethrown.
   */
  #thrown(error: unknown): Declined | Unknown {
    if (error instanceof OAuthError) {
      return { status: 'declined', code: 'authentication_failed', message: error.message };
    }
    if (error instanceof AmountNotRepresentable)
      return { status: 'declined', code: error.code, message: error.message };
    if (error instanceof GatewayUnreachable) return { status: 'unknown', message: error.message };
    throw error;
  }
}
