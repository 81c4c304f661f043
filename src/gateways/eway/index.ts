import type { Config } from '../../config/env.ts';
import type { GatewayAdapter } from '../types.ts';
import type { EwayApiOptions } from './api.ts';
import { EWAY_CAPABILITIES } from './capabilities.ts';
import { EwayClient } from './client.ts';
import { EwaySettlement } from './settlement.ts';
import { type EwayHintOptions, EwayWebhook } from './webhook.ts';

/**
 * The eWAY Rapid adapter. Both halves, and the settlement source (Settlement Search, settlement.ts),
 * need the API credentials `EWAY_API_KEY` and `EWAY_API_PASSWORD` (calls go to `EWAY_API_BASE`,
 * timeout `GATEWAY_TIMEOUT_MS`): eWAY signs no webhooks, so the webhook half is useful only if it can
 * query eWAY about each callback hint, and all three are enabled together or not at all. `hints` bounds what callback hints cost (see
 * EwayWebhook.normalize); the CLI's registry, which serves no webhooks, leaves it out.
 */
export function ewayAdapter(
  config: Config,
  hints?: Omit<EwayHintOptions, 'queriesPerSecond'>,
): GatewayAdapter {
  if (!config.EWAY_API_KEY || !config.EWAY_API_PASSWORD)
    return { name: 'eway', capabilities: EWAY_CAPABILITIES };
  const options: EwayApiOptions = {
    apiKey: config.EWAY_API_KEY,
    apiPassword: config.EWAY_API_PASSWORD,
    apiBase: config.EWAY_API_BASE,
    timeoutMs: config.GATEWAY_TIMEOUT_MS,
  };
  const webhook = new EwayWebhook(
    options,
    undefined,
    hints && { ...hints, queriesPerSecond: config.EWAY_HINT_QUERIES_PER_SECOND },
  );
  return {
    name: 'eway',
    capabilities: EWAY_CAPABILITIES,
    webhook,
    client: new EwayClient(options),
    settlement: new EwaySettlement(options),
  };
}
