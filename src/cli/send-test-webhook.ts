import { openGatewayAccount } from '../accounts/accounts.ts';
import { keyring } from '../accounts/cipher.ts';
import { accountConfig } from '../accounts/credentials.ts';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import {
  AUTHORIZENET_TEST_EVENT_TYPES,
  buildAuthorizenetTestDelivery,
} from '../gateways/authorizenet/test-events.ts';
import { buildEwayTestDelivery, EWAY_TEST_EVENT_TYPES } from '../gateways/eway/test-events.ts';
import { buildPaypalTestDelivery, PAYPAL_TEST_EVENT_TYPES } from '../gateways/paypal/test-events.ts';
import { buildSecurepayTestDelivery, SECUREPAY_TEST_EVENT_TYPES } from '../gateways/securepay/test-events.ts';
import {
  buildStripeTestEvent,
  fetchStripePayout,
  STRIPE_TEST_EVENT_TYPES,
  type StripeTestEventType,
  signStripePayload,
} from '../gateways/stripe/test-events.ts';
import type { GatewayName } from '../gateways/types.ts';

/** What a test delivery is about; each gateway reads the options it knows. Amount in minor units. */
export interface TestDeliveryOptions {
  /** Base URL of the running billhook, e.g. `http://127.0.0.1:3000`. */
  url: string;
  /**
   * A gateway account (`gwa_…`): the delivery goes to `/webhooks/<gateway>/<account>`, and the
   * configuration it is built with must carry that account's credentials (`accountTestConfig`).
   */
  account?: string;
  amount: number;
  currency: string;
  /** Our `txn_…` (or `re_…`) id the gateway echoes: Stripe metadata, PayPal custom_id, SecurePay orderId. */
  reference?: string;
  /** The gateway's transaction: Stripe payment intent, PayPal capture, Authorize.Net transId, eWAY TransactionID. */
  transactionId?: string;
  /** A refund, dispute or payout id, for those events (Stripe `payout.paid`: the payout is read from STRIPE_API_BASE). */
  objectId?: string;
  /** Stripe charge.dispute.closed status, or PayPal dispute outcome code. */
  disputeStatus?: string;
  /** eWAY access code, for `access_code`. */
  accessCode?: string;
  /** eWAY body format: `form` or `json`. */
  format?: 'form' | 'json';
  /** SecurePay customer code. */
  customerCode?: string;
}

/** The server's answer to a test delivery. */
export interface SendResult {
  status: number;
  body: string;
}

type Delivery = { body: string; headers: Record<string, string> };

/** Each gateway: the event types it can build and how. */
const BUILDERS: Record<
  GatewayName,
  {
    types: readonly string[];
    build(type: string, o: TestDeliveryOptions, c: Config): Delivery | Promise<Delivery>;
  }
> = {
  stripe: {
    types: STRIPE_TEST_EVENT_TYPES,
    async build(type, o, config) {
      const secret = config.STRIPE_WEBHOOK_SECRET[0];
      if (!secret)
        throw new Error('STRIPE_WEBHOOK_SECRET is not set: the server would not accept the event either');
      // A payout named by --object-id is sent as Stripe (or the stub) has it, so its lines can be listed.
      const payout =
        type.startsWith('payout.') && o.objectId && config.STRIPE_SECRET_KEY
          ? await fetchStripePayout(
              {
                secretKey: config.STRIPE_SECRET_KEY,
                apiBase: config.STRIPE_API_BASE,
                timeoutMs: config.GATEWAY_TIMEOUT_MS,
              },
              o.objectId,
            )
          : undefined;
      const event = buildStripeTestEvent(type as StripeTestEventType, {
        payout,
        paymentIntent: o.transactionId,
        reference: o.reference,
        amount: o.amount,
        currency: o.currency,
        objectId: o.objectId,
        disputeStatus: o.disputeStatus,
      });
      const body = JSON.stringify(event, null, 2);
      return {
        body,
        headers: { 'content-type': 'application/json', 'stripe-signature': signStripePayload(body, secret) },
      };
    },
  },
  paypal: {
    types: PAYPAL_TEST_EVENT_TYPES,
    build: (type, o, config) =>
      buildPaypalTestDelivery(
        type,
        {
          captureId: o.transactionId,
          reference: o.reference,
          amount: o.amount,
          currency: o.currency,
          objectId: o.objectId,
          disputeOutcome: o.disputeStatus,
          keyFile: config.PAYPAL_TEST_KEY_FILE,
        },
        config,
      ),
  },
  authorizenet: {
    types: AUTHORIZENET_TEST_EVENT_TYPES,
    build(type, o, config) {
      if (!o.transactionId)
        throw new Error('authorizenet events need --transaction-id (the transId to look up)');
      return buildAuthorizenetTestDelivery(
        type as (typeof AUTHORIZENET_TEST_EVENT_TYPES)[number],
        { transactionId: o.transactionId, amount: o.amount, currency: o.currency },
        config,
      );
    },
  },
  eway: {
    types: EWAY_TEST_EVENT_TYPES,
    build: (type, o, config) =>
      buildEwayTestDelivery(
        type as (typeof EWAY_TEST_EVENT_TYPES)[number],
        { transactionId: o.transactionId, accessCode: o.accessCode, format: o.format },
        config,
      ),
  },
  securepay: {
    types: SECUREPAY_TEST_EVENT_TYPES,
    build: (type, o, config) =>
      buildSecurepayTestDelivery(
        type as (typeof SECUREPAY_TEST_EVENT_TYPES)[number],
        { reference: o.reference, amount: o.amount, currency: o.currency, customerCode: o.customerCode },
        config,
      ),
  },
};

/**
 * The configuration a test delivery to gateway account `account` is built with: `config` with the
 * account's credentials (decrypted with BILLHOOK_SECRET_KEY, or the previous key while rotating) in
 * place of the gateway's variables, as the server's adapter for that account is built (a disabled
 * account's too: the server still receives its webhooks).
 * @throws Error when no `gateway` account has that id; SecretKeyMissing (or ConflictError
 *   `secret_key_unknown`) when the key that encrypted it is not configured
 */
export async function accountTestConfig(
  db: Db,
  config: Config,
  gateway: string,
  account: string,
): Promise<Config> {
  const keys = keyring(config.BILLHOOK_SECRET_KEY, config.BILLHOOK_SECRET_KEY_PREVIOUS);
  const opened = await openGatewayAccount(db, keys, account);
  if (!opened || opened.account.gateway !== gateway)
    throw new Error(`no ${gateway} gateway account ${account} (billhook accounts list)`);
  return accountConfig(config, opened.account.gateway, opened.credentials, opened.account.api_base);
}

/**
 * Builds a realistic delivery for `gateway`, signed as the gateway signs it (Stripe and Authorize.Net
 * with the configured secret, PayPal with the test key its server trusts in test mode) or shaped as
 * the hint it is (eWAY, SecurePay), and POSTs it to `/webhooks/<gateway>` of the running server, or
 * to `/webhooks/<gateway>/<account>` for a gateway account (`options.account`, with `config` from
 * `accountTestConfig`).
 * @throws Error naming the supported gateways or event types, or the missing setting
 */
export async function sendTestWebhook(
  config: Config,
  gateway: string,
  eventType: string,
  options: TestDeliveryOptions,
): Promise<SendResult> {
  const builder = BUILDERS[gateway as GatewayName];
  if (!builder)
    throw new Error(`send-test-webhook supports: ${Object.keys(BUILDERS).join(', ')} (got ${gateway})`);
  if (!builder.types.includes(eventType)) {
    throw new Error(`unsupported ${gateway} event type ${eventType}; one of: ${builder.types.join(', ')}`);
  }
  const delivery = await builder.build(eventType, options, config);
  const path = options.account ? `/webhooks/${gateway}/${options.account}` : `/webhooks/${gateway}`;
  const response = await fetch(new URL(path, options.url), {
    method: 'POST',
    headers: delivery.headers,
    body: delivery.body,
  });
  return { status: response.status, body: await response.text() };
}
