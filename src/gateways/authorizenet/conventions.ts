/**
 * How billhook's ids and stored payment methods are written into Authorize.Net requests, and how
 * Authorize.Net's JSON is read. Gateway words stay in this folder.
 */

/**
 * Authorize.Net caps `order.invoiceNumber` and `refId` at 20 characters (AnetApiSchema.xsd,
 * `orderType.invoiceNumber` / `ANetApiRequest.refId` maxLength 20;
 * https://developer.authorize.net/api/reference/index.html#payment-transactions-charge-a-customer-profile).
 * billhook ids are a 3–4 character type prefix plus 20 characters (`txn_01jh3k9q2m4v8c1tk0bd`,
 * `re_…`), so the 20 characters after the prefix are sent and the prefix is restored when reading:
 * a charge's invoice number gets `txn_` back, a refund's (a `refundTransaction`) gets `re_` back.
 */
export const INVOICE_NUMBER_MAX = 20;

/** The characters of an id's body (base 32, see src/db/ids.ts). */
const ID_BODY = /^[0-9a-v]{20}$/;

/** Prefixes billhook sends without, by the kind of Authorize.Net transaction that carries them. */
export const REFERENCE_PREFIX = { charge: 'txn_', refund: 're_' } as const;

/**
 * The invoice number (and `refId`) sent for our id: the id without its `txn_` / `re_` prefix.
 * `toInvoiceNumber('txn_01jh3k9q2m4v8c1tk0bd')` → `'01jh3k9q2m4v8c1tk0bd'`.
 * @returns undefined when the id does not fit in 20 characters (never the case for billhook ids)
 */
export function toInvoiceNumber(reference: string): string | undefined {
  const prefix = Object.values(REFERENCE_PREFIX).find((p) => reference.startsWith(p));
  const body = prefix ? reference.slice(prefix.length) : reference;
  return body.length > 0 && body.length <= INVOICE_NUMBER_MAX ? body : undefined;
}

/**
 * Our id back from an invoice number Authorize.Net returns: the prefix of the transaction's kind
 * restored. An invoice number that is not a billhook id body (one typed in the Merchant Interface,
 * say `60`) gives undefined, so it never matches one of our rows by accident.
 */
export function fromInvoiceNumber(
  invoiceNumber: string | null | undefined,
  kind: keyof typeof REFERENCE_PREFIX,
): string | undefined {
  return invoiceNumber && ID_BODY.test(invoiceNumber)
    ? `${REFERENCE_PREFIX[kind]}${invoiceNumber}`
    : undefined;
}

/**
 * The duplicate window sent with every charge and refund, in seconds: 28 800 (8 hours), the largest
 * Authorize.Net accepts (0–28800 s, default 120 s:
 * http://developer.authorize.net/guides/SIM/Transaction_Response/Response_for_Duplicate_Transactions.htm).
 * Within the window Authorize.Net refuses (response reason 11) a transaction whose API login, amount,
 * payment data, transaction type and invoice number (among other fields) match an earlier one
 * (the field list: https://community.developer.authorize.net/t5/Integration-and-Testing/Duplicate-Transactions-AIM/td-p/257).
 * Our invoice number is the attempt id, so a new attempt is never a duplicate, while the same attempt
 * re-sent (a worker that crashed after sending) is refused for 8 hours instead of 2 minutes — the
 * closest thing to an idempotency key this API has. With the window set, the duplicate answer names
 * the original transaction, which the client then reads (see AuthorizeNetClient.charge).
 */
export const DUPLICATE_WINDOW_SECONDS = 28_800;

/** A stored Authorize.Net payment method: a customer profile and one of its payment profiles. */
export interface CustomerProfileToken {
  customerProfileId: string;
  paymentProfileId: string;
}

/**
 * Reads a payment method token: `customerProfileId/paymentProfileId` (both numeric, the form
 * billhook stores), or a bare `paymentProfileId` with the customer profile id as the payment
 * method's gateway customer id.
 * @returns undefined when the token is neither form
 */
export function parseProfileToken(
  token: string,
  customerId: string | null,
): CustomerProfileToken | undefined {
  const pair = /^(\d{1,20})\/(\d{1,20})$/.exec(token.trim());
  if (pair?.[1] && pair[2]) return { customerProfileId: pair[1], paymentProfileId: pair[2] };
  if (/^\d{1,20}$/.test(token.trim()) && customerId && /^\d{1,20}$/.test(customerId.trim())) {
    return { customerProfileId: customerId.trim(), paymentProfileId: token.trim() };
  }
  return undefined;
}

/**
 * Parses Authorize.Net's JSON: strips the UTF-8 byte-order mark its JSON responses start with
 * (https://github.com/AuthorizeNet/sdk-php/issues/231; the official Node SDK parses `body.slice(1)`:
 * https://github.com/AuthorizeNet/sdk-node/issues/56), and keeps every JSON number as its source
 * text, so a decimal amount such as `1018.88` reaches `fromGateway` (money/gateway-amount.ts) exactly as sent, never
 * through a float (JSON.parse source text access, Node ≥ 21; an older runtime falls back to the
 * shortest round-trip text, which is the same decimal for any amount below 10^15).
 * @throws SyntaxError when the text is not JSON
 */
export function parseAnetJson(text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return JSON.parse(body, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' ? (context?.source ?? String(value)) : value,
  );
}
