/**
 * Meanings of the eWAY Rapid response and error codes billhook meets, as eWAY's own SDK words them
 * (eWAYPayment/eway-rapid-php `resource/lang/en.ini`; the list:
 * https://eway.io/api-v3/#response-amp-error-codes).
 * A-codes approve, D-codes are bank declines, F-codes fraud (Beagle) declines, all in `ResponseMessage`;
 * V-codes (validation) and S-codes (system) come in `Errors`. Both fields are comma-separated lists.
 */
const MESSAGES: Readonly<Record<string, string>> = {
  A2000: 'Transaction Approved',
  A2008: 'Honour With Identification',
  A2010: 'Approved For Partial Amount',
  A2011: 'Approved, VIP',
  A2016: 'Approved, Update Track 3',
  D4401: 'Refer to Issuer',
  D4402: 'Refer to Issuer, special',
  D4403: 'No Merchant',
  D4404: 'Pick Up Card',
  D4405: 'Do Not Honour',
  D4406: 'Error',
  D4407: 'Pick Up Card, Special',
  D4409: 'Request In Progress',
  D4412: 'Invalid Transaction',
  D4413: 'Invalid Amount',
  D4414: 'Invalid Card Number',
  D4415: 'No Issuer',
  D4419: 'Re-enter Last Transaction',
  D4421: 'No Action Taken',
  D4422: 'Suspected Malfunction',
  D4423: 'Unacceptable Transaction Fee',
  D4425: 'Unable to Locate Record On File',
  D4430: 'Format Error',
  D4431: 'Bank Not Supported By Switch',
  D4433: 'Expired Card, Capture',
  D4434: 'Suspected Fraud, Retain Card',
  D4435: 'Card Acceptor, Contact Acquirer, Retain Card',
  D4436: 'Restricted Card, Retain Card',
  D4437: 'Contact Acquirer Security Department, Retain Card',
  D4438: 'PIN Tries Exceeded, Capture',
  D4439: 'No Credit Account',
  D4440: 'Function Not Supported',
  D4441: 'Lost Card',
  D4442: 'No Universal Account',
  D4443: 'Stolen Card',
  D4444: 'No Investment Account',
  D4451: 'Insufficient Funds',
  D4452: 'No Cheque Account',
  D4453: 'No Savings Account',
  D4454: 'Expired Card',
  D4455: 'Incorrect PIN',
  D4456: 'No Card Record',
  D4457: 'Function Not Permitted to Cardholder',
  D4458: 'Function Not Permitted to Terminal',
  D4459: 'Suspected Fraud',
  D4460: 'Acceptor Contact Acquirer',
  D4461: 'Exceeds Withdrawal Limit',
  D4462: 'Restricted Card',
  D4463: 'Security Violation',
  D4464: 'Original Amount Incorrect',
  D4465: 'Withdrawal Frequency Limit Exceeded',
  D4466: 'Acceptor Contact Acquirer, Security',
  D4467: 'Capture Card',
  D4475: 'PIN Tries Exceeded',
  D4482: 'CVV Validation Error',
  D4483: 'Acquirer Is Not Accepting Transactions From You At This Time',
  D4484: 'Acquirer Is Not Accepting This Transaction',
  D4490: 'Cut off In Progress',
  D4491: 'Card Issuer Unavailable',
  D4492: 'Unable To Route Transaction',
  D4493: 'Cannot Complete, Violation Of The Law',
  D4494: 'Duplicate Transaction',
  D4495: 'Amex Declined',
  D4496: 'System Error',
  D4499: 'Invalid Transaction for Auth/Void',
  S5000: 'System Error',
  S5010: 'Unknown error returned by gateway',
  S5020: 'Transaction maximum time elapsed',
  S5029: 'API Rate Limit Exceeded',
  S5099: 'Incomplete (Access Code in progress/incomplete)',
  S5666: 'Transaction in unknown state',
  V6000: 'Validation error',
  V6010: 'Invalid TransactionType, account not certified for eCome only MOTO or Recurring available',
  V6011: 'Invalid Payment TotalAmount',
  V6014: 'Invalid Payment InvoiceReference',
  V6015: 'Invalid Payment CurrencyCode',
  V6017: 'Payment CurrencyCode Required',
  V6018: 'Unknown Payment CurrencyCode',
  V6021: 'EWAY_CARDHOLDERNAME Required',
  V6022: 'EWAY_CARDNUMBER Required',
  V6040: 'Invalid TokenCustomerID',
  V6046: 'TokenCustomerID Required',
  V6101: 'Invalid EWAY_CARDEXPIRYMONTH',
  V6102: 'Invalid EWAY_CARDEXPIRYYEAR',
  V6111: 'Unauthorised API Access, Account Not PCI Certified',
  V6113: 'Invalid transaction for refund',
  V6115: 'Invalid DirectRefundRequest, Transaction ID',
  V6129: 'Transaction has not been authorised for Capture/Cancellation',
  V6132: 'Transaction has already been completed or voided, operation not permitted',
  V6134: 'Invalid Auth Transaction ID for Capture/Void',
  V6136: 'Original transaction does not exist or state is incorrect',
  V6140: 'Merchant account is suspended',
  V6150: 'Invalid Refund Amount',
  V6151: 'Refund amount greater than original transaction',
  V6152: 'Original transaction already refunded for total amount',
  V6154: 'Insufficent Funds Available For Refund',
  V6171: 'Invalid TransactionSearch, Invoice Number not found',
};

/**
 * True for a code in `Errors` that says eWAY refused the request, so no money moved: any V-code
 * (validation: the request was rejected before processing, https://eway.io/api-v3/#response-amp-error-codes)
 * and the S-codes listed above. A code billhook does not know is not a refusal (status.ts reads it
 * as an open outcome).
 */
export function isKnownCode(code: string): boolean {
  return code.startsWith('V') || Object.hasOwn(MESSAGES, code);
}

/**
 * Splits one of eWAY's comma-separated code fields (`"V6040,V6021"`, `"D4405, F9023"`) into codes;
 * `null`, `""` and blanks give `[]`.
 */
export function splitCodes(field: string | null | undefined): string[] {
  return (field ?? '')
    .split(',')
    .map((code) => code.trim())
    .filter((code) => code.length > 0);
}

/**
 * Human words for a list of codes, e.g. `["D4401"]` → `"D4401 Refer to Issuer"`; an F-code
 * without its own entry reads "declined by a fraud rule", any other unknown code "unknown eWAY code".
 */
export function describeCodes(codes: readonly string[]): string {
  return codes
    .map((code) => {
      const text =
        MESSAGES[code] ?? (code.startsWith('F') ? 'declined by a fraud rule (Beagle)' : 'unknown eWAY code');
      return `${code} ${text}`;
    })
    .join('; ');
}
