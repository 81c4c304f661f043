/**
 * The OAuth `audience` SecurePay's token endpoint issues payment API tokens for. Sent by the SDK
 * `fgct/securepay-api` (`ClientCredentialsRequest`) and three further independent clients (Ruby,
 * Node, Drupal; FACTS.md). Some clients send `scope=…/payhive/payments/read …` instead; billhook
 * sends the audience only, as the SDK does, so a client not granted every scope still gets a token.
 */
export const SECUREPAY_AUDIENCE = 'https://api.payments.auspost.com.au';

/**
 * The `ip` SecurePay requires on payments and refunds. billhook's charges are merchant-initiated
 * (no shopper's browser is involved), so it sends the loopback address, as SecurePay's own request
 * example does (`"ip": "127.0.0.1"`, test/fixtures/securepay/api.payments.create.request.docs-sample.json).
 */
export const DEFAULT_REQUEST_IP = '127.0.0.1';

/**
 * Our reference as SecurePay's `orderId` and `Idempotency-Key`: sent unchanged. billhook's ids are
 * 24 characters (`txn_` + 20 base-32 characters, src/db/ids.ts); SecurePay's documented request
 * example uses a 36-character UUID as `orderId` and as `Idempotency-Key`, so no truncation is needed
 * and the order id maps back to our transaction without a lookup.
 */
export function orderIdOf(reference: string): string {
  return reference;
}

/**
 * How old an attempt may be (its creation time is in our id, `attemptCreatedAt`) for the status check
 * to repeat its payment with the same `Idempotency-Key` and `orderId`: one hour. How long SecurePay
 * keeps an idempotency key, and whether it refuses a second payment with an `orderId` it has seen, is
 * documented nowhere (FACTS.md, row "status query": no public client or SDK says), and a repeat after
 * SecurePay forgot the key would be a second payment of the card. So the repeat is made only while
 * the attempt is young, far inside the retention of the keys that are documented (PayPal's Orders
 * keep theirs 6 hours, and billhook stops repeating there at 5 hours: paypal/conventions.ts; Stripe's
 * at least 24 hours, https://docs.stripe.com/api/idempotent_requests). With the default
 * `POLL_SCHEDULE_SECONDS` (60, 300, 3600, 86400) the checks at 1 and 5 minutes repeat; the later ones
 * (the sweep makes the 1-hour check just after the hour) answer unknown without a call, and the last
 * ends in an `unknown_outcome` exception for a person.
 */
export const SAFE_REPEAT_WINDOW_MS = 60 * 60 * 1000;

/** A SecurePay stored card: the customer it is stored under and the instrument's token. */
export interface StoredCard {
  customerCode: string;
  instrumentToken: string;
}

/**
 * Reads a payment method's SecurePay stored card. PRODUCT.md §6 names a SecurePay payment method by
 * its customer code, and a charge needs the instrument too (`POST /v2/customers/{customerCode}/payments`
 * with `token` = the instrument, FACTS.md), so two forms are accepted:
 * - `gateway_token` = `customerCode/instrumentToken` (as Authorize.Net's `profile/paymentProfile`);
 * - `gateway_customer_id` = the customer code and `gateway_token` = the instrument token.
 * @returns undefined when neither form gives both parts
 */
export function parseStoredCard(token: string, customerId: string | null): StoredCard | undefined {
  const code = customerId?.trim();
  if (code) return token.trim() ? { customerCode: code, instrumentToken: token.trim() } : undefined;
  const slash = token.indexOf('/');
  const customerCode = token.slice(0, slash).trim();
  const instrumentToken = token.slice(slash + 1).trim();
  return slash > 0 && customerCode && instrumentToken ? { customerCode, instrumentToken } : undefined;
}
