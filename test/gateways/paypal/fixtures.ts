import { readFileSync } from 'node:fs';
import path from 'node:path';
import nock from 'nock';
import { PaypalClient } from '../../../src/gateways/paypal/client.ts';
import { ANSWERED_CALL_TIMEOUT_MS } from '../../support/timeouts.ts';

/** test/fixtures/paypal (see SOURCES.md there). */
export const PAYPAL_FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/paypal');

/** A PayPal fixture (path relative to test/fixtures/paypal), parsed. */
export function paypalFixture(name: string): any {
  return JSON.parse(paypalFixtureRaw(name));
}

/** The raw text of a fixture, exactly as stored. */
export function paypalFixtureRaw(name: string): string {
  return readFileSync(path.join(PAYPAL_FIXTURES, name), 'utf8');
}

/** The five deliveries PayPal's webhook simulator signed (2024-08-02) with the webhook id `WEBHOOK_ID`. */
export const SIMULATOR_EVENTS = ['COMPLETED', 'DECLINED', 'PENDING', 'REFUNDED', 'REVERSED'] as const;

/** The literal webhook id the simulator signs with. */
export const SIMULATOR_WEBHOOK_ID = 'WEBHOOK_ID';

/** A moment inside the fixture certificate's validity (2024-03-08 … 2025-03-07), right after the deliveries. */
export const SIMULATOR_CLOCK = new Date('2024-08-02T20:00:00Z');

/** Where the simulator deliveries say their certificate is. */
export const SIMULATOR_CERT_HOST = 'https://api.paypal.com';
export const SIMULATOR_CERT_PATH = '/v1/notifications/certs/CERT-360caa42-fca2a594-1a5f47cb';

/** PayPal's signing certificate those deliveries point to. */
export const SIMULATOR_CERT_PEM = paypalFixtureRaw(
  'paypal-webhook-signing-cert.CERT-360caa42-fca2a594-1a5f47cb.pem',
);

/** One simulator delivery: the raw body bytes and the headers exactly as received (lower-case names). */
export function simulatorDelivery(event: (typeof SIMULATOR_EVENTS)[number]): {
  body: Buffer;
  headers: Record<string, string>;
} {
  const base = `webhook.PAYMENT.CAPTURE.${event}.simulator-signed`;
  return {
    body: readFileSync(path.join(PAYPAL_FIXTURES, `${base}.body.json`)),
    headers: paypalFixture(`${base}.headers.json`),
  };
}

/** Serves the fixture certificate at its PayPal URL `times` times (default once: the verifier caches it). */
export function nockSimulatorCertificate(times = 1): nock.Scope {
  return nock(SIMULATOR_CERT_HOST).get(SIMULATOR_CERT_PATH).times(times).reply(200, SIMULATOR_CERT_PEM);
}

/** The TEST ONLY key pair for PAYPAL_TEST_CERT_FILE / PAYPAL_TEST_KEY_FILE. */
export const TEST_CERT_FILE = path.join(PAYPAL_FIXTURES, 'test-signing/billhook-test-only.cert.pem');
export const TEST_KEY_FILE = path.join(PAYPAL_FIXTURES, 'test-signing/billhook-test-only.key.pem');
export const TEST_CERT_PEM = readFileSync(TEST_CERT_FILE, 'utf8');
export const TEST_KEY_PEM = readFileSync(TEST_KEY_FILE, 'utf8');

/** The constructed OAuth token answer (`access_token` A21AAconstructed-test-access-token, 32400 s). */
export const TOKEN = paypalFixture('constructed/api.oauth2.token.constructed.json');

/**
 * Fakes `POST /v1/oauth2/token` at `base`: client credentials with HTTP Basic auth, as PayPal requires
 * (https://developer.paypal.com/api/rest/authentication/).
 */
export function nockToken(
  base: string,
  clientId = 'client-id',
  clientSecret = 'client-secret',
): nock.Interceptor {
  return nock(base)
    .post(
      '/v1/oauth2/token',
      (body) => body === 'grant_type=client_credentials' || body?.grant_type === 'client_credentials',
    )
    .basicAuth({ user: clientId, pass: clientSecret });
}

/**
 * A PayPal client of the tests' credentials against `apiBase` (a nock host): its calls time out after
 * `timeoutMs`, its token request after the answered-call timeout; `now` its clock (ms).
 */
export function testPaypalClient(
  apiBase: string,
  timeoutMs = ANSWERED_CALL_TIMEOUT_MS,
  now?: () => number,
): PaypalClient {
  return new PaypalClient({
    clientId: 'client-id',
    clientSecret: 'client-secret',
    apiBase,
    timeoutMs,
    tokenTimeoutMs: ANSWERED_CALL_TIMEOUT_MS,
    now,
  });
}
