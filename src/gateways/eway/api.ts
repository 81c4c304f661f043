import type { z } from 'zod';
import { type GatewayResponse, gatewayRequest, parseJsonBody } from '../http.ts';
import { EWAY_API_VERSION } from './conventions.ts';
import { EwayAccessCodeResponse, EwayQueryResponse, EwaySettlementSearchResponse } from './schemas.ts';

/** Credentials and endpoint of eWAY's Rapid REST API. */
export interface EwayApiOptions {
  /** `EWAY_API_KEY`: the HTTP Basic user name. */
  apiKey: string;
  /** `EWAY_API_PASSWORD`: the HTTP Basic password. */
  apiPassword: string;
  /** `EWAY_API_BASE`, e.g. `https://api.sandbox.ewaypayments.com` or a local stub; a path prefix is kept. */
  apiBase: string;
  /** Per-request timeout in milliseconds (`GATEWAY_TIMEOUT_MS`). */
  timeoutMs: number;
}

/** An eWAY answer that is not the documented shape, or an HTTP status that says nothing about money. */
export class EwayAnswerError extends Error {
  override name = 'EwayAnswerError';
}

/**
 * Thin eWAY Rapid REST client shared by the outbound client and the webhook's queries: every call
 * goes to `EWAY_API_BASE` with HTTP Basic auth (API key as user name, API password as password,
 * https://eway.io/api-v3/), JSON bodies and `X-EWAY-APIVERSION`. Paths follow eWAY's SDKs
 * (eWAYPayment/eway-rapid-node `lib/Rapid/Service.js`, eway-rapid-php
 * `src/Rapid/Contract/HttpService.php`).
 */
export class EwayApi {
  readonly #base: string;
  readonly #authorization: string;
  readonly #timeoutMs: number;

  constructor(options: EwayApiOptions) {
    this.#base = options.apiBase.replace(/\/+$/, '');
    const credentials = Buffer.from(`${options.apiKey}:${options.apiPassword}`);
    this.#authorization = `Basic ${credentials.toString('base64')}`;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * Sends one request; `segments` are URL-encoded path segments (`['Transaction', '123', 'Refund']`),
   * `query` the query string's fields, if any. Any HTTP status is returned.
   * @throws GatewayUnreachable on a network error or timeout (the outcome is unknown)
   */
  send(
    method: 'GET' | 'POST',
    segments: readonly string[],
    body?: unknown,
    query?: Readonly<Record<string, string>>,
  ): Promise<GatewayResponse> {
    const search = query ? `?${new URLSearchParams(query).toString()}` : '';
    return gatewayRequest({
      method,
      url: `${this.#base}/${segments.map(encodeURIComponent).join('/')}${search}`,
      headers: {
        authorization: this.#authorization,
        accept: 'application/json',
        'x-eway-apiversion': EWAY_API_VERSION,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      timeoutMs: this.#timeoutMs,
    });
  }

  /**
   * Transaction Query: `GET /Transaction/{TransactionID}`, or by our reference
   * `GET /Transaction/InvoiceRef/{InvoiceReference}` (the SDKs' `queryInvoiceReference`; the
   * reference must be unique to return a transaction, which ours is). eWAY answers HTTP 200 with an
   * empty `Transactions` list when it has no match.
   * @throws GatewayUnreachable (no answer) or EwayAnswerError (non-2xx status or an undocumented body)
   */
  async queryTransactions(
    by: { transactionId: string } | { invoiceReference: string },
  ): Promise<EwayQueryResponse> {
    const segments =
      'transactionId' in by
        ? ['Transaction', by.transactionId]
        : ['Transaction', 'InvoiceRef', by.invoiceReference];
    return this.#read(await this.send('GET', segments), EwayQueryResponse, 'Transaction Query');
  }

  /**
   * Access code result: `GET /AccessCode/{AccessCode}` (the SDKs' `queryAccessCode`).
   * @throws GatewayUnreachable or EwayAnswerError, as queryTransactions
   */
  async queryAccessCode(accessCode: string): Promise<EwayAccessCodeResponse> {
    return this.#read(
      await this.send('GET', ['AccessCode', accessCode]),
      EwayAccessCodeResponse,
      'AccessCode',
    );
  }

  /**
   * Settlement Search: `GET /Search/Settlement?ReportMode=…&SettlementDate=YYYY-MM-DD&Page=…&PageSize=…`
   * (the SDKs' `settlementSearch`: eWAYPayment/eway-rapid-node `lib/Rapid/Service.js`
   * `API_SETTLEMENT_SEARCH = "Search/Settlement"`; fields as eway-rapid-php `Model/SettlementSearch.php`
   * documents them: `ReportMode` one of `Both`, `SummaryOnly`, `TransactionOnly`; `SettlementDate` or
   * `StartDate` & `EndDate`; `CardType`; `Currency`; `Page`; `PageSize`). The answer's `Errors` are
   * returned for the caller to judge.
   * @throws GatewayUnreachable or EwayAnswerError, as queryTransactions
   */
  async searchSettlements(query: Readonly<Record<string, string>>): Promise<EwaySettlementSearchResponse> {
    return this.#read(
      await this.send('GET', ['Search', 'Settlement'], undefined, query),
      EwaySettlementSearchResponse,
      'Settlement Search',
    );
  }

  #read<T extends z.ZodType>(response: GatewayResponse, schema: T, what: string): z.output<T> {
    if (response.status < 200 || response.status > 299) {
      throw new EwayAnswerError(`eWAY ${what} answered HTTP ${response.status}`);
    }
    return parseAnswer(schema, parseJsonBody(response.text), what);
  }
}

/**
 * Reads an eWAY answer with `schema`; `json` is the answer's text as `parseJsonBody` parsed it
 * (undefined when it is not JSON).
 * @throws EwayAnswerError naming the first field that does not fit
 */
export function parseAnswer<T extends z.ZodType>(schema: T, json: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new EwayAnswerError(
      `eWAY ${what} answer not understood: ${first?.path.join('.') || '(root)'}: ${first?.message}`,
    );
  }
  return parsed.data;
}
