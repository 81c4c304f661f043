import type { Config } from '../../config/env.ts';
import type { GatewayAdapter } from '../types.ts';
import { SecurepayClient } from './client.ts';
import { SecurepayWebhook } from './webhook.ts';

/**
 * The SecurePay adapter, enabled as a whole by `SECUREPAY_CLIENT_ID`, `SECUREPAY_CLIENT_SECRET` and
 * `SECUREPAY_MERCHANT_CODE`: the client calls `SECUREPAY_API_BASE` with tokens from
 * `SECUREPAY_AUTH_URL`. SecurePay has no webhook credentials of its own (no documented card-payment
 * webhook), so the webhook half, which only stores untrusted hints, is enabled by the same API
 * credentials; without them `/webhooks/securepay` answers 404.
 */
export function securepayAdapter(config: Config): GatewayAdapter {
  const clientId = config.SECUREPAY_CLIENT_ID;
  const clientSecret = config.SECUREPAY_CLIENT_SECRET;
  const merchantCode = config.SECUREPAY_MERCHANT_CODE;
  if (!clientId || !clientSecret || !merchantCode) return { name: 'securepay' };
  return {
    name: 'securepay',
    webhook: new SecurepayWebhook(),
    client: new SecurepayClient({
      clientId,
      clientSecret,
      merchantCode,
      apiBase: config.SECUREPAY_API_BASE,
      authUrl: config.SECUREPAY_AUTH_URL,
      timeoutMs: config.GATEWAY_TIMEOUT_MS,
    }),
  };
}
