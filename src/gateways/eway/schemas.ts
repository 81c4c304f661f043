import { z } from 'zod';
import { ACCESS_CODE_PATTERN, type EwayHint, parseEwayDateTime } from './conventions.ts';

/**
 * zod schemas of eWAY Rapid's JSON (https://eway.io/api-v3/), reduced to the fields billhook reads;
 * every other field (customer, card details, verification) is dropped at parse time, so no card
 * data travels further. Shapes are checked against the real answers in test/fixtures/eway.
 */

/**
 * `TotalAmount` as eWAY writes it: a non-negative integer in the currency's lowest denomination (a
 * float is refused), read into billhook minor units by `fromGateway(EWAY_CURRENCIES, …)` where its
 * currency is known.
 */
export const EwayAmount = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * eWAY's `TransactionID`, an integer, as a decimal string; `null` or `0` (no transaction was made)
 * become `undefined`.
 */
const TransactionId = z
  .number()
  .int()
  .nonnegative()
  .max(Number.MAX_SAFE_INTEGER)
  .nullish()
  .transform((id) => (id ? String(id) : undefined));

/** The fields every eWAY transaction result carries: status, bank and eWAY codes. */
const ResultFields = {
  TransactionID: TransactionId,
  /** `true` approved, `false` not approved, `null` no transaction was attempted (validation errors). */
  TransactionStatus: z.boolean().nullish(),
  /** Two-character bank response code, e.g. `"00"`, `"01"`. */
  ResponseCode: z.string().nullish(),
  /** eWAY response codes, comma-separated: `A2000`, `D4401`, `F9023`. */
  ResponseMessage: z.string().nullish(),
  /** Validation and system codes, comma-separated: `V6021,V6040`, `S5010`. */
  Errors: z.string().nullish(),
};

/** What status.ts reads of any transaction result (charge, query item, refund, cancel). */
export const EwayResult = z.object({
  ...ResultFields,
  /** Version ≥ 40 query answers: `false` for an authorisation not captured yet. */
  TransactionCaptured: z.boolean().nullish(),
});
export type EwayResult = z.output<typeof EwayResult>;

/** Answer of `POST /Transaction` (Direct Connection; Method `TokenPayment`). */
export const EwayTransactionResponse = EwayResult.extend({
  Payment: z
    .object({
      TotalAmount: EwayAmount.optional(),
      InvoiceReference: z.string().nullish(),
      CurrencyCode: z.string().nullish(),
    })
    .nullish(),
});
export type EwayTransactionResponse = z.output<typeof EwayTransactionResponse>;

/**
 * One item of `Transactions` in a Transaction Query answer (`GET /Transaction/{id}`,
 * `GET /Transaction/InvoiceRef/{ref}`).
 */
export const EwayQueriedTransaction = EwayResult.extend({
  TotalAmount: EwayAmount,
  InvoiceReference: z.string().nullish(),
  /** Present from API version 40. */
  CurrencyCode: z.string().nullish(),
  /** Present from API version 40. */
  TransactionDateTime: z.string().nullish(),
});
export type EwayQueriedTransaction = z.output<typeof EwayQueriedTransaction>;

/** Answer of a Transaction Query: the matching transactions (none when eWAY has no such transaction). */
export const EwayQueryResponse = z.object({
  Transactions: z
    .array(EwayQueriedTransaction)
    .nullish()
    .transform((list) => list ?? []),
  Errors: z.string().nullish(),
});
export type EwayQueryResponse = z.output<typeof EwayQueryResponse>;

/**
 * Answer of `GET /AccessCode/{AccessCode}` (the result of a Responsive Shared Page or Transparent
 * Redirect payment): `TransactionID` is null until the customer completed the payment (S5099).
 * Fields as eWAYPayment/eway-rapid-php `Model/Response/QueryAccessCodeResponse.php` documents them.
 */
export const EwayAccessCodeResponse = z.object({
  AccessCode: z.string().nullish(),
  ...ResultFields,
});
export type EwayAccessCodeResponse = z.output<typeof EwayAccessCodeResponse>;

/** Answer of `POST /Transaction/{id}/Refund`: the refund's own `TransactionID` and status. */
export const EwayRefundResponse = EwayResult;

/** Answer of `POST /CancelAuthorisation`. */
export const EwayCancelResponse = EwayResult;

/**
 * A date and time of a settlement answer (`/Date(1454331600000)/`, see parseEwayDateTime), read into
 * a Date; text that is no date is refused (the answer is not understood).
 */
const EwayDateTime = z.string().transform((text, ctx) => {
  const date = parseEwayDateTime(text);
  if (date) return date;
  ctx.addIssue({ code: 'custom', message: `not an eWAY date: ${JSON.stringify(text)}` });
  return z.NEVER;
});

/**
 * One `SettlementSummaries` item of a Settlement Search answer: one settlement (`SettlementID`, a
 * GUID, "the unique ID of the settlement") in one currency. `TotalCredit` and `TotalDebit` are the
 * amounts credited and debited in the settlement, `TotalBalance` "the total balance settled", all in
 * the lowest denomination of the currency (eWAYPayment/eway-rapid-net `Models/SettlementSummary.cs`).
 * `TotalFees` (newer answers, eWAYPayment/eway-rapid-php `tests/Integration/SettlementTest.php`) is
 * what eWAY kept, and is then already deducted from `TotalBalance` (there 97100 − 320 − 100 = 96680);
 * answers without it balance as credit − debit. `TotalBalance` is signed (a day of refunds can be
 * negative). `CurrencyCode` is the ISO 4217 code (the numeric `Currency` is not read).
 * `BalancePerCardType` is not read.
 */
export const EwaySettlementSummary = z.object({
  SettlementID: z.string().min(1),
  CurrencyCode: z.string().min(1),
  TotalCredit: EwayAmount,
  TotalDebit: EwayAmount,
  TotalFees: EwayAmount.nullish(),
  TotalBalance: z.number().int().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
});
export type EwaySettlementSummary = z.output<typeof EwaySettlementSummary>;

/**
 * One `SettlementTransactions` item: a transaction settled in `SettlementID`. `TransactionID` is the
 * transaction's eWAY id (a decimal string here, as billhook stores it); `Amount` is unsigned, in the
 * lowest denomination; `TransactionType` "a numeric representation of the transaction type" (a
 * string, `"1"`); `FeePerTransaction` (newer answers) the fee eWAY kept for it;
 * `TransactionDateTime` / `SettlementDateTime` "the GMT date of the transaction / of settlement"
 * (eWAYPayment/eway-rapid-net `Models/SettlementTransaction.cs`). The card type, the bank's
 * `TxnReference` and the customer are not read. eWAY does not echo the `InvoiceReference` here.
 */
export const EwaySettlementTransaction = z.object({
  SettlementID: z.string().min(1),
  CurrencyCode: z.string().min(1),
  TransactionID: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).transform(String),
  Amount: EwayAmount,
  FeePerTransaction: EwayAmount.nullish(),
  TransactionType: z.union([z.string().min(1), z.number().int()]).transform(String),
  TransactionDateTime: EwayDateTime,
  SettlementDateTime: EwayDateTime,
});
export type EwaySettlementTransaction = z.output<typeof EwaySettlementTransaction>;

/**
 * Answer of Settlement Search, `GET /Search/Settlement?ReportMode=Both&SettlementDate=…`: the
 * settlements' summaries and their transactions (absent lists read as empty), and `Errors`, eWAY's
 * comma-separated codes when the search failed (`""` when it did not).
 */
export const EwaySettlementSearchResponse = z.object({
  SettlementSummaries: z
    .array(EwaySettlementSummary)
    .nullish()
    .transform((list) => list ?? []),
  SettlementTransactions: z
    .array(EwaySettlementTransaction)
    .nullish()
    .transform((list) => list ?? []),
  Errors: z.string().nullish(),
});
export type EwaySettlementSearchResponse = z.output<typeof EwaySettlementSearchResponse>;

const TransactionIdHint = z.union([
  z.number().int().positive().max(Number.MAX_SAFE_INTEGER).transform(String),
  z
    .string()
    .trim()
    .regex(/^\d{1,18}$/, 'TransactionID must be digits')
    .transform((digits) => BigInt(digits).toString())
    .refine((id) => id !== '0', 'TransactionID must be positive'),
]);

/**
 * The callback hint as posted to /webhooks/eway, keys compared case-insensitively: a numeric
 * `TransactionID` or an `AccessCode` (eWAY appends `AccessCode=…` to the merchant's RedirectUrl when
 * the customer returns from a Responsive Shared Page or Transparent Redirect payment,
 * https://eway.io/api-v3/). Anything else in the body (a status, an amount)
 * is ignored: only eWAY's own answer is believed. With both, the transaction id wins.
 */
export const EwayHintSchema = z
  .record(z.string(), z.unknown())
  .transform((fields) => Object.fromEntries(Object.entries(fields).map(([k, v]) => [k.toLowerCase(), v])))
  .pipe(
    z.object({
      transactionid: TransactionIdHint.optional(),
      accesscode: z
        .string()
        .trim()
        .regex(ACCESS_CODE_PATTERN, 'AccessCode must be letters, digits, - or _')
        .optional(),
    }),
  )
  .transform((fields, ctx): EwayHint => {
    if (fields.transactionid) return { kind: 'transaction', transactionId: fields.transactionid };
    if (fields.accesscode) return { kind: 'access_code', accessCode: fields.accesscode };
    ctx.addIssue({ code: 'custom', message: 'needs a numeric TransactionID or an AccessCode' });
    return z.NEVER;
  });
