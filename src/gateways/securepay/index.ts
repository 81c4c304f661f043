import type { Config } from '../../config/env.ts';
import type { GatewayAdapter } from '../types.ts';
import { SECUREPAY_CAPABILITIES } from './capabilities.ts';
import { SecurepayClient } from './client.ts';
import { SecurepayWebhook } from './webhook.ts';

/**
 * The SecurePay adapter. The client is enabled by `SECUREPAY_CLIENT_ID`, `SECUREPAY_CLIENT_SECRET`
 * and `SECUREPAY_MERCHANT_CODE`: it calls `SECUREPAY_API_BASE` with tokens from
 * `SECUREPAY_AUTH_URL`. SecurePay documents no card-payment webhook and signs nothing, so the webhook
 * half, which only stores untrusted hints, is enabled only by `SECUREPAY_WEBHOOKS=on` (never by the
 * API credentials alone); otherwise `/webhooks/securepay` answers 404.
 */
export function securepayAdapter(config: Config): GatewayAdapter {
  const clientId = config.SECUREPAY_CLIENT_ID;
  const clientSecret = config.SECUREPAY_CLIENT_SECRET;
  const merchantCode = config.SECUREPAY_MERCHANT_CODE;
  const webhook = config.SECUREPAY_WEBHOOKS ? new SecurepayWebhook() : undefined;
  if (!clientId || !clientSecret || !merchantCode)
    return { name: 'securepay', capabilities: SECUREPAY_CAPABILITIES, webhook };
  return {
    name: 'securepay',
    capabilities: SECUREPAY_CAPABILITIES,
    webhook,
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
