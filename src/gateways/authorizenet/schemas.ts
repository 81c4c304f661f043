import { z } from 'zod';

/**
 * Zod schemas of the Authorize.Net payloads billhook reads, at the boundary. Element names follow
 * AnetApiSchema.xsd (https://api.authorize.net/xml/v1/schema/AnetApiSchema.xsd, mirrored in
 * AuthorizeNet/sdk-node); the JSON API is a translation of it, with repeated elements as arrays.
 * Bodies are parsed with `parseAnetJson`, which turns every JSON number into its source text, so
 * numeric fields are read as text here (and as numbers only if some other parser produced them).
 */

/** A numeric JSON value as text: `1018.88` → `"1018.88"`; strings pass unchanged. */
const NumberText = z.union([z.string(), z.number().transform((n) => String(n))]);

/** `messages` of every API answer: `resultCode` Ok or Error, with codes such as I00001, E00027, E00040. */
export const ApiMessages = z.object({
  resultCode: z.string(),
  message: z
    .array(z.object({ code: z.string().optional(), text: z.string().optional() }).loose())
    .optional()
    .default([]),
});
export type ApiMessages = z.infer<typeof ApiMessages>;

/**
 * `createTransactionResponse.transactionResponse`
 * (https://developer.authorize.net/api/reference/index.html#payment-transactions-charge-a-customer-profile):
 * `responseCode` 1 approved, 2 declined, 3 error, 4 held for review; `transId` ("0" when nothing was
 * created); `errors[]` with the response reason code and text; `messages[]` on approval.
 */
export const TransactionResponse = z
  .object({
    responseCode: NumberText,
    authCode: z.string().optional(),
    transId: NumberText.optional(),
    refTransID: NumberText.optional(),
    accountNumber: z.string().optional(),
    accountType: z.string().optional(),
    errors: z.array(z.object({ errorCode: NumberText, errorText: z.string().optional() }).loose()).optional(),
    messages: z
      .array(z.object({ code: NumberText.optional(), description: z.string().optional() }).loose())
      .optional(),
  })
  .loose();
export type TransactionResponse = z.infer<typeof TransactionResponse>;

/** `createTransactionResponse`: `messages` always; `transactionResponse` unless the request itself was refused. */
export const CreateTransactionResponse = z
  .object({
    transactionResponse: TransactionResponse.optional(),
    refId: NumberText.optional(),
    messages: ApiMessages,
  })
  .loose();
export type CreateTransactionResponse = z.infer<typeof CreateTransactionResponse>;

/**
 * `getTransactionDetailsResponse.transaction` (`transactionDetailsType` in AnetApiSchema.xsd;
 * https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-transaction-details).
 * Amounts are decimal major units (`authAmount` 1018.88); `refTransId` is set on a refund (the charge it
 * refunds); `order.invoiceNumber` is what we sent; no currency is returned (see `accountCurrency`).
 */
export const TransactionDetails = z
  .object({
    transId: NumberText,
    refTransId: NumberText.optional(),
    submitTimeUTC: z.string().optional(),
    transactionType: z.string(),
    transactionStatus: z.string(),
    responseCode: NumberText.optional(),
    responseReasonCode: NumberText.optional(),
    responseReasonDescription: z.string().optional(),
    order: z.object({ invoiceNumber: z.string().optional() }).loose().optional(),
    authAmount: NumberText,
    settleAmount: NumberText.optional(),
    payment: z
      .object({ creditCard: z.object({ cardNumber: z.string().optional() }).loose().optional() })
      .loose()
      .optional(),
  })
  .loose();
export type TransactionDetails = z.infer<typeof TransactionDetails>;

/** `getTransactionDetailsResponse`. */
export const TransactionDetailsResponse = z
  .object({ transaction: TransactionDetails.optional(), messages: ApiMessages })
  .loose();

/**
 * One entry of `getTransactionListResponse` / `getUnsettledTransactionListResponse`
 * (`transactionSummaryType`): `invoiceNumber` (the reference's sample shows `invoice`, both read).
 */
export const TransactionSummary = z
  .object({
    transId: NumberText,
    submitTimeUTC: z.string().optional(),
    transactionStatus: z.string(),
    invoiceNumber: z.string().optional(),
    invoice: z.string().optional(),
    settleAmount: NumberText.optional(),
  })
  .loose();
export type TransactionSummary = z.infer<typeof TransactionSummary>;

/** `getTransactionListResponse` (also the answer to `getTransactionListForCustomerRequest`). */
export const TransactionListResponse = z
  .object({
    transactions: z.array(TransactionSummary).optional().default([]),
    totalNumInResultSet: NumberText.optional(),
    messages: ApiMessages,
  })
  .loose();

/**
 * One entry of a settled batch's `statistics` (`batchStatisticType` in AnetApiSchema.xsd;
 * https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-settled-batch-list,
 * sample: stymiee/authnetjson examples/reporting/getSettledBatchListRequest.php): per card type
 * (`accountType`), the batch's settled charges and refunds as decimal major units (`chargeAmount`,
 * `refundAmount`, both positive) and counts, plus void/decline/error counts (no money). No currency
 * (AuthorizeNet/sdk-node @8db0c07 lib/apicontracts.js `BatchStatisticType`). Its chargeback and
 * returned-item amounts (`chargebackAmount`, `returnedItemAmount`, …) are not read: billhook does not
 * reconcile chargebacks or eCheck returns through Authorize.Net (status.ts).
 */
export const BatchStatistic = z
  .object({
    accountType: z.string().optional(),
    chargeAmount: NumberText,
    chargeCount: NumberText.optional(),
    refundAmount: NumberText,
    refundCount: NumberText.optional(),
  })
  .loose();
export type BatchStatistic = z.infer<typeof BatchStatistic>;

/**
 * One batch of `getSettledBatchListResponse.batchList` (`batchDetailsType`): `batchId`,
 * `settlementTimeUTC` (ISO 8601 with `Z`), `settlementState` (`settledSuccessfully` or `error`),
 * `paymentMethod` (`creditCard`, `eCheck`), and `statistics` when the request set
 * `includeStatistics`. No currency (sdk-node @8db0c07 `BatchDetailsType`; nor has a batch's
 * transaction list one: `TransactionSummaryType`).
 */
export const BatchDetails = z
  .object({
    batchId: NumberText,
    settlementTimeUTC: z.string().min(1),
    settlementState: z.string().min(1),
    paymentMethod: z.string().optional(),
    statistics: z.array(BatchStatistic).optional(),
  })
  .loose();
export type BatchDetails = z.infer<typeof BatchDetails>;

/** `getSettledBatchListResponse`: `batchList` (absent when no batch settled in the range) and `messages`. */
export const SettledBatchListResponse = z
  .object({ batchList: z.array(BatchDetails).optional().default([]), messages: ApiMessages })
  .loose();

/**
 * `getMerchantDetailsResponse` (https://developer.authorize.net/api/reference/index.html#transaction-reporting-get-merchant-details):
 * `currencies` the gateway account processes, e.g. `["USD"]`.
 */
export const MerchantDetailsResponse = z
  .object({ currencies: z.array(z.string()).optional(), messages: ApiMessages })
  .loose();

/**
 * A webhook notification (https://developer.authorize.net/api/reference/features/webhooks.html):
 * `notificationId` (unique per notification: the dedupe key), `eventType`, `eventDate`, and a minimal
 * `payload` naming the entity (`entityName` `transaction`, `id` its transId).
 */
export const Notification = z
  .object({
    notificationId: z.string().min(1),
    eventType: z.string().min(1),
    eventDate: z.string().min(1),
    webhookId: z.string().optional(),
    payload: z
      .object({
        entityName: z.string().optional(),
        id: NumberText.optional(),
      })
      .loose(),
  })
  .loose();
export type Notification = z.infer<typeof Notification>;
