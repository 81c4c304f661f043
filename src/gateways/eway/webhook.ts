import { isCurrency } from '../../money/currency.ts';
import { fromGateway } from '../../money/gateway-amount.ts';
import { parseJsonPayload } from '../payload.ts';
import {
  type PaymentEvent,
  type VerifiedDelivery,
  type WebhookHeaders,
  WebhookPayloadError,
  type WebhookVerifier,
} from '../types.ts';
import { EwayApi, type EwayApiOptions } from './api.ts';
import { type EwayHint, hintEventId, parseEwayDateTime } from './conventions.ts';
import { EWAY_CURRENCIES } from './currencies.ts';
import { HintQueries } from './hint-queries.ts';
import { EwayHintSchema, type EwayQueriedTransaction } from './schemas.ts';
import { chargeEventTypeOf, verdictOf } from './status.ts';

/**
 * Reads a callback hint from a body in either content shape: a JSON object (`{"TransactionID":
 * 11818347}`) or form / query-string text (`AccessCode=44DD…` as eWAY appends it to the RedirectUrl).
 * The shape is told from the body itself (a JSON object starts with `{`), since the stored body is
 * normalised without its headers.
 * @throws WebhookPayloadError when the body is neither, or names no numeric TransactionID / AccessCode
 */
export function parseHint(body: string): EwayHint {
  const text = body.trim();
  let fields: unknown;
  if (text.startsWith('{')) {
    fields = parseJsonPayload(text);
  } else {
    fields = Object.fromEntries(new URLSearchParams(text));
  }
  const parsed = EwayHintSchema.safeParse(fields);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first?.path.length ? `${first.path.join('.')}: ` : '';
    throw new WebhookPayloadError(`not an eWAY callback: ${where}${first?.message}`);
  }
  return parsed.data;
}

/**
 * When eWAY says the transaction happened: `TransactionDateTime` (API version ≥ 40; ISO 8601 or
 * .NET's `/Date(ms)/`), else the moment of the query.
 */
function occurredAtOf(transaction: EwayQueriedTransaction, now: Date): Date {
  const text = transaction.TransactionDateTime;
  return (text && parseEwayDateTime(text)) || now;
}

/** What billhook knows of its own eWAY payments, to tell whether a hint can be about one of them. */
export interface EwayHintLookups {
  /** True when billhook has an eWAY payment with this TransactionID, or with our id `reference` (`txn_…`). */
  knowsTransaction(transactionId: string, reference: string | undefined): Promise<boolean>;
  /** True when billhook waits on an eWAY charge whose TransactionID it does not know (`hasUnidentifiedCharge`). */
  awaitsUnidentifiedCharge(): Promise<boolean>;
}

/** How hints are handled in production (see EwayWebhook.normalize); tests of the mapping leave it out. */
export interface EwayHintOptions {
  /** New queries a second this process sends about hints (`EWAY_HINT_QUERIES_PER_SECOND`). */
  queriesPerSecond: number;
  lookups: EwayHintLookups;
  /** Where a dropped hint is logged, at info. */
  log: { info(fields: Record<string, unknown>, message: string): void };
}

/**
 * eWAY's inbound side. eWAY Rapid signs no webhooks (https://eway.io/api-v3/ documents none): what
 * reaches /webhooks/eway is the redirect/callback notification naming a `TransactionID` or an
 * `AccessCode`, from anyone. So `verify` only checks the shape and `normalize` asks eWAY itself
 * (HTTP Basic with the API key) and reconciles only what eWAY returns, never a status or amount from
 * the body.
 */
export class EwayWebhook implements WebhookVerifier {
  readonly unsigned = true;
  readonly releasesEventIds = true;
  readonly #api: EwayApi;
  readonly #defaultCurrency: string;
  readonly #hints: EwayHintOptions | undefined;
  readonly #queries: HintQueries | undefined;

  /**
   * @param options eWAY API credentials and base URL (the same as the outbound client's)
   * @param defaultCurrency the currency of a queried transaction whose answer names none (API versions
   * before 40): eWAY then processed it in the merchant account's default currency, which for eWAY
   * accounts is AUD unless the account says otherwise. A wrong guess cannot post: the reconciler
   * turns a currency that differs from the ledger's into a reconciliation exception.
   * @param hints what bounds the queries hints cause (absent: every hint is queried, for tests of the
   * mapping)
   */
  constructor(options: EwayApiOptions, defaultCurrency = 'AUD', hints?: EwayHintOptions) {
    if (!isCurrency(defaultCurrency)) throw new RangeError(`not an ISO 4217 currency: ${defaultCurrency}`);
    this.#api = new EwayApi(options);
    this.#defaultCurrency = defaultCurrency;
    this.#hints = hints;
    this.#queries = hints && new HintQueries(hints.queriesPerSecond);
  }

  /**
   * Accepts a callback hint: a JSON or form body with a numeric `TransactionID` or an `AccessCode`
   * (case-insensitive keys). There is no signature to check; the event id is derived from the hint
   * (`transaction:11818347`, `access_code:44DD…`) so repeats are stored once while one waits
   * (`releasesEventIds`), and the event type is `transaction` or `access_code`. Only the hint is
   * stored (`{"TransactionID":"11818347"}` or `{"AccessCode":"44DD…"}`), never the rest of the body.
   * @throws WebhookPayloadError (answered 400, nothing stored) for any other body
   */
  async verify(rawBody: Buffer, _headers: WebhookHeaders): Promise<VerifiedDelivery> {
    const hint = parseHint(rawBody.toString('utf8'));
    const storedBody = JSON.stringify(
      hint.kind === 'transaction' ? { TransactionID: hint.transactionId } : { AccessCode: hint.accessCode },
    );
    return { eventId: hintEventId(hint), eventType: hint.kind, storedBody };
  }

  /** `query()` through the per-transaction interval and the per-second cap, when hints are bounded. */
  #ask<T>(key: string, query: () => Promise<T>): Promise<T> {
    return this.#queries ? this.#queries.run(key, query) : query();
  }

  /**
   * Whether a hint can be about one of billhook's payments before eWAY is asked: a TransactionID
   * billhook recorded, or any hint while billhook waits on a charge whose TransactionID it does not
   * know. Without lookups, always.
   */
  async #worthAsking(transactionId: string | undefined): Promise<boolean> {
    const lookups = this.#hints?.lookups;
    if (!lookups) return true;
    if (transactionId !== undefined && (await lookups.knowsTransaction(transactionId, undefined)))
      return true;
    return lookups.awaitsUnidentifiedCharge();
  }

  /** No events for a hint that is not about billhook's payments: logged at info, the row marked ignored. */
  #drop(hint: EwayHint, reason: string): PaymentEvent[] {
    this.#hints?.log.info({ gateway: 'eway', hint: hintEventId(hint), reason }, 'eWAY hint dropped');
    return [];
  }

  /**
   * Queries eWAY about the hint and reports what eWAY says: an access code is first resolved with
   * `GET /AccessCode/{AccessCode}`, then the transaction is read with `GET /Transaction/{TransactionID}`.
   * `Transactions[0]` maps by status.ts (`TransactionStatus` true → charge.succeeded, false →
   * charge.failed with the `ResponseMessage` codes such as D4401 kept, otherwise charge.pending);
   * `gatewayTransactionId` is the TransactionID, `reference` the echoed `InvoiceReference` (our
   * `txn_…`), `amount` the integer `TotalAmount` read by `EWAY_CURRENCIES`, `currency` the answer's
   * `CurrencyCode` or the default currency. A transaction eWAY does not have, or an access code not
   * completed yet, gives no event (the delivery is marked ignored).
   *
   * With `hints` (production), a hint costs eWAY a query only when it can be about one of billhook's
   * payments (`#worthAsking`); each TransactionID or AccessCode is asked about at most once a minute
   * and at most `queriesPerSecond` times a second in all (HintQueries); and a transaction eWAY has
   * but billhook did not make (neither its TransactionID nor its InvoiceReference is billhook's) gives
   * no event. Each such drop is logged at info and the row marked ignored: no exception for a person.
   * @throws WebhookPayloadError when the stored body is not a hint; GatewayUnreachable or
   * EwayAnswerError when eWAY cannot be asked, HintQueryBusy beyond the per-second cap (the job retries)
   */
  async normalize(body: string): Promise<PaymentEvent[]> {
    const hint = parseHint(body);
    let transactionId: string | undefined;
    if (hint.kind === 'transaction') {
      transactionId = hint.transactionId;
      if (!(await this.#worthAsking(transactionId)))
        return this.#drop(hint, 'no eWAY payment of billhook has this TransactionID, and none awaits one');
    } else {
      if (!(await this.#worthAsking(undefined)))
        return this.#drop(hint, 'no eWAY payment of billhook awaits its TransactionID');
      const accessCode = hint.accessCode;
      transactionId = (
        await this.#ask(`access_code:${accessCode}`, () => this.#api.queryAccessCode(accessCode))
      ).TransactionID;
      if (!transactionId) return [];
    }
    const id = transactionId;
    const answer = await this.#ask(`transaction:${id}`, () =>
      this.#api.queryTransactions({ transactionId: id }),
    );
    const transaction = answer.Transactions.find((t) => t.TransactionID === transactionId);
    if (!transaction) return this.#drop(hint, 'eWAY has no such transaction');
    const reference = transaction.InvoiceReference?.trim() || undefined;
    if (this.#hints && !(await this.#hints.lookups.knowsTransaction(transactionId, reference)))
      return this.#drop(hint, `eWAY transaction ${transactionId} is not one billhook made`);
    const verdict = verdictOf(transaction);
    const currency = (transaction.CurrencyCode?.trim() || this.#defaultCurrency).toUpperCase();
    if (!isCurrency(currency)) {
      throw new WebhookPayloadError(`eWAY transaction ${transactionId} has an unknown currency ${currency}`);
    }
    let amount: bigint;
    try {
      amount = fromGateway(EWAY_CURRENCIES, transaction.TotalAmount, currency);
    } catch (error) {
      throw new WebhookPayloadError(
        `TotalAmount of eWAY transaction ${transactionId}: ${(error as Error).message}`,
      );
    }
    return [
      {
        type: chargeEventTypeOf(verdict),
        gateway: 'eway',
        gatewayEventId: hintEventId(hint),
        gatewayTransactionId: transactionId,
        reference,
        amount,
        currency,
        occurredAt: occurredAtOf(transaction, new Date()),
        failureCode: verdict.kind === 'declined' ? verdict.code : undefined,
        failureMessage: verdict.kind === 'declined' ? verdict.message : undefined,
        raw: {
          TransactionID: transaction.TransactionID,
          TransactionStatus: transaction.TransactionStatus,
          TransactionCaptured: transaction.TransactionCaptured,
          ResponseCode: transaction.ResponseCode,
          ResponseMessage: transaction.ResponseMessage,
          Errors: transaction.Errors,
          InvoiceReference: transaction.InvoiceReference,
          TotalAmount: transaction.TotalAmount,
          CurrencyCode: transaction.CurrencyCode,
          TransactionDateTime: transaction.TransactionDateTime,
        },
      },
    ];
  }
}
