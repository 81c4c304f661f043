import type { Config } from '../../config/env.ts';
import type { GatewayAdapter } from '../types.ts';
import { AUTHORIZENET_CAPABILITIES } from './capabilities.ts';
import { AuthorizeNetClient } from './client.ts';
import { AuthorizeNetSettlement } from './settlement.ts';
import { AuthorizeNetWebhook, type ReferenceCurrency } from './webhook.ts';

/**
 * The Authorize.Net adapter. The outbound half is enabled by `AUTHORIZENET_API_LOGIN_ID` and
 * `AUTHORIZENET_TRANSACTION_KEY` (calls go to `AUTHORIZENET_API_BASE`). The webhook half needs
 * `AUTHORIZENET_SIGNATURE_KEY` (comma-separated keys are all accepted, for a key rotation) and the
 * API credentials too: a notification only names a transaction, which is read back from the API.
 * `currencyOfReference` (billhook's own currency of a charge or refund) lets the webhook read the
 * amounts of an account that processes several currencies. With the API credentials, `settlement`
 * reads the settled batches as payouts (AuthorizeNetSettlement); `currencyOfReference` gives the
 * currency of a batch of a several-currency account the same way.
 */
export function authorizenetAdapter(config: Config, currencyOfReference?: ReferenceCurrency): GatewayAdapter {
  const client =
    config.AUTHORIZENET_API_LOGIN_ID && config.AUTHORIZENET_TRANSACTION_KEY
      ? new AuthorizeNetClient({
          apiLoginId: config.AUTHORIZENET_API_LOGIN_ID,
          transactionKey: config.AUTHORIZENET_TRANSACTION_KEY,
          apiBase: config.AUTHORIZENET_API_BASE,
          timeoutMs: config.GATEWAY_TIMEOUT_MS,
        })
      : undefined;
  const signatureKeys = (config.AUTHORIZENET_SIGNATURE_KEY ?? '')
    .split(',')
    .map((key) => key.trim())
    .filter(Boolean);
  return {
    name: 'authorizenet',
    capabilities: AUTHORIZENET_CAPABILITIES,
    webhook:
      client && signatureKeys.length > 0
        ? new AuthorizeNetWebhook(signatureKeys, client, currencyOfReference)
        : undefined,
    client,
    settlement: client ? new AuthorizeNetSettlement(client, currencyOfReference) : undefined,
  };
}
