import type { z } from 'zod';
import { isCurrency } from '../../money/currency.ts';
import { fromGateway, toGateway } from '../../money/gateway-amount.ts';
import { GatewayUnreachable, gatewayRequest } from '../http.ts';
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
import { cardOfTransaction } from './card.ts';
import {
  type CustomerProfileToken,
  DUPLICATE_WINDOW_SECONDS,
  parseAnetJson,
  parseProfileToken,
  toInvoiceNumber,
} from './conventions.ts';
import { AUTHORIZENET_CURRENCIES } from './currencies.ts';
import {
  type ApiMessages,
  type BatchDetails,
  CreateTransactionResponse,
  MerchantDetailsResponse,
  SettledBatchListResponse,
  type TransactionDetails,
  TransactionDetailsResponse,
  TransactionListResponse,
  type TransactionResponse,
  type TransactionSummary,
} from './schemas.ts';
import { meaningOfResponseCode, REASON, RECORD_NOT_FOUND, SYSTEM_ERROR, stateOfStatus } from './status.ts';

/** Settings of the outbound Authorize.Net client. */
export interface AuthorizeNetClientOptions {
  /** `AUTHORIZENET_API_LOGIN_ID`: `merchantAuthentication.name`. */
  apiLoginId: string;
  /** `AUTHORIZENET_TRANSACTION_KEY`: `merchantAuthentication.transactionKey`. */
  transactionKey: string;
  /** Base URL, e.g. `https://apitest.authorize.net` (sandbox), `https://api.authorize.net`, or a stub. */
  apiBase: string;
  /** Per-request timeout in milliseconds; a timeout is an unknown outcome. */
  timeoutMs: number;
}

/** The answer to one API call: the parsed body, or why its outcome is unknown (no answer, 5xx, garbage). */
type Answer<T> = { kind: 'answer'; body: T } | { kind: 'unknown'; message: string };

/** What getTransactionDetails said about a transId. */
export type DetailsLookup =
  | { kind: 'found'; transaction: TransactionDetails }
  | { kind: 'not_found'; message: string }
  | { kind: 'unknown'; message: string };

/**
 * What the webhook half needs from the API: the transaction a notification names, and the
 * currencies of the gateway account (getTransactionDetails returns amounts without a currency).
 */
export interface TransactionSource {
  /** getTransactionDetails of `transId`; never throws for gateway answers. */
  transactionDetails(transId: string): Promise<DetailsLookup>;
  /**
   * The ISO 4217 currencies the account processes (one or more), from getMerchantDetails, cached
   * after success.
   * @throws Error when the gateway cannot be asked or names no ISO 4217 currency
   */
  accountCurrencies(): Promise<readonly string[]>;
}

/**
 * What Authorize.Net moved for a transaction, as decimal text in major units: `settleAmount` once
 * it is captured or settled (a partial capture or settlement settles less than `authAmount`, and
 * the settled amount is what moved: PRODUCT.md §11), `authAmount` while it is authorized, held,
 * declined or voided (their `settleAmount` is 0 or not final). Fields of `transactionDetailsType`
 * in AnetApiSchema.xsd (AuthorizeNet/sdk-node @8db0c07 lib/apicontracts.js `TransactionDetailsType`:
 * `requestedAmount`, `authAmount`, `settleAmount`, and no currency).
 */
export function movedAmountOf(
  transaction: Pick<TransactionDetails, 'transactionStatus' | 'authAmount' | 'settleAmount'>,
): string {
  return stateOfStatus(transaction.transactionStatus) === 'succeeded'
    ? (transaction.settleAmount ?? transaction.authAmount)
    : transaction.authAmount;
}

type Declined = { status: 'declined'; code: string; message: string };

/** The first API message as a decline: the `E000nn` code and its text. */
function declinedByMessages(messages: ApiMessages): Declined {
  const first = messages.message[0];
  return {
    status: 'declined',
    code: first?.code ?? 'E00001',
    message: first?.text ?? 'the request was refused',
  };
}

/** The response reason of a refused transaction: the first `errors[]` entry. */
function reasonOf(response: TransactionResponse, fallbackCode: string): { code: string; message: string } {
  const error = response.errors?.[0];
  return {
    code: error?.errorCode ?? fallbackCode,
    message: error?.errorText ?? `transaction refused (response code ${response.responseCode})`,
  };
}

/** The transId of an answer, or undefined when none was created (`"0"`, empty). */
function createdTransId(response: TransactionResponse): string | undefined {
  const id = response.transId;
  return id && id !== '0' ? id : undefined;
}

/**
 * What a transaction's details say about it as the charge `charged` (minor units and currency), for
 * fetchTransaction and the duplicate resolution. A captured or settled transaction succeeded with
 * what it settled (PRODUCT.md §11): a `settleAmount` less than the charge (a partial capture or
 * settlement) is succeeded with that `amount` (minor units), so billhook books what moved; one more
 * than the charge, nothing, or one that cannot be read is unknown, for a person to look at (billhook
 * never books more than it asked for).
 */
export function chargeOutcomeOfDetails(
  transaction: Pick<
    TransactionDetails,
    | 'transId'
    | 'transactionStatus'
    | 'authAmount'
    | 'settleAmount'
    | 'responseReasonCode'
    | 'responseReasonDescription'
  >,
  charged: { amount: bigint; currency: string },
): ChargeOutcome {
  const gatewayTransactionId = transaction.transId;
  switch (stateOfStatus(transaction.transactionStatus)) {
    case 'succeeded': {
      const settled = transaction.settleAmount;
      if (settled !== undefined) {
        let amount: bigint;
        try {
          amount = fromGateway(AUTHORIZENET_CURRENCIES, settled, charged.currency.toUpperCase());
        } catch {
          return {
            status: 'unknown',
            message: `transaction ${gatewayTransactionId}: unreadable settleAmount ${settled}`,
          };
        }
        if (amount > 0n && amount < charged.amount)
          return { status: 'succeeded', gatewayTransactionId, amount };
        if (amount !== charged.amount) {
          return {
            status: 'unknown',
            message: `transaction ${gatewayTransactionId} settled ${amount}, not the ${charged.amount} charged (minor units of ${charged.currency.toUpperCase()})`,
          };
        }
      }
      return { status: 'succeeded', gatewayTransactionId };
    }
    case 'pending':
      return { status: 'pending', gatewayTransactionId };
    case 'unknown':
      return {
        status: 'unknown',
        message: `transaction ${gatewayTransactionId} has status ${transaction.transactionStatus}, which billhook does not know`,
      };
    case 'canceled':
      return {
        status: 'declined',
        code: 'voided',
        message: `transaction ${gatewayTransactionId} was voided before settlement`,
        gatewayTransactionId,
      };
    case 'failed':
      return {
        status: 'declined',
        code: transaction.responseReasonCode ?? transaction.transactionStatus,
        message: transaction.responseReasonDescription ?? `transaction is ${transaction.transactionStatus}`,
        gatewayTransactionId,
      };
  }
}

/** The same from a list entry, which carries the status and `settleAmount`. */
function chargeOutcomeOfSummary(
  summary: TransactionSummary,
  charged: { amount: bigint; currency: string },
): ChargeOutcome {
  return chargeOutcomeOfDetails(
    {
      transId: summary.transId,
      transactionStatus: summary.transactionStatus,
      authAmount: summary.settleAmount ?? '0',
      settleAmount: summary.settleAmount,
    },
    charged,
  );
}

/** `transactionStatus` of a charge captured and waiting for tonight's settlement batch: voidable, not refundable. */
const UNSETTLED_CAPTURE = 'capturedPendingSettlement';

/** Which of several list entries with our invoice number tells the truth: money moved beats in flight beats failed. */
const STATE_RANK = { succeeded: 0, pending: 1, unknown: 1, failed: 2, canceled: 3 } as const;

/**
 * Authorize.Net's outbound side: `createTransactionRequest` for charges on customer profiles,
 * refunds and voids, and the Transaction Reporting calls for status checks, all as JSON POSTs to
 * `{AUTHORIZENET_API_BASE}/xml/v1/request.api` with `merchantAuthentication` in the body
 * (https://developer.authorize.net/api/reference/index.html). Element order follows the XSD: the
 * JSON API is validated as XML, so members are written in schema order.
 */
export class AuthorizeNetClient implements GatewayClient, TransactionSource {
  readonly #options: AuthorizeNetClientOptions;
  readonly #url: string;
  #currencies: Promise<readonly string[]> | undefined;

  constructor(options: AuthorizeNetClientOptions) {
    this.#options = options;
    this.#url = `${options.apiBase.replace(/\/+$/, '')}/xml/v1/request.api`;
  }

  /**
   * Sends one API request `{ [name]: { merchantAuthentication, ...members } }` and reads its answer.
   * No answer, a timeout, HTTP 5xx, a body that is not JSON or not the expected shape: unknown.
   */
  async #call<S extends z.ZodType>(
    name: string,
    members: Record<string, unknown>,
    schema: S,
  ): Promise<Answer<z.output<S>>> {
    const body = JSON.stringify({
      [name]: {
        merchantAuthentication: {
          name: this.#options.apiLoginId,
          transactionKey: this.#options.transactionKey,
        },
        ...members,
      },
    });
    let text: string;
    let status: number;
    try {
      ({ text, status } = await gatewayRequest({
        method: 'POST',
        url: this.#url,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body,
        timeoutMs: this.#options.timeoutMs,
      }));
    } catch (error) {
      if (error instanceof GatewayUnreachable) return { kind: 'unknown', message: error.message };
      throw error;
    }
    if (status >= 500) return { kind: 'unknown', message: `${name}: Authorize.Net answered HTTP ${status}` };
    let json: unknown;
    try {
      json = parseAnetJson(text);
    } catch {
      return { kind: 'unknown', message: `${name}: HTTP ${status} answer is not JSON` };
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return {
        kind: 'unknown',
        message: `${name}: unexpected answer (HTTP ${status}): ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
      };
    }
    return { kind: 'answer', body: parsed.data };
  }

  /** `createTransactionRequest` with `refId` (≤ 20 characters) and a `transactionRequest` in schema order. */
  #transaction(refId: string | undefined, transactionRequest: Record<string, unknown>) {
    return this.#call(
      'createTransactionRequest',
      { ...(refId ? { refId } : {}), transactionRequest },
      CreateTransactionResponse,
    );
  }

  /**
   * Charges a customer payment profile: `authCaptureTransaction` with `profile {customerProfileId,
   * paymentProfile {paymentProfileId}}` (https://developer.authorize.net/api/reference/index.html#payment-transactions-charge-a-customer-profile),
   * the amount as a decimal string with `currencyCode` (a currency the account does not process is
   * refused, reason 39), our id without `txn_` as `order.invoiceNumber` and `refId`,
   * `duplicateWindow` (see DUPLICATE_WINDOW_SECONDS), and the merchant-initiated indicators
   * (`recurringBilling`, `processingOptions.isSubsequentAuth`: see chargeSettings).
   * responseCode 1 → succeeded (transId, and the card as `cardOfTransaction` reads it); 4 → pending
   * (held for review); 2 → declined; 3 → declined
   * with the reason (a duplicate naming the original transId is resolved by reading that
   * transaction); `resultCode Error` without a transactionResponse → declined with the API code
   * (E00027, E00040 …); no answer, 5xx, an unreadable answer → unknown.
   */
  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    const prepared = prepare(request.reference, request.paymentMethod, request.amount, request.currency);
    if ('status' in prepared) return prepared;
    const answer = await this.#transaction(prepared.invoiceNumber, {
      transactionType: 'authCaptureTransaction',
      amount: prepared.amount,
      currencyCode: request.currency.toUpperCase(),
      profile: profileMembers(prepared.profile),
      order: {
        invoiceNumber: prepared.invoiceNumber,
        ...(request.description ? { description: request.description.slice(0, 255) } : {}),
      },
      transactionSettings: chargeSettings(request.initiation),
      processingOptions: { isSubsequentAuth: true },
    });
    if (answer.kind === 'unknown') return { status: 'unknown', message: answer.message };
    const response = answer.body.transactionResponse;
    if (!response) return refusedWithoutTransaction(answer.body.messages);
    const transId = createdTransId(response);
    switch (meaningOfResponseCode(response.responseCode)) {
      case 'approved': {
        if (!transId) return { status: 'unknown', message: 'approved without a transId' };
        const card = cardOfTransaction(response);
        return { status: 'succeeded', gatewayTransactionId: transId, ...(card ? { card } : {}) };
      }
      case 'held':
        return transId
          ? { status: 'pending', gatewayTransactionId: transId }
          : { status: 'unknown', message: 'held for review without a transId' };
      case 'declined':
        return {
          status: 'declined',
          ...reasonOf(response, '2'),
          ...(transId ? { gatewayTransactionId: transId } : {}),
        };
      case 'error': {
        const reason = reasonOf(response, '3');
        if (reason.code === REASON.duplicate && transId)
          return this.#resolveDuplicate(transId, reason.message, request);
        return { status: 'declined', ...reason, ...(transId ? { gatewayTransactionId: transId } : {}) };
      }
      case 'unknown':
        return { status: 'unknown', message: `unexpected responseCode ${response.responseCode}` };
    }
  }

  /**
   * A duplicate refusal (reason 11) that names the original transaction: this attempt was already
   * sent, so its outcome is the original's, read with getTransactionDetails.
   */
  async #resolveDuplicate(transId: string, message: string, charged: ChargeRequest): Promise<ChargeOutcome> {
    const lookup = await this.transactionDetails(transId);
    if (lookup.kind === 'found') return chargeOutcomeOfDetails(lookup.transaction, charged);
    return { status: 'unknown', message: `${message} Original transaction ${transId}: ${lookup.message}` };
  }

  /**
   * Refunds part or all of a settled charge: `refundTransaction` with `refTransId` and the customer
   * profile the charge used, in place of the card's last four digits. Authorize.Net's own answer:
   * a refund with a profile is the charge-a-profile request with transactionType refundTransaction
   * (https://github.com/AuthorizeNet/sample-code-ruby/issues/30), and a refund against a profile
   * transaction needs the profile ids and transId, with no masked card number (CIM guide, quoted in
   * https://github.com/durango/authorize-net-cim/blob/master/TODO.md). billhook stores the profile,
   * never card digits, so this is the form it can send without first reading the card back.
   * Our refund id without `re_` is the invoice number; `duplicateWindow` as for charges.
   * responseCode 1 → succeeded (the refund's transId); 4 → pending; 2/3 → declined, except reason 54
   * (the charge has not settled): a refund of the whole charge becomes a void (succeeded with the
   * void's transId), a partial refund is declined with code 54 because a void cancels everything.
   */
  async refund(request: RefundRequest): Promise<RefundOutcome> {
    const prepared = prepare(request.reference, request.paymentMethod, request.amount, request.currency);
    if ('status' in prepared) return prepared;
    const answer = await this.#transaction(prepared.invoiceNumber, {
      transactionType: 'refundTransaction',
      amount: prepared.amount,
      currencyCode: request.currency.toUpperCase(),
      profile: profileMembers(prepared.profile),
      refTransId: request.gatewayTransactionId,
      order: { invoiceNumber: prepared.invoiceNumber },
      transactionSettings: duplicateWindow(),
    });
    if (answer.kind === 'unknown') return { status: 'unknown', message: answer.message };
    const response = answer.body.transactionResponse;
    if (!response) return refusedWithoutTransaction(answer.body.messages);
    const transId = createdTransId(response);
    switch (meaningOfResponseCode(response.responseCode)) {
      case 'approved':
        return transId
          ? { status: 'succeeded', gatewayRefundId: transId }
          : { status: 'unknown', message: 'refund approved without a transId' };
      case 'held':
        return transId
          ? { status: 'pending', gatewayRefundId: transId }
          : { status: 'unknown', message: 'refund held without a transId' };
      case 'declined':
      case 'error': {
        const reason = reasonOf(response, response.responseCode);
        if (reason.code === REASON.unsettled) return this.#voidInsteadOfRefund(request, reason.message);
        return { status: 'declined', ...reason };
      }
      case 'unknown':
        return { status: 'unknown', message: `unexpected responseCode ${response.responseCode}` };
    }
  }

  /**
   * Reason 54 on a refund. When getTransactionDetails shows the charge captured but not settled
   * (`capturedPendingSettlement`), Authorize.Net will not credit it yet: a refund of the whole charge
   * (the amount captured, `movedAmountOf`) becomes a void, which cancels the charge before any money moves — the same for
   * the books; a partial refund cannot be a void and is declined with code 54 and the reason. Any other
   * state (settled: the refund broke another rule, e.g. more than is left or older than 180 days) is
   * declined with code 54 as Authorize.Net said.
   */
  async #voidInsteadOfRefund(request: RefundRequest, refusal: string): Promise<RefundOutcome> {
    const lookup = await this.transactionDetails(request.gatewayTransactionId);
    if (lookup.kind === 'unknown') return { status: 'unknown', message: `${refusal} ${lookup.message}` };
    if (lookup.kind === 'not_found') return { status: 'declined', code: REASON.unsettled, message: refusal };
    const status = lookup.transaction.transactionStatus;
    if (status !== UNSETTLED_CAPTURE) {
      return { status: 'declined', code: REASON.unsettled, message: `${refusal} (transaction is ${status})` };
    }
    const captured = movedAmountOf(lookup.transaction);
    let charged: bigint;
    try {
      charged = fromGateway(AUTHORIZENET_CURRENCIES, captured, request.currency);
    } catch {
      return { status: 'unknown', message: `${refusal} Unreadable captured amount ${captured}` };
    }
    if (request.amount !== charged) {
      return {
        status: 'declined',
        code: REASON.unsettled,
        message:
          `${refusal} The charge has not settled yet: Authorize.Net refunds only settled transactions and a void ` +
          'cancels the whole charge, so this partial refund can be made once the charge settles (usually within 24 hours).',
      };
    }
    const voided = await this.#voidCall(request.gatewayTransactionId, request.chargeReference);
    if (voided.outcome.status === 'succeeded') {
      return { status: 'succeeded', gatewayRefundId: voided.transId ?? request.gatewayTransactionId };
    }
    return voided.outcome;
  }

  /**
   * Voids a charge that has not settled: `voidTransaction` with `refTransId`
   * (https://developer.authorize.net/api/reference/index.html#payment-transactions-void-a-transaction).
   * responseCode 1 → succeeded; 2/3 → declined with the reason (16: the transaction cannot be found;
   * a settled charge cannot be voided and must be refunded); no answer or 5xx → unknown.
   */
  async void(request: VoidRequest): Promise<VoidOutcome> {
    return (await this.#voidCall(request.gatewayTransactionId, request.reference)).outcome;
  }

  async #voidCall(transId: string, reference: string): Promise<{ outcome: VoidOutcome; transId?: string }> {
    const answer = await this.#transaction(toInvoiceNumber(reference), {
      transactionType: 'voidTransaction',
      refTransId: transId,
    });
    if (answer.kind === 'unknown') return { outcome: { status: 'unknown', message: answer.message } };
    const response = answer.body.transactionResponse;
    if (!response) return { outcome: refusedWithoutTransaction(answer.body.messages) };
    switch (meaningOfResponseCode(response.responseCode)) {
      case 'approved':
        return { outcome: { status: 'succeeded' }, transId: createdTransId(response) };
      case 'declined':
      case 'error':
        return { outcome: { status: 'declined', ...reasonOf(response, response.responseCode) } };
      default:
        return {
          outcome: { status: 'unknown', message: `void answered responseCode ${response.responseCode}` },
        };
    }
  }

  /**
   * What became of a charge. With its transId: getTransactionDetails and the status table. Without
   * one (the charge call got no answer), by our invoice number: first the customer profile's
   * transaction list, newest first (getTransactionListForCustomerRequest, settled and unsettled,
   * https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-customer-profile-transaction-list),
   * then the account's unsettled transactions, newest first (getUnsettledTransactionListRequest,
   * https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-unsettled-transaction-list)
   * in case the profile list does not show it yet. Neither lists it → `not_found` (the request never
   * created a transaction). A failed lookup is unknown, never not_found.
   */
  async fetchTransaction(query: TransactionQuery): Promise<TransactionStatusOutcome> {
    if (query.gatewayTransactionId) {
      const lookup = await this.transactionDetails(query.gatewayTransactionId);
      if (lookup.kind === 'found') return chargeOutcomeOfDetails(lookup.transaction, query.charge);
      if (lookup.kind === 'unknown') return { status: 'unknown', message: lookup.message };
    }
    const invoiceNumber = toInvoiceNumber(query.reference);
    if (!invoiceNumber) return { status: 'not_found' };
    const profile = parseProfileToken(
      query.charge.paymentMethod.token,
      query.charge.paymentMethod.customerId,
    );
    const lists: (() => Promise<Answer<z.output<typeof TransactionListResponse>>>)[] = [];
    if (profile) {
      lists.push(() =>
        this.#call(
          'getTransactionListForCustomerRequest',
          {
            customerProfileId: profile.customerProfileId,
            customerPaymentProfileId: profile.paymentProfileId,
            sorting: { orderBy: 'submitTimeUTC', orderDescending: true },
            paging: { limit: 100, offset: 1 },
          },
          TransactionListResponse,
        ),
      );
    }
    lists.push(() =>
      this.#call(
        'getUnsettledTransactionListRequest',
        {
          sorting: { orderBy: 'submitTimeUTC', orderDescending: true },
          paging: { limit: 1000, offset: 1 },
        },
        TransactionListResponse,
      ),
    );
    for (const list of lists) {
      const answer = await list();
      if (answer.kind === 'unknown') return { status: 'unknown', message: answer.message };
      const { messages, transactions } = answer.body;
      if (messages.resultCode !== 'Ok' && messages.message[0]?.code !== RECORD_NOT_FOUND) {
        const first = messages.message[0];
        return { status: 'unknown', message: `transaction list refused: ${first?.code} ${first?.text}` };
      }
      const ours = transactions
        .filter((t) => (t.invoiceNumber ?? t.invoice) === invoiceNumber)
        .sort(
          (a, b) =>
            STATE_RANK[stateOfStatus(a.transactionStatus)] - STATE_RANK[stateOfStatus(b.transactionStatus)],
        );
      if (ours[0]) return chargeOutcomeOfSummary(ours[0], query.charge);
    }
    return { status: 'not_found' };
  }

  /**
   * getTransactionDetails of one transId
   * (https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-transaction-details).
   * `not_found` only for E00040 "The record cannot be found."; every other refusal or a missing answer
   * is unknown. The Transaction Details API must be enabled for the account.
   */
  async transactionDetails(transId: string): Promise<DetailsLookup> {
    const answer = await this.#call('getTransactionDetailsRequest', { transId }, TransactionDetailsResponse);
    if (answer.kind === 'unknown') return answer;
    const { transaction, messages } = answer.body;
    if (messages.resultCode === 'Ok' && transaction) return { kind: 'found', transaction };
    const first = messages.message[0];
    const message =
      `getTransactionDetails ${transId}: ${first?.code ?? messages.resultCode} ${first?.text ?? ''}`.trim();
    return first?.code === RECORD_NOT_FOUND ? { kind: 'not_found', message } : { kind: 'unknown', message };
  }

  /**
   * The account's currencies from getMerchantDetails `currencies`
   * (https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-merchant-details),
   * asked once per process and cached after success. An account may list several (the field is a
   * list); transaction details carry none, so the webhook half picks a transaction's currency with
   * them (see AuthorizeNetWebhook).
   * @throws Error when the gateway is unreachable, refuses, or names no ISO 4217 currency
   */
  async accountCurrencies(): Promise<readonly string[]> {
    this.#currencies ??= this.#fetchCurrencies().catch((error: unknown) => {
      this.#currencies = undefined;
      throw error;
    });
    return this.#currencies;
  }

  async #fetchCurrencies(): Promise<readonly string[]> {
    const answer = await this.#call('getMerchantDetailsRequest', {}, MerchantDetailsResponse);
    if (answer.kind === 'unknown')
      throw new Error(`cannot read the Authorize.Net account currencies: ${answer.message}`);
    const { currencies = [], messages } = answer.body;
    const valid = [...new Set(currencies.map((c) => c.toUpperCase()).filter(isCurrency))];
    if (messages.resultCode !== 'Ok' || valid.length === 0) {
      const first = messages.message[0];
      throw new Error(
        `Authorize.Net getMerchantDetails names currencies ${JSON.stringify(currencies)} (${first?.code ?? messages.resultCode}); ` +
          'billhook needs at least one ISO 4217 currency to read transaction amounts',
      );
    }
    return valid;
  }
  /**
   * A Transaction Reporting call whose refusal is an error, for the settlement sweep: the answer when
   * `messages.resultCode` is `Ok`.
   * @throws Error when there is no answer, HTTP 5xx, an answer that is not the documented shape, or
   * `resultCode Error` (naming the API code, e.g. E00007 bad credentials, E00011 Transaction Details
   * API not enabled)
   */
  async #report<S extends z.ZodType<{ messages: ApiMessages }>>(
    name: string,
    members: Record<string, unknown>,
    schema: S,
  ): Promise<z.output<S>> {
    const answer = await this.#call(name, members, schema);
    if (answer.kind === 'unknown') throw new Error(`Authorize.Net ${answer.message}`);
    const { messages } = answer.body;
    if (messages.resultCode !== 'Ok') {
      const first = messages.message[0];
      throw new Error(
        `Authorize.Net ${name} refused: ${first?.code ?? messages.resultCode} ${first?.text ?? ''}`.trim(),
      );
    }
    return answer.body;
  }

  /**
   * The batches settled from `first` to `last` (both inclusive, UTC, at most `SETTLED_BATCH_DAYS`
   * apart), with their statistics: getSettledBatchListRequest with `includeStatistics`,
   * `firstSettlementDate` and `lastSettlementDate` in schema order
   * (https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-settled-batch-list;
   * the 31-day limit: AuthorizeNet/sample-code-java TransactionReporting/GetSettledBatchList.java, and
   * the Ruby SDK's `get_settled_batch_list`, "The maximum date range is 31 days"). Dates are sent as
   * xs:dateTime with the `Z` designator, so Authorize.Net reads them as UTC.
   * @throws Error (see `#report`)
   */
  async settledBatches(first: Date, last: Date): Promise<BatchDetails[]> {
    const body = await this.#report(
      'getSettledBatchListRequest',
      {
        includeStatistics: true,
        firstSettlementDate: utcDateTime(first),
        lastSettlementDate: utcDateTime(last),
      },
      SettledBatchListResponse,
    );
    return body.batchList;
  }

  /**
   * Every transaction of a settled batch: getTransactionListRequest with `batchId`, sorted by
   * `submitTimeUTC` ascending (a stable order across pages), page after page (`paging.limit`
   * `TRANSACTION_PAGE_SIZE`, the API's maximum; `paging.offset` the page number, from 1) until the
   * answer's `totalNumInResultSet` is reached or, where it is absent, a page comes back short
   * (https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-transaction-list).
   * @throws Error (see `#report`), or when a page comes back empty before `totalNumInResultSet`
   */
  async batchTransactions(batchId: string): Promise<TransactionSummary[]> {
    const all: TransactionSummary[] = [];
    for (let page = 1; ; page++) {
      const body = await this.#report(
        'getTransactionListRequest',
        {
          batchId,
          sorting: { orderBy: 'submitTimeUTC', orderDescending: false },
          paging: { limit: TRANSACTION_PAGE_SIZE, offset: page },
        },
        TransactionListResponse,
      );
      all.push(...body.transactions);
      const total = body.totalNumInResultSet === undefined ? undefined : Number(body.totalNumInResultSet);
      if (total !== undefined && Number.isSafeInteger(total)) {
        if (all.length >= total) return all;
        if (body.transactions.length === 0) {
          throw new Error(
            `Authorize.Net getTransactionList of batch ${batchId}: page ${page} is empty after ${all.length} of ${total} transactions`,
          );
        }
      } else if (body.transactions.length < TRANSACTION_PAGE_SIZE) {
        return all;
      }
    }
  }
}

/**
 * The most transactions getTransactionListRequest returns per page, `paging.limit` 1–1000
 * (https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-transaction-list).
 */
export const TRANSACTION_PAGE_SIZE = 1000;

/**
 * The longest range getSettledBatchListRequest takes, in days from `firstSettlementDate` to
 * `lastSettlementDate` (the sources in `settledBatches`).
 */
export const SETTLED_BATCH_DAYS = 31;

/** A date as xs:dateTime in UTC to the second: `2026-12-01T00:00:00Z`. */
function utcDateTime(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** `profile` of a transaction request, in schema order. */
function profileMembers(profile: CustomerProfileToken) {
  return {
    customerProfileId: profile.customerProfileId,
    paymentProfile: { paymentProfileId: profile.paymentProfileId },
  };
}

/** `transactionSettings` with our duplicate window. */
function duplicateWindow() {
  return { setting: [{ settingName: 'duplicateWindow', settingValue: String(DUPLICATE_WINDOW_SECONDS) }] };
}

/**
 * `transactionSettings` of a charge: the duplicate window, and `recurringBilling` (`true` for a
 * charge on an agreed schedule — renewals, scheduled charges, their dunning retries —, `false` for
 * an unscheduled one), the setting by which a merchant's own recurring charges are flagged as
 * recurring to the card networks (TransactionSettingNameEnum in AnetApiSchema.xsd;
 * https://developer.authorize.net/api/reference/index.html#payment-transactions-charge-a-customer-profile).
 * With `processingOptions.isSubsequentAuth` (sent on every charge: billhook's charges are all
 * merchant-initiated uses of a stored profile, https://developer.authorize.net/api/reference/features/card-on-file.html)
 * this is Authorize.Net's merchant-initiated, recurring or unscheduled, card-on-file charge.
 * `subsequentAuthInformation` is not sent: it carries the original network transaction id, which
 * billhook does not store, and a `reason` whose values (resubmission, delayedCharge,
 * reauthorization, noShow: MerchantInitTransReasonEnum) name industry-specific MITs, not recurring
 * or unscheduled ones.
 */
function chargeSettings(initiation: ChargeInitiation) {
  return {
    setting: [
      ...duplicateWindow().setting,
      { settingName: 'recurringBilling', settingValue: String(initiation === 'recurring') },
    ],
  };
}

/**
 * `resultCode Error` without a transactionResponse: the request was refused before a transaction
 * existed (E00007 bad credentials, E00027, E00040 unknown profile …), a decline. E00001 "An error
 * occurred during processing. Please try again." is Authorize.Net's unexpected system error
 * (https://developer.authorize.net/api/reference/responseCodes.html): whether anything happened is
 * unknown. Anything else without a transactionResponse is unknown too.
 */
function refusedWithoutTransaction(messages: ApiMessages): Declined | { status: 'unknown'; message: string } {
  const first = messages.message[0];
  if (messages.resultCode === 'Error' && first?.code !== SYSTEM_ERROR) return declinedByMessages(messages);
  return {
    status: 'unknown',
    message:
      `answer has no transactionResponse (${first?.code ?? messages.resultCode} ${first?.text ?? ''})`.trim(),
  };
}

/**
 * Checks what every transaction request needs before anything is sent: a profile token, an id that
 * fits the 20-character invoice number, an amount Authorize.Net can take (`AUTHORIZENET_CURRENCIES`,
 * declined `amount_not_representable` otherwise). A problem here is a
 * decline no request was made for, so no money can have moved.
 */
function prepare(
  reference: string,
  paymentMethod: { token: string; customerId: string | null },
  amount: bigint,
  currency: string,
): { profile: CustomerProfileToken; invoiceNumber: string; amount: string } | Declined {
  const profile = parseProfileToken(paymentMethod.token, paymentMethod.customerId);
  if (!profile) {
    return {
      status: 'declined',
      code: 'invalid_payment_method',
      message: 'an Authorize.Net payment method token is customerProfileId/paymentProfileId',
    };
  }
  const invoiceNumber = toInvoiceNumber(reference);
  if (!invoiceNumber) {
    return {
      status: 'declined',
      code: 'invalid_reference',
      message: `reference ${reference} exceeds 20 characters`,
    };
  }
  try {
    return { profile, invoiceNumber, amount: toGateway(AUTHORIZENET_CURRENCIES, amount, currency) };
  } catch (error) {
    // AmountNotRepresentable: an amount or currency Authorize.Net cannot take; nothing is sent.
    return { status: 'declined', code: 'amount_not_representable', message: (error as Error).message };
  }
}
