import { readFileSync } from 'node:fs';
import type { Config } from '../../config/env.ts';
import type { GatewayAdapter } from '../types.ts';
import { PAYPAL_CAPABILITIES } from './capabilities.ts';
import { PaypalClient } from './client.ts';
import { PaypalTransactionSearch } from './transaction-search.ts';
import { PaypalWebhook } from './webhook.ts';

/** Reads the PEM named by PAYPAL_TEST_CERT_FILE. @throws Error naming the variable when it cannot be read */
function testCertificate(path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`PAYPAL_TEST_CERT_FILE: cannot read ${path}: ${(error as Error).message}`);
  }
}

/**
 * The PayPal adapter. The webhook half is enabled by `PAYPAL_WEBHOOK_ID` (part of every signed
 * message; PAYPAL_TEST_CERT_FILE additionally trusts a test certificate for `send-test-webhook`) and
 * verifies offline, or through PayPal's verify-webhook-signature call when
 * `PAYPAL_WEBHOOK_VERIFICATION=api`; the outbound half by `PAYPAL_CLIENT_ID` and
 * `PAYPAL_CLIENT_SECRET`, calling `PAYPAL_API_BASE`; the same credentials enable the settlement source
 * (Transaction Search: withdrawals and the fees of captures and refunds, transaction-search.ts). Both use `GATEWAY_TIMEOUT_MS` (milliseconds)
 * per HTTP call.
 * @throws Error when PAYPAL_TEST_CERT_FILE is set but unreadable or not a certificate, or when
 * PAYPAL_WEBHOOK_VERIFICATION=api lacks the client credentials its call needs
 */
export function paypalAdapter(config: Config): GatewayAdapter {
  const client =
    config.PAYPAL_CLIENT_ID && config.PAYPAL_CLIENT_SECRET
      ? new PaypalClient({
          clientId: config.PAYPAL_CLIENT_ID,
          clientSecret: config.PAYPAL_CLIENT_SECRET,
          apiBase: config.PAYPAL_API_BASE,
          timeoutMs: config.GATEWAY_TIMEOUT_MS,
        })
      : undefined;
  const byApi = config.PAYPAL_WEBHOOK_ID && config.PAYPAL_WEBHOOK_VERIFICATION === 'api';
  if (byApi && !client) {
    throw new Error(
      'PAYPAL_WEBHOOK_VERIFICATION=api needs PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET: the verify-webhook-signature call is authenticated',
    );
  }
  return {
    name: 'paypal',
    capabilities: PAYPAL_CAPABILITIES,
    webhook: config.PAYPAL_WEBHOOK_ID
      ? new PaypalWebhook({
          webhookId: config.PAYPAL_WEBHOOK_ID,
          timeoutMs: config.GATEWAY_TIMEOUT_MS,
          testCertificatePem: testCertificate(config.PAYPAL_TEST_CERT_FILE),
          verifyByApi: byApi ? client : undefined,
        })
      : undefined,
    client,
    settlement: client ? new PaypalTransactionSearch(client) : undefined,
  };
}
