import type { ChargeInitiation } from '../types.ts';

/**
 * eWAY Rapid API version sent as `X-EWAY-APIVERSION` on every call. Version 40 added `CurrencyCode`,
 * `TransactionCaptured` and `TransactionDateTime` to the Transaction Query answer; 47 is the current
 * one and only adds fields (https://eway.io/api-v3/#api-versioning). Without the header eWAY answers
 * as version 31, whose query answers carry no currency.
 */
export const EWAY_API_VERSION = '47';

/**
 * `TransactionType` of billhook's token payments, by the kind of merchant-initiated charge. eWAY
 * requires `MOTO` or `Recurring` for a charge of a stored `TokenCustomerID`
 * (https://eway.io/nz/developers/api/token-payments; ActiveMerchant's eway_rapid.rb: "For stored
 * card payments (aka TokenPayments), this must be either MOTO or Recurring"); `Purchase` is the
 * cardholder-present eCommerce type and is not used. A charge on an agreed schedule (renewals,
 * scheduled charges, their dunning retries) is `Recurring`; any other charge of the stored card
 * without the cardholder (an operator charging a one-off invoice) is taken by the merchant on the
 * customer's standing authority, which eWAY's types name `MOTO`. Both need no CVN (validation error
 * V6010 names them as the types an account not certified for eCommerce may use).
 */
export const EWAY_TRANSACTION_TYPE: Readonly<Record<ChargeInitiation, 'Recurring' | 'MOTO'>> = {
  recurring: 'Recurring',
  unscheduled: 'MOTO',
};

/**
 * Longest `InvoiceReference` eWAY accepts: 50 characters (ActiveMerchant's eway_rapid.rb truncates
 * to 50; a bad one is validation error V6014 "Invalid Payment InvoiceReference"). billhook's ids
 * (`txn_…` 24 characters, `re_…` 23) fit whole, so the reference is sent unchanged and eWAY echoes
 * it back as ours; nothing is stripped, so nothing needs mapping back.
 */
export const INVOICE_REFERENCE_MAX = 50;

/**
 * Our id as eWAY's `InvoiceReference`: sent unchanged, so mapping it back is the identity.
 * @throws RangeError for a reference longer than 50 characters (a bug: billhook's ids are shorter)
 */
export function invoiceReference(reference: string): string {
  if (reference.length === 0 || reference.length > INVOICE_REFERENCE_MAX) {
    throw new RangeError(
      `eWAY InvoiceReference must be 1..${INVOICE_REFERENCE_MAX} characters, got ${reference.length}`,
    );
  }
  return reference;
}

/** Shape of an eWAY access code: letters, digits, `-` and `_` (e.g. `44DD77wwTT…-a`, ~130 characters). */
export const ACCESS_CODE_PATTERN = /^[A-Za-z0-9_-]{1,512}$/;

/** A callback hint: which eWAY transaction (numeric id) or access code the caller points at. */
export type EwayHint =
  | { kind: 'transaction'; transactionId: string }
  | { kind: 'access_code'; accessCode: string };

/**
 * The inbox event id of a hint: `transaction:<TransactionID>` or `access_code:<AccessCode>`. The
 * same transaction or access code delivered twice is stored once (eWAY's answer, queried later, is
 * the same either way).
 */
export function hintEventId(hint: EwayHint): string {
  return hint.kind === 'transaction' ? `transaction:${hint.transactionId}` : `access_code:${hint.accessCode}`;
}

/**
 * Reads a date and time as eWAY writes it: .NET's JSON date `/Date(1454371076000)/` (milliseconds
 * since the epoch, optionally with an offset `/Date(1454371076000+1100)/`, which does not change the
 * instant), as in the settlement search answers of eWAY's SDK tests (eWAYPayment/eway-rapid-ruby
 * `direct_settlement_to_settlement_converter_test.rb`), or ISO 8601 (Transaction Query,
 * `TransactionDateTime` from API version 40).
 * @returns the instant, or undefined for text that is neither
 */
export function parseEwayDateTime(text: string): Date | undefined {
  const dotNet = /^\/Date\((-?\d+)(?:[+-]\d{4})?\)\/$/.exec(text);
  const parsed = dotNet ? new Date(Number(dotNet[1])) : new Date(text);
  return Number.isNaN(parsed.getTime()) ? undefined : parsed;
}
