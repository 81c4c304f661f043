import { AmountNotRepresentable, fromGateway, toGateway } from '../../money/gateway-amount.ts';
import { type GatewayResponse, GatewayUnreachable, parseJsonBody } from '../http.ts';
import { heldAgainstCharge } from '../reported.ts';
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
import { EwayAnswerError, EwayApi, type EwayApiOptions, parseAnswer } from './api.ts';
import { cardOfTransactionAnswer } from './card.ts';
import { describeCodes, splitCodes } from './codes.ts';
import { EWAY_TRANSACTION_TYPE, invoiceReference } from './conventions.ts';
import { EWAY_CURRENCIES } from './currencies.ts';
import { EwayCancelResponse, EwayRefundResponse, EwayResult, EwayTransactionResponse } from './schemas.ts';
import { chargeOutcomeOf, combineOutcomes, refundOutcomeOf, verdictOf, voidOutcomeOf } from './status.ts';

/** HTTP statuses that prove nothing about whether eWAY acted: timeout, conflict, too early, rate limit. */
const INCONCLUSIVE_4XX: ReadonlySet<number> = new Set([408, 409, 425, 429]);

type Refusal = { status: 'declined'; code: string; message: string };
type Unknown = { status: 'unknown'; message: string };

/**
 * What an HTTP status without a usable eWAY result says about a money-moving call: a 5xx or an
 * inconclusive 4xx leaves it unknown; any other 4xx (401 bad credentials, 400/404/405 rejected
 * request) means eWAY refused it, with the `Errors` codes when the body has them.
 */
function outcomeOfStatus(response: GatewayResponse): Refusal | Unknown | undefined {
  if (response.status >= 200 && response.status <= 299) return undefined;
  if (response.status >= 500 || response.status < 400 || INCONCLUSIVE_4XX.has(response.status)) {
    return { status: 'unknown', message: `eWAY answered HTTP ${response.status}` };
  }
  const body = EwayResult.safeParse(parseJsonBody(response.text));
  const codes = body.success ? splitCodes(body.data.Errors) : [];
  return codes.length > 0
    ? { status: 'declined', code: codes.join(','), message: describeCodes(codes) }
    : {
        status: 'declined',
        code: `http_${response.status}`,
        message: `eWAY refused the request (HTTP ${response.status})`,
      };
}

/** eWAY's TransactionID as the JSON number eWAY sends and takes, or undefined when `id` is not one. */
function numericTransactionId(id: string): number | undefined {
  const value = Number(id);
  return /^\d{1,16}$/.test(id) && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function notATransactionId(id: string): Refusal {
  return { status: 'declined', code: 'invalid_transaction_id', message: `not an eWAY TransactionID: ${id}` };
}

/** `amount` as eWAY's `TotalAmount` (`EWAY_CURRENCIES`), or the decline when eWAY cannot take it (nothing sent). */
function wireAmount(amount: bigint, currency: string): number | Refusal {
  try {
    return toGateway(EWAY_CURRENCIES, amount, currency);
  } catch (error) {
    if (!(error instanceof AmountNotRepresentable)) throw error;
    return { status: 'declined', code: error.code, message: error.message };
  }
}

function unknownOf(error: unknown): Unknown {
  if (error instanceof GatewayUnreachable || error instanceof EwayAnswerError) {
    return { status: 'unknown', message: error.message };
  }
  throw error;
}

/**
 * eWAY Rapid's outbound side (Direct Connection, https://eway.io/api-v3/): token payments, refunds,
 * cancellation of authorisations and transaction queries. eWAY has no idempotency keys: our id is the
 * unique `InvoiceReference` of each call and a lost answer is settled by querying that reference
 * (`fetchTransaction`), never by repeating the payment.
 */
export class EwayClient implements GatewayClient {
  readonly #api: EwayApi;

  constructor(options: EwayApiOptions) {
    this.#api = new EwayApi(options);
  }

  /**
   * Charges a stored card: `POST /Transaction` with `Method: "TokenPayment"`, `TransactionType`
   * `Recurring` or `MOTO` by `request.initiation` (see EWAY_TRANSACTION_TYPE),
   * `Customer.TokenCustomerID` = the payment method's token, and `Payment { TotalAmount
   * (integer, `EWAY_CURRENCIES`), InvoiceReference (our `txn_…` id), CurrencyCode }`
   * (https://eway.io/nz/developers/api/token-payments). The answer maps as status.ts says:
   * `TransactionStatus: false` in an HTTP 200 is a decline with its `ResponseMessage` code (D4401…),
   * validation `Errors` (V6040,V6021…) a decline with those codes, a 5xx / timeout unknown. An approval
   * whose echoed amount or currency differs from the request (a partial approval) is unknown, for a
   * person to look at. An approval carries the card as `cardOfTransactionAnswer` reads it.
   * An amount eWAY cannot take is declined `amount_not_representable` without a call.
   * @throws RangeError for a reference over 50 characters (a bug, not an answer)
   */
  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    const amount = wireAmount(request.amount, request.currency);
    if (typeof amount !== 'number') return amount;
    const body = {
      Customer: { TokenCustomerID: request.paymentMethod.token },
      Payment: {
        TotalAmount: amount,
        InvoiceReference: invoiceReference(request.reference),
        ...(request.description ? { InvoiceDescription: request.description.slice(0, 64) } : {}),
        CurrencyCode: request.currency.toUpperCase(),
      },
      Method: 'TokenPayment',
      TransactionType: EWAY_TRANSACTION_TYPE[request.initiation],
    };
    try {
      const response = await this.#api.send('POST', ['Transaction'], body);
      const refused = outcomeOfStatus(response);
      if (refused) return refused;
      const json = parseJsonBody(response.text);
      const answer = parseAnswer(EwayTransactionResponse, json, 'Transaction');
      const outcome = chargeOutcomeOf(verdictOf(answer));
      if (outcome.status !== 'succeeded') return outcome;
      const echoed = answer.Payment;
      if (
        (echoed?.TotalAmount !== undefined && echoed.TotalAmount !== amount) ||
        (echoed?.CurrencyCode && echoed.CurrencyCode.toUpperCase() !== request.currency.toUpperCase())
      ) {
        const approved = `${echoed?.TotalAmount ?? request.amount} ${echoed?.CurrencyCode ?? ''}`.trim();
        const id = outcome.gatewayTransactionId;
        return {
          status: 'unknown',
          message: `eWAY approved transaction ${id} for ${approved}, not the ${request.amount} ${request.currency} asked`,
        };
      }
      const card = cardOfTransactionAnswer(json);
      return card ? { ...outcome, card } : outcome;
    } catch (error) {
      return unknownOf(error);
    }
  }

  /**
   * Refunds part or all of a payment: `POST /Transaction/{TransactionID}/Refund` with
   * `Refund { TransactionID, TotalAmount (minor units), InvoiceReference (our `re_…` id), CurrencyCode }`
   * (the SDKs' `refund`; https://eway.io/api-v3/ "Refunds"). `TransactionStatus: true` → succeeded with
   * the refund's own TransactionID; `false` / `Errors` (S5010, V6151…) → declined; 5xx / timeout →
   * unknown. A refund has no idempotency key either: an unknown one must be checked in eWAY's
   * dashboard before any repeat.
   */
  async refund(request: RefundRequest): Promise<RefundOutcome> {
    const transactionId = numericTransactionId(request.gatewayTransactionId);
    if (transactionId === undefined) return notATransactionId(request.gatewayTransactionId);
    const amount = wireAmount(request.amount, request.currency);
    if (typeof amount !== 'number') return amount;
    const body = {
      Refund: {
        TransactionID: transactionId,
        TotalAmount: amount,
        InvoiceReference: invoiceReference(request.reference),
        ...(request.reason ? { InvoiceDescription: request.reason.slice(0, 64) } : {}),
        CurrencyCode: request.currency.toUpperCase(),
      },
    };
    try {
      const response = await this.#api.send('POST', ['Transaction', String(transactionId), 'Refund'], body);
      const refused = outcomeOfStatus(response);
      if (refused) return refused;
      return refundOutcomeOf(
        verdictOf(parseAnswer(EwayRefundResponse, parseJsonBody(response.text), 'Refund')),
      );
    } catch (error) {
      return unknownOf(error);
    }
  }

  /**
   * Cancels an authorisation: `POST /CancelAuthorisation` with `{ TransactionID }` (the SDKs'
   * `cancelTransaction`). eWAY cancels only a pre-authorisation not yet captured; billhook's own
   * charges are captured token payments, which eWAY refuses to cancel with a validation code in
   * `Errors` (e.g. V6134 "Invalid Auth Transaction ID for Capture/Void"): that comes back as a
   * decline with eWAY's code, and the payment must be refunded instead.
   */
  async void(request: VoidRequest): Promise<VoidOutcome> {
    const transactionId = numericTransactionId(request.gatewayTransactionId);
    if (transactionId === undefined) return notATransactionId(request.gatewayTransactionId);
    try {
      const response = await this.#api.send('POST', ['CancelAuthorisation'], {
        TransactionID: transactionId,
      });
      const refused = outcomeOfStatus(response);
      if (refused) return refused;
      return voidOutcomeOf(
        verdictOf(parseAnswer(EwayCancelResponse, parseJsonBody(response.text), 'CancelAuthorisation')),
      );
    } catch (error) {
      return unknownOf(error);
    }
  }

  /**
   * What became of a charge, asked before anything is retried (eWAY has no idempotency): Transaction
   * Query `GET /Transaction/{TransactionID}` when the id is known, otherwise by our reference
   * `GET /Transaction/InvoiceRef/{reference}`. An empty `Transactions` list is `not_found` (the
   * charge never reached eWAY); several matches combine as status.ts `combineOutcomes` says (more
   * than one approval is unknown, with what they moved in all as `reported`); a failed query (no answer,
   * non-2xx, an undocumented body or `Errors` without transactions) is unknown. An approved (or
   * authorised) transaction whose `TotalAmount` (read by `EWAY_CURRENCIES`) or `CurrencyCode` is not
   * the charge's (`query.charge`; no `CurrencyCode`: the charge's) is unknown with what eWAY reports
   * (`heldAgainstCharge`), as `charge` treats such an echo: eWAY approves "for partial amount"
   * (A2010), and the poller raises an `amount_mismatch` exception for it.
   */
  async fetchTransaction(query: TransactionQuery): Promise<TransactionStatusOutcome> {
    try {
      const answer = await this.#api.queryTransactions(
        query.gatewayTransactionId
          ? { transactionId: query.gatewayTransactionId }
          : { invoiceReference: invoiceReference(query.reference) },
      );
      if (answer.Transactions.length === 0) {
        const errors = splitCodes(answer.Errors).filter((code) => code !== 'V6171');
        return errors.length === 0
          ? { status: 'not_found' }
          : { status: 'unknown', message: `eWAY Transaction Query: ${describeCodes(errors)}` };
      }
      return combineOutcomes(
        query.charge,
        answer.Transactions.map((t) => {
          const verdict = verdictOf(t);
          const outcome = heldAgainstCharge('eWAY', chargeOutcomeOf(verdict), query.charge, {
            currency: t.CurrencyCode,
            amount: (currency) => fromGateway(EWAY_CURRENCIES, t.TotalAmount, currency),
          });
          return { verdict, outcome };
        }),
      );
    } catch (error) {
      return unknownOf(error);
    }
  }
}
