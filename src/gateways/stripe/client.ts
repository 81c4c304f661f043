import Stripe from 'stripe';
import type { z } from 'zod';
import { AmountNotRepresentable, fromGateway, toGateway } from '../../money/gateway-amount.ts';
import { attemptCreatedAt } from '../attempts.ts';
import { heldAgainstCharge } from '../reported.ts';
import type { SettlementRange } from '../settlement.ts';
import {
  type ChargeInitiation,
  type ChargeOutcome,
  type ChargeRequest,
  type GatewayClient,
  type RefundOutcome,
  type RefundRequest,
  type TransactionQuery,
  type TransactionStatusOutcome,
  type VoidOutcome,
  type VoidRequest,
  WebhookPayloadError,
} from '../types.ts';
import { cardOfIntent } from './card.ts';
import { REFERENCE_KEY, withDeclineCode } from './conventions.ts';
import { STRIPE_CURRENCIES } from './currencies.ts';
import { ListPage, StripeObject } from './schemas.ts';
import type { StripeSettlementCalls } from './settlement.ts';
import { INTENT_STATUSES, outcomeOfIntent, refundOutcomeOf } from './status.ts';

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
 * How long after an attempt (its creation time read from its `txn_…` id) an empty search by its
 * reference still proves nothing: Stripe's search "can be up to an hour behind during outages"
 * ("Don't use search in read-after-write flows where strict consistency is necessary. Under normal
 * operating conditions, data is searchable in less than a minute. Occasionally, propagation of new
 * or updated data can be up to an hour behind during outages",
 * https://docs.stripe.com/api/payment_intents/search), and an outage is when charges are left
 * unknown. The hour, and an hour's margin as the other repeat windows have: a PaymentIntent created
 * by the lost call may not be searchable yet, and freeing the invoice would allow a second charge.
 */
export const SEARCH_LAG_MS = 2 * 60 * 60 * 1000;

type Unknown = { status: 'unknown'; message: string };

/**
 * `off_session` of an off-session PaymentIntent by the kind of merchant-initiated charge: `true`
 * tells Stripe the customer is not in the checkout flow; the string forms also say which kind it is,
 * `recurring` (a charge on an agreed schedule: renewals, scheduled charges, their retries) or
 * `one_off` (an unscheduled merchant-initiated charge), which Stripe passes on to the card networks
 * as the stored-credential indicator. Source: https://docs.stripe.com/api/payment_intents/create#create_payment_intent-off_session
 * (`boolean | 'one_off' | 'recurring'`, `PaymentIntentCreateParams.OffSession` in stripe-node 23).
 */
const OFF_SESSION: Readonly<Record<ChargeInitiation, 'recurring' | 'one_off'>> = {
  recurring: 'recurring',
  unscheduled: 'one_off',
};

/**
 * Maps an error thrown by the stripe package to an outcome. Only errors that prove Stripe did not
 * move money are declines: an amount Stripe cannot take (`STRIPE_CURRENCIES`: nothing was sent), card
 * errors (HTTP 402, https://docs.stripe.com/error-codes), invalid
 * requests (400/404) and authentication/permission errors. Connection errors, timeouts, 5xx, rate
 * limits and idempotency conflicts leave the outcome unknown.
 */
function outcomeOfError(
  error: unknown,
): { status: 'declined'; code: string; message: string } | { status: 'unknown'; message: string } {
  if (error instanceof AmountNotRepresentable) {
    // Thrown before the request was built: nothing was sent.
    return { status: 'declined', code: error.code, message: error.message };
  }
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

/** A Stripe answer checked against `StripeObject`, or the unknown outcome it leaves. */
function readObject<T>(
  answer: T,
  what: string,
): { ok: true; value: T & z.output<typeof StripeObject> } | { ok: false; unknown: Unknown } {
  const parsed = StripeObject.safeParse(answer);
  return parsed.success
    ? { ok: true, value: answer as T & z.output<typeof StripeObject> }
    : { ok: false, unknown: { status: 'unknown', message: `Stripe answered with an unreadable ${what}` } };
}

/** A PaymentIntent answer (checked first) as a charge outcome. */
function outcomeOfIntentAnswer(intent: Stripe.PaymentIntent): ChargeOutcome {
  const read = readObject(intent, 'payment intent');
  return read.ok ? outcomeOfIntent(read.value) : read.unknown;
}

/**
 * A status check's PaymentIntent as a charge outcome, held against the charge asked about
 * (`heldAgainstCharge`, src/gateways/reported.ts): a succeeded intent whose `amount_received` (what it
 * collected, https://docs.stripe.com/api/payment_intents/object#payment_intent_object-amount_received),
 * or a pending one whose `amount`, is not the charge's amount, or whose `currency` is not the charge's
 * (both read by `STRIPE_CURRENCIES`), is unknown with what Stripe reports, for which the poller raises
 * an `amount_mismatch` (or `currency_mismatch`) exception; nothing is booked.
 */
function checkedIntent(intent: Stripe.PaymentIntent, charge: ChargeRequest): ChargeOutcome {
  const outcome = outcomeOfIntentAnswer(intent);
  if (outcome.status !== 'succeeded' && outcome.status !== 'pending') return outcome;
  const moved = intent.status === 'succeeded' ? intent.amount_received : intent.amount;
  return heldAgainstCharge('Stripe', outcome, charge, {
    currency: intent.currency,
    amount: (currency) => fromGateway(STRIPE_CURRENCIES, moved, currency),
  });
}

/**
 * Every item of a Stripe list, page after page: each page is asked with `starting_after` = the last
 * item's id of the page before, while it says `has_more` (https://docs.stripe.com/api/pagination).
 * @throws WebhookPayloadError for a page that is not a list or an item without an id (never guessed)
 */
async function everyPage(
  what: string,
  page: (startingAfter: string | undefined) => Promise<unknown>,
): Promise<unknown[]> {
  const items: unknown[] = [];
  let startingAfter: string | undefined;
  for (;;) {
    const parsed = ListPage.safeParse(await page(startingAfter));
    if (!parsed.success)
      throw new WebhookPayloadError(`Stripe answered a list of ${what} that is not a list`);
    const { data, has_more: hasMore } = parsed.data;
    items.push(...data);
    if (!hasMore) return items;
    const last = data.at(-1)?.id;
    if (typeof last !== 'string' || last === '') {
      throw new WebhookPayloadError(`Stripe answered a page of ${what} with has_more but no last id`);
    }
    startingAfter = last;
  }
}

/**
 * Stripe's outbound side: off-session PaymentIntents and refunds, each sent with our id as the
 * `Idempotency-Key` (https://docs.stripe.com/api/idempotent_requests) and in metadata, so a repeated
 * call never charges twice and webhooks can be matched to our rows.
 */
export class StripeClient implements GatewayClient, StripeSettlementCalls {
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
   * `off_session=recurring` or `one_off` by `request.initiation` (see OFF_SESSION;
   * https://docs.stripe.com/payments/save-and-reuse#charge-saved-payment-method).
   * The answer's status maps as `outcomeOfIntent` says; card errors are declines, the rest unknown.
   * `latest_charge` is expanded so that a success carries the card's brand, last four and expiry
   * (`cardOfIntent`).
   */
  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    try {
      const intent = await this.#stripe.paymentIntents.create(
        {
          amount: toGateway(STRIPE_CURRENCIES, request.amount, request.currency),
          currency: request.currency.toLowerCase(),
          payment_method: request.paymentMethod.token,
          ...(request.paymentMethod.customerId ? { customer: request.paymentMethod.customerId } : {}),
          off_session: OFF_SESSION[request.initiation],
          confirm: true,
          description: request.description,
          metadata: { [REFERENCE_KEY]: request.reference },
          expand: ['latest_charge'],
        },
        { idempotencyKey: request.reference },
      );
      const outcome = outcomeOfIntentAnswer(intent);
      if (outcome.status !== 'succeeded') return outcome;
      const card = cardOfIntent(intent);
      return card ? { ...outcome, card } : outcome;
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
   * `succeeded` → succeeded; `pending` / `requires_action` → pending; `failed` / `canceled` → declined;
   * any other status, or an answer without `id` and `status`, → unknown.
   */
  async refund(request: RefundRequest): Promise<RefundOutcome> {
    try {
      const refund = await this.#stripe.refunds.create(
        {
          payment_intent: request.gatewayTransactionId,
          amount: toGateway(STRIPE_CURRENCIES, request.amount, request.currency),
          ...(request.reason && REFUND_REASONS.has(request.reason)
            ? { reason: request.reason as 'duplicate' | 'fraudulent' | 'requested_by_customer' }
            : {}),
          metadata: { [REFERENCE_KEY]: request.reference },
        },
        { idempotencyKey: request.reference },
      );
      const read = readObject(refund, 'refund');
      if (!read.ok) return read.unknown;
      return refundOutcomeOf(refund);
    } catch (error) {
      return outcomeOfError(error);
    }
  }

  /**
   * Cancels a PaymentIntent that has not succeeded yet: `POST /v1/payment_intents/{id}/cancel`
   * (https://docs.stripe.com/api/payment_intents/cancel). A succeeded one cannot be voided (refund it).
   * `canceled` → succeeded; another known status → declined with it; an unknown status or an
   * unreadable answer → unknown.
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
      const read = readObject(intent, 'payment intent');
      if (!read.ok) return read.unknown;
      if (intent.status === 'canceled') return { status: 'succeeded' };
      return INTENT_STATUSES.has(intent.status)
        ? { status: 'declined', code: intent.status, message: `payment intent is ${intent.status}` }
        : {
            status: 'unknown',
            message: `payment intent ${intent.id} has status ${intent.status} after a cancel`,
          };
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
   * The PaymentIntent of Stripe charge `chargeId` (`GET /v1/charges/:id`,
   * https://docs.stripe.com/api/charges/object#charge_object-payment_intent), null when it has none
   * (a Charges API payment). Throws when Stripe does not answer.
   */
  async paymentIntentOfCharge(chargeId: string): Promise<string | null> {
    const charge = await this.#stripe.charges.retrieve(chargeId);
    const intent = charge.payment_intent;
    return typeof intent === 'string' ? intent : (intent?.id ?? null);
  }

  /**
   * A balance transaction with its source expanded: `GET /v1/balance_transactions/:id?expand[]=source`
   * (https://docs.stripe.com/api/balance_transactions/retrieve, https://docs.stripe.com/api/expanding_objects),
   * for settlement.ts to read (`settlementLineOf`).
   * @throws the stripe package's error when Stripe does not answer
   */
  async balanceTransaction(id: string): Promise<unknown> {
    return this.#stripe.balanceTransactions.retrieve(id, { expand: ['source'] });
  }

  /**
   * Every balance transaction paid out by automatic payout `payoutId`, sources expanded:
   * `GET /v1/balance_transactions?payout=…&limit=100&expand[]=data.source`, page after page with
   * `starting_after` = the last id while `has_more` (https://docs.stripe.com/api/balance_transactions/list,
   * https://docs.stripe.com/api/pagination; 100 is the largest `limit`). The list includes the
   * payout's own transaction (type `payout`).
   * @throws the stripe package's error when Stripe does not answer; WebhookPayloadError for a page
   *   that is not a list
   */
  async payoutBalanceTransactions(payoutId: string): Promise<unknown[]> {
    return everyPage('balance transactions', (startingAfter) =>
      this.#stripe.balanceTransactions.list({
        payout: payoutId,
        limit: 100,
        expand: ['data.source'],
        ...(startingAfter ? { starting_after: startingAfter } : {}),
      }),
    );
  }

  /**
   * Payout `id` as Stripe renders it: `GET /v1/payouts/:id` (https://docs.stripe.com/api/payouts/retrieve).
   * @throws the stripe package's error when Stripe does not answer or has no such payout
   */
  async payout(id: string): Promise<Record<string, unknown>> {
    return { ...(await this.#stripe.payouts.retrieve(id)) };
  }

  /**
   * Every payout created in `range`: `GET /v1/payouts?created[gte]=…&created[lt]=…&limit=100`, page after
   * page (https://docs.stripe.com/api/payouts/list; `created` in Unix seconds, the range rounded out to
   * whole seconds).
   * @throws the stripe package's error when Stripe does not answer; WebhookPayloadError for a page
   *   that is not a list
   */
  async payoutsCreated(range: SettlementRange): Promise<unknown[]> {
    const created = {
      gte: Math.floor(range.from.getTime() / 1000),
      lt: Math.ceil(range.to.getTime() / 1000),
    };
    return everyPage('payouts', (startingAfter) =>
      this.#stripe.payouts.list({
        created,
        limit: 100,
        ...(startingAfter ? { starting_after: startingAfter } : {}),
      }),
    );
  }

  /**
   * What became of a charge: `GET /v1/payment_intents/{id}` when its id is known, otherwise a search on
   * our metadata reference (https://docs.stripe.com/search#query-fields-for-payment-intents). The
   * search index trails writes (up to an hour during outages): a search that finds nothing is
   * `not_found` only for an attempt more than `SEARCH_LAG_MS` (2 hours) old at the check (`query.at`,
   * the sweep's clock; else now); for a younger one, or a reference that carries no time, it is
   * unknown, and the invoice stays locked. A succeeded or pending intent for another amount or currency
   * than the charge's is unknown with what Stripe reports (`checkedIntent`).
   */
  async fetchTransaction(query: TransactionQuery): Promise<TransactionStatusOutcome> {
    try {
      if (query.gatewayTransactionId) {
        const intent = await this.#stripe.paymentIntents.retrieve(query.gatewayTransactionId);
        return checkedIntent(intent, query.charge);
      }
      const found = await this.#stripe.paymentIntents.search({
        query: `metadata['${REFERENCE_KEY}']:'${query.reference}'`,
        limit: 1,
      });
      if (!Array.isArray(found.data)) {
        return {
          status: 'unknown',
          message: 'Stripe answered the payment intent search without a data list',
        };
      }
      const intent = found.data[0];
      if (intent) return checkedIntent(intent, query.charge);
      const created = attemptCreatedAt(query.reference);
      const at = query.at?.getTime() ?? Date.now();
      return created === undefined || at - created.getTime() <= SEARCH_LAG_MS
        ? {
            status: 'unknown',
            message: `Stripe's search finds no payment intent for ${query.reference} yet; its index can trail writes by up to an hour, so this proves nothing until the attempt is ${SEARCH_LAG_MS / 3_600_000} hours old`,
          }
        : { status: 'not_found' };
    } catch (error) {
      const outcome = outcomeOfError(error);
      return outcome.status === 'declined' ? { status: 'unknown', message: outcome.message } : outcome;
    }
  }
}
