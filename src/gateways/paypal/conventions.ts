/**
 * How billhook's own ids and tokens travel through PayPal.
 *
 * References: our transaction id (`txn_…`, 24 characters) goes unchanged as `PayPal-Request-Id`
 * (1–108 characters), as `purchase_units[0].custom_id` and `invoice_id` (≤ 127 each), so nothing is
 * truncated and webhooks carry it back as the capture's `custom_id` / `invoice_id`. A refund's id
 * (`re_…`) goes as its `PayPal-Request-Id` and `custom_id`.
 * Sources: https://developer.paypal.com/docs/api/orders/v2/#orders_create (header and
 * purchase_unit_request), https://developer.paypal.com/docs/api/payments/v2/#captures_refund.
 */

/** How a PayPal vault id is used as the payment source of an order. */
export type PaymentSourceKind = 'card' | 'paypal';

/** A stored payment method as PayPal takes it: the vault id and which payment source it is. */
export interface VaultedSource {
  kind: PaymentSourceKind;
  vaultId: string;
}

/** PayPal's pattern for a vault id (https://developer.paypal.com/docs/api/orders/v2/#definition-vault_id). */
const VAULT_ID = /^[0-9a-zA-Z_-]{1,255}$/;

/**
 * Reads a payment method's `gateway_token`. A PayPal vault id does not say whether it is a saved card
 * or a saved PayPal wallet (both are opaque ids of the same pattern), so the token says it:
 * `paypal:<vault_id>` → `payment_source.paypal.vault_id`; `card:<vault_id>` or a bare `<vault_id>` →
 * `payment_source.card.vault_id` (cards are the common merchant-initiated case). `:` is not in a
 * vault id's alphabet, so the prefix is unambiguous.
 * @returns undefined when the token is not of this form (the charge is declined without a call)
 */
export function parsePaymentSource(token: string): VaultedSource | undefined {
  const [prefix, rest] = token.includes(':') ? token.split(/:(.*)/s) : ['card', token];
  if ((prefix !== 'card' && prefix !== 'paypal') || rest === undefined || !VAULT_ID.test(rest)) {
    return undefined;
  }
  return { kind: prefix, vaultId: rest };
}

/**
 * How long PayPal keeps a `PayPal-Request-Id` of Orders v2 and answers a repeat with the original
 * order: 6 hours ("The server stores keys for 6 hours", https://developer.paypal.com/docs/api/orders/v2/#orders_create).
 */
export const REQUEST_ID_RETENTION_MS = 6 * 60 * 60 * 1000;

/**
 * How old an attempt may be for the status check to repeat its create with the same
 * `PayPal-Request-Id`: one hour inside PayPal's retention, so the repeat is always answered with the
 * original order and can never become a second charge.
 */
export const SAFE_REPEAT_WINDOW_MS = REQUEST_ID_RETENTION_MS - 60 * 60 * 1000;
