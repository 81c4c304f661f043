import { fromGateway, toGateway } from '../../money/gateway-amount.ts';
import { withinRepeatWindow } from '../attempts.ts';
import { GatewayUnreachable, gatewayRequest, parseJsonBody } from '../http.ts';
import { OAuthError, TokenCache } from '../oauth.ts';
import { describeReported, differenceFrom } from '../reported.ts';
import type {
  ChargeOutcome,
  ChargeRequest,
  GatewayClient,
  RefundOutcome,
  RefundRequest,
  ReportedCharge,
  TransactionQuery,
  TransactionStatusOutcome,
  VoidOutcome,
  VoidRequest,
} from '../types.ts';
import {
  DEFAULT_REQUEST_IP,
  orderIdOf,
  parseStoredCard,
  SAFE_REPEAT_WINDOW_MS,
  SECUREPAY_AUDIENCE,
} from './conventions.ts';
import { SECUREPAY_CURRENCIES } from './currencies.ts';
import { ErrorAnswer, PaymentAnswer } from './schemas.ts';
import { verdictOf } from './status.ts';

/** Settings of the outbound SecurePay client (all from the SECUREPAY_* variables). */
export interface SecurepayClientOptions {
  clientId: string;
  clientSecret: string;
  /** The merchant's code, e.g. `5AR0055` (SecurePay's public sandbox merchant). */
  merchantCode: string;
  /** Base URL of the payments API, e.g. `https://payments-stest.npe.auspost.zone` or a local stub. */
  apiBase: string;
  /** OAuth 2.0 token URL, e.g. `https://welcome.api2.sandbox.auspost.com.au/oauth/token`. */
  authUrl: string;
  /** Per-request timeout in milliseconds (token and API calls each); a timeout is an unknown outcome. */
  timeoutMs: number;
  /**
   * Timeout of the OAuth token request in milliseconds; default `timeoutMs`. (Tests of a timeout
   * give the token request a long one, so that only the call under test can time out.)
   */
  tokenTimeoutMs?: number;
  /** The `ip` sent with payments and refunds; default `127.0.0.1` (see conventions.ts). */
  ip?: string;
  /** Clock in milliseconds, for the token cache and the age of an attempt (tests pass their own). */
  now?: () => number;
}

/**
 * How one API call ended, before any reading of money:
 * - `answer`: SecurePay answered with this HTTP status (401 already retried once with a new token);
 * - `not_taken`: the payment API never took the request: no token could be obtained (refused or
 *   unreachable token endpoint) or the API answered 401 twice. No money can have moved;
 * - `no_answer`: the API call timed out or the connection failed: the outcome is unknown.
 */
type Exchange =
  | { kind: 'answer'; status: number; body: unknown }
  | { kind: 'not_taken'; code: string; message: string }
  | { kind: 'no_answer'; message: string };

/** What an answer must match to be about the request we made. Amount in billhook minor units. */
interface Expected {
  orderId: string;
  amount: bigint;
  currency: string;
}

/**
 * `amount` as SecurePay's integer cents (`SECUREPAY_CURRENCIES`), or the refusal when SecurePay
 * cannot take it: nothing is then sent.
 */
function wireAmount(
  amount: bigint,
  currency: string,
): number | { kind: 'not_taken'; code: string; message: string } {
  try {
    return toGateway(SECUREPAY_CURRENCIES, amount, currency);
  } catch (error) {
    return { kind: 'not_taken', code: 'amount_not_representable', message: (error as Error).message };
  }
}

/** 4xx statuses that do not prove the request was refused (a timeout, a conflict, rate limiting). */
const UNCLEAR_CLIENT_ERRORS: ReadonlySet<number> = new Set([408, 409, 425, 429]);

const isSuccess = (status: number) => status >= 200 && status < 300;
const isRefusal = (status: number) => status >= 400 && status < 500 && !UNCLEAR_CLIENT_ERRORS.has(status);

/** `CODE: detail; CODE2: detail2` from SecurePay's `errors` array, and the first code. */
function describeErrors(body: unknown, status: number): { code: string; message: string } {
  const parsed = ErrorAnswer.safeParse(body);
  if (!parsed.success)
    return { code: `http_${status}`, message: `SecurePay refused the request (HTTP ${status})` };
  const [first] = parsed.data.errors;
  return {
    code: first!.code,
    message: parsed.data.errors.map((e) => (e.detail ? `${e.code}: ${e.detail}` : e.code)).join('; '),
  };
}

/** Why a 2xx answer is not about our request, and what it names when that is a paid payment of another amount or currency. */
interface Mismatch {
  reason: string;
  reported?: ReportedCharge;
}

/**
 * Checks that a 2xx answer is about our request: the same `orderId` (required when `strict`, i.e.
 * for the idempotent repeat) and, whether or not it names an order, the amount and currency sent
 * (`differenceFrom`, the amount read by `SECUREPAY_CURRENCIES`; an answer without a currency is in
 * the one sent). The amount is required when `strict`; outside a repeat an answer without one is
 * held to its currency only.
 * @returns why it is not, with what it names (`reported`) when it is a paid payment (status.ts) of
 * another amount or currency; else undefined
 */
function mismatch(answer: PaymentAnswer, expected: Expected, strict: boolean): Mismatch | undefined {
  if (answer.orderId === undefined ? strict : answer.orderId !== expected.orderId) {
    return {
      reason:
        answer.orderId === undefined
          ? 'the answer does not name an orderId'
          : `the answer names orderId ${answer.orderId}, not ${expected.orderId}`,
    };
  }
  const { amount } = answer;
  if (amount === undefined && strict) return { reason: 'the answer does not name an amount' };
  const reported = differenceFrom(expected, {
    currency: answer.currency,
    amount: (currency) =>
      amount === undefined ? expected.amount : fromGateway(SECUREPAY_CURRENCIES, amount, currency),
  });
  if (!reported) return undefined;
  const named =
    amount === undefined ? `no amount, currency ${reported.currency}` : describeReported(reported);
  return {
    reason: `the answer names ${named}, not the ${expected.amount} ${expected.currency} sent (minor units)`,
    ...(amount !== undefined && verdictOf(answer.status) === 'succeeded' ? { reported } : {}),
  };
}

/** The bank's code and message of a payment or refund that was not paid. */
function declineOf(answer: PaymentAnswer): { code: string; message: string } {
  const message = answer.gatewayResponseMessage ?? `SecurePay status ${answer.status}`;
  return {
    code: answer.gatewayResponseCode ?? answer.errorCode ?? answer.status,
    message: answer.errorCode ? `${message} (errorCode: ${answer.errorCode})` : message,
  };
}

/** A 2xx answer that is readable and about our request, or the reason it is not. */
function readAnswer(
  exchange: { status: number; body: unknown },
  expected: Expected,
  strict: boolean,
): { answer: PaymentAnswer } | { unclear: string; reported?: ReportedCharge } {
  const parsed = PaymentAnswer.safeParse(exchange.body);
  if (!parsed.success) {
    return { unclear: `SecurePay answered HTTP ${exchange.status} with a body that is not a payment answer` };
  }
  const wrong = mismatch(parsed.data, expected, strict);
  return wrong
    ? { unclear: `SecurePay answered HTTP ${exchange.status}, but ${wrong.reason}`, reported: wrong.reported }
    : { answer: parsed.data };
}

/**
 * What an exchange says, before it becomes a charge's or a refund's outcome; an unknown one's
 * `reported` is a paid payment of another amount or currency (`mismatch`).
 */
type Reading =
  | { status: 'succeeded' }
  | { status: 'declined'; code: string; message: string }
  | { status: 'unknown'; message: string; reported?: ReportedCharge };

/**
 * Reads the exchange of a payment or refund (or of its repeat after a lost answer, `repeat`):
 * 2xx → status.ts's table (`paid` succeeded, `failed` declined, `unknown` or any other status
 * unknown); 400-type refusals with `errors` and requests never taken → declined with
 * SecurePay's code, except for a repeat, where a refusal may be SecurePay's (undocumented) answer to
 * a reused Idempotency-Key/orderId and a request not taken this time says nothing of the first, so
 * both stay unknown; 408/409/425/429, 5xx, timeouts, unreadable answers and answers naming another
 * order or amount → unknown.
 */
function readExchange(exchange: Exchange, expected: Expected, repeat: boolean): Reading {
  if (exchange.kind === 'no_answer') return { status: 'unknown', message: exchange.message };
  if (exchange.kind === 'not_taken') {
    return repeat
      ? { status: 'unknown', message: `the repeat was not taken: ${exchange.message}` }
      : { status: 'declined', code: exchange.code, message: exchange.message };
  }
  if (isSuccess(exchange.status)) {
    const read = readAnswer(exchange, expected, repeat);
    if ('unclear' in read) {
      return {
        status: 'unknown',
        message: read.unclear,
        ...(read.reported ? { reported: read.reported } : {}),
      };
    }
    switch (verdictOf(read.answer.status)) {
      case 'succeeded':
        return { status: 'succeeded' };
      case 'declined':
        return { status: 'declined', ...declineOf(read.answer) };
      case 'unknown': {
        const { code, message } = declineOf(read.answer);
        return {
          status: 'unknown',
          message: `SecurePay answered status ${read.answer.status} (${code}: ${message}): the outcome is not known`,
        };
      }
    }
  }
  if (isRefusal(exchange.status)) {
    const { code, message } = describeErrors(exchange.body, exchange.status);
    return repeat
      ? {
          status: 'unknown',
          message: `the repeat was refused (HTTP ${exchange.status}, ${message}); how SecurePay answers a repeated Idempotency-Key is undocumented`,
        }
      : { status: 'declined', code, message };
  }
  return { status: 'unknown', message: `SecurePay answered HTTP ${exchange.status}` };
}

/** A charge's outcome: `gatewayTransactionId` = the orderId, on every answer about the order (2xx). */
function chargeOutcomeOf(exchange: Exchange, expected: Expected, repeat: boolean): ChargeOutcome {
  const reading = readExchange(exchange, expected, repeat);
  if (reading.status === 'unknown') return reading;
  const answered = exchange.kind === 'answer' && isSuccess(exchange.status);
  if (reading.status === 'declined')
    return answered ? { ...reading, gatewayTransactionId: expected.orderId } : reading;
  return { status: reading.status, gatewayTransactionId: expected.orderId };
}

/**
 * SecurePay's outbound side (REST API v2, OAuth 2.0 client credentials). Every payment and refund
 * carries our id as `Idempotency-Key` and (payments) as `orderId`, so a repeated call never charges
 * twice. SecurePay has no status query for card payments: a lost answer is resolved by repeating
 * the call (see `fetchTransaction`).
 * Sources: FACTS.md beside the fixtures; the SDK `fgct/securepay-api`
 * (`CreatePaymentFromInstrumentRequest`, `RefundPaymentRequest`, `CancelPreAuthRequest`,
 * `ClientCredentialsRequest`); https://auspost.com.au/payments/docs/securepay/ (Card payments).
 */
export class SecurepayClient implements GatewayClient {
  readonly #options: SecurepayClientOptions;
  readonly #tokens: TokenCache;
  readonly #apiBase: string;
  readonly #ip: string;
  readonly #now: () => number;

  constructor(options: SecurepayClientOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#apiBase = options.apiBase.replace(/\/+$/, '');
    this.#ip = options.ip ?? DEFAULT_REQUEST_IP;
    this.#tokens = new TokenCache(
      {
        tokenUrl: options.authUrl,
        clientId: options.clientId,
        clientSecret: options.clientSecret,
        form: { audience: SECUREPAY_AUDIENCE },
        timeoutMs: options.tokenTimeoutMs ?? options.timeoutMs,
      },
      options.now,
    );
  }

  /**
   * POSTs JSON to the payments API with a Bearer token and the `Idempotency-Key`. A 401 means the
   * cached token is no longer accepted: it is dropped and the call is made once more with a new one.
   */
  async #post(path: string, idempotencyKey: string, payload: Record<string, unknown>): Promise<Exchange> {
    for (let attempt = 1; ; attempt++) {
      let token: string;
      try {
        token = await this.#tokens.get();
      } catch (error) {
        if (error instanceof OAuthError) {
          return { kind: 'not_taken', code: 'authentication_failed', message: error.message };
        }
        if (error instanceof GatewayUnreachable) {
          return {
            kind: 'not_taken',
            code: 'token_unavailable',
            message: `no OAuth token, so nothing was sent to SecurePay: ${error.message}`,
          };
        }
        throw error;
      }
      let response: Awaited<ReturnType<typeof gatewayRequest>>;
      try {
        response = await gatewayRequest({
          method: 'POST',
          url: `${this.#apiBase}${path}`,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            accept: 'application/json',
            'idempotency-key': idempotencyKey,
          },
          body: JSON.stringify(payload),
          timeoutMs: this.#options.timeoutMs,
        });
      } catch (error) {
        if (error instanceof GatewayUnreachable) return { kind: 'no_answer', message: error.message };
        throw error;
      }
      if (response.status === 401) {
        this.#tokens.invalidate();
        if (attempt < 2) continue;
        return {
          kind: 'not_taken',
          code: 'unauthorized',
          message: 'SecurePay answered 401 twice, with a fresh OAuth token the second time',
        };
      }
      return { kind: 'answer', status: response.status, body: parseJsonBody(response.text) };
    }
  }

  /** Sends the payment for `request`; shared by `charge` and the repeat of `fetchTransaction`. */
  async #pay(request: ChargeRequest): Promise<Exchange> {
    const card = parseStoredCard(request.paymentMethod.token, request.paymentMethod.customerId);
    if (!card) {
      return {
        kind: 'not_taken',
        code: 'missing_customer_code',
        message:
          'a SecurePay stored card is charged under its customer (POST /v2/customers/{customerCode}/payments): ' +
          'the payment method needs gateway_token = customerCode/instrumentToken, or gateway_customer_id = ' +
          'the customerCode and gateway_token = the stored instrument token; nothing was sent',
      };
    }
    const { customerCode, instrumentToken } = card;
    const orderId = orderIdOf(request.reference);
    const amount = wireAmount(request.amount, request.currency);
    if (typeof amount !== 'number') return amount;
    return this.#post(`/v2/customers/${encodeURIComponent(customerCode)}/payments`, orderId, {
      amount,
      merchantCode: this.#options.merchantCode,
      token: instrumentToken,
      ip: this.#ip,
      orderId,
      customerCode,
      currency: request.currency.toUpperCase(),
    });
  }

  /**
   * Charges a stored card: `POST {apiBase}/v2/customers/{customerCode}/payments` with
   * `Idempotency-Key` = `orderId` = our `txn_…` reference and JSON `{amount (integer cents, `SECUREPAY_CURRENCIES`),
   * merchantCode, token (the stored instrument's token), ip, orderId, customerCode, currency}`.
   * The customer code and instrument come from the payment method (`parseStoredCard`: token
   * `customerCode/instrumentToken`, or `customerId` + instrument token); without both nothing is sent
   * and the charge is declined with code `missing_customer_code`.
   *
   * Outcomes: HTTP 200/201 → status.ts (`paid` → succeeded; `failed` → declined with
   * `gatewayResponseCode` / `gatewayResponseMessage`; `unknown` or a status the table does not know
   * → unknown, whatever bank code it carries: the invoice stays locked and the poller repeats), with
   * `gatewayTransactionId` = the `orderId` (our reference: refunds and pre-authorisation cancels
   * address the order; the bank's `bankTransactionId` is a short bank number, not an id of the
   * payment). HTTP 400-type `{"errors": [{code, detail}]}` → declined with the first `code`; no token or
   * 401 twice → declined (`authentication_failed`, `token_unavailable`, `unauthorized`: nothing was
   * taken); 408/409/429, 5xx, timeout, network error, an unreadable answer or one naming another
   * order/amount → unknown. Never throws for SecurePay's answers.
   */
  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    const exchange = await this.#pay(request);
    return chargeOutcomeOf(exchange, expectedOf(request), false);
  }

  /**
   * Refunds part or all of a paid order: `POST {apiBase}/v2/orders/{orderId}/refunds` with
   * `orderId` = `chargeReference` (the order id the charge was sent with), `Idempotency-Key` = our
   * `re_…` reference, JSON `{merchantCode, ip, amount (integer cents)}`. An amount SecurePay cannot take
   * (`SECUREPAY_CURRENCIES`) is declined `amount_not_representable` without a call.
   * The answer carries the payment fields (`status`, `orderId`, `amount`, `bankTransactionId`,
   * `gatewayResponseCode`…; FACTS.md, SDK `RefundObject`) and maps through status.ts: `paid` →
   * succeeded (as in the sandbox refund answer logged in brightlabscomau/craftcommerce-securepay).
   * SecurePay gives a refund no id of its own, so `gatewayRefundId` is our refund reference.
   * 400-type refusals → declined with SecurePay's code; 5xx, timeouts → unknown. The repeat of a
   * refund left unknown (`request.repeat`) is sent with the same `Idempotency-Key` and `orderId`
   * (PRODUCT.md §2) and read as `fetchTransaction` reads a charge's repeat: the answer must name the
   * order, and a refusal stays unknown.
   */
  async refund(request: RefundRequest): Promise<RefundOutcome> {
    const orderId = orderIdOf(request.chargeReference);
    const amount = wireAmount(request.amount, request.currency);
    const exchange =
      typeof amount === 'number'
        ? await this.#post(`/v2/orders/${encodeURIComponent(orderId)}/refunds`, request.reference, {
            merchantCode: this.#options.merchantCode,
            ip: this.#ip,
            amount,
          })
        : amount;
    const reading = readExchange(
      exchange,
      { orderId, amount: request.amount, currency: request.currency.toUpperCase() },
      request.repeat === true,
    );
    if (reading.status === 'unknown') return { status: 'unknown', message: reading.message };
    if (reading.status === 'declined') return reading;
    return { status: reading.status, gatewayRefundId: request.reference };
  }

  /**
   * SecurePay cancels only pre-authorisations (`POST /v2/payments/preauths/{orderId}/cancel`, SDK
   * `CancelPreAuthRequest`); billhook's charges are captured payments, which cannot be voided, only
   * refunded. So this sends nothing and declines with code `not_a_preauthorisation`.
   */
  async void(request: VoidRequest): Promise<VoidOutcome> {
    return {
      status: 'declined',
      code: 'not_a_preauthorisation',
      message: `SecurePay can cancel only pre-authorisations; order ${orderIdOf(request.reference)} is a captured payment: refund it instead`,
    };
  }

  /**
   * What became of a charge. SecurePay has no status query for card payments (FACTS.md: none in any
   * public client, a complete SDK included), so this repeats the original charge (`query.charge`)
   * with the same `Idempotency-Key` and `orderId` and maps the answer as `charge` does, with stricter
   * rules: the answer must name our `orderId` (and amount, currency) to count, and a 400-type
   * refusal, a 401, a timeout or a 5xx leaves the outcome unknown (the poller then turns a still-unknown
   * attempt into a reconciliation exception for a person). Never `not_found`: SecurePay cannot confirm
   * that a payment does not exist.
   * How SecurePay answers a repeated Idempotency-Key (the stored first answer, or a new one) is not
   * documented in any source found; if the first call never arrived, the repeat is the charge.
   * So the repeat is made only while the attempt (its creation time is in our id) is younger than
   * `SAFE_REPEAT_WINDOW_MS` (1 hour) at the check (`query.at`, the sweep's clock; else the client's
   * clock); later, or for a reference that carries no time, the answer is
   * unknown without a call, as a repeat after SecurePay forgot the key could charge the card twice.
   * A paid answer for another amount or currency than the charge's is unknown with what SecurePay
   * reports (`reported`), for which the poller raises an `amount_mismatch` (or `currency_mismatch`)
   * exception.
   */
  async fetchTransaction(query: TransactionQuery): Promise<TransactionStatusOutcome> {
    if (query.charge.reference !== query.reference) {
      return {
        status: 'unknown',
        message: `the charge to repeat (${query.charge.reference}) is not the one asked about (${query.reference})`,
      };
    }
    if (!withinRepeatWindow(query.reference, query.at?.getTime() ?? this.#now(), SAFE_REPEAT_WINDOW_MS)) {
      return {
        status: 'unknown',
        message: `attempt ${query.reference} is more than an hour old (or carries no time): its payment is not repeated, since how long SecurePay keeps an Idempotency-Key is undocumented; look orderId ${orderIdOf(query.reference)} up in SecurePay's merchant portal`,
      };
    }
    const exchange = await this.#pay(query.charge);
    if (exchange.kind === 'not_taken' && exchange.code === 'missing_customer_code') {
      return { status: 'declined', code: exchange.code, message: exchange.message };
    }
    return chargeOutcomeOf(exchange, expectedOf(query.charge), true);
  }
}

function expectedOf(request: ChargeRequest): Expected {
  return {
    orderId: orderIdOf(request.reference),
    amount: request.amount,
    currency: request.currency.toUpperCase(),
  };
}
