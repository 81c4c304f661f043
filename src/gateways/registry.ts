import type { Config } from '../config/env.ts';
import { authorizenetAdapter } from './authorizenet/index.ts';
import type { ReferenceCurrency } from './authorizenet/webhook.ts';
import { ewayAdapter } from './eway/index.ts';
import type { EwayHintOptions } from './eway/webhook.ts';
import { paypalAdapter } from './paypal/index.ts';
import { securepayAdapter } from './securepay/index.ts';
import { stripeAdapter } from './stripe/index.ts';
import type { GatewayAdapter, GatewayName } from './types.ts';

/** The configured adapters by gateway name. A gateway without credentials has no entry half. */
export type GatewayRegistry = ReadonlyMap<GatewayName, GatewayAdapter>;

/** What adapters may ask of billhook's own records. */
export interface RegistryLookups {
  /** billhook's currency of its charge or refund by reference (Authorize.Net webhooks, several-currency accounts). */
  currencyOfReference?: ReferenceCurrency;
  /** What eWAY callback hints may ask of billhook's payments, and where dropped hints are logged. */
  ewayHints?: Omit<EwayHintOptions, 'queriesPerSecond'>;
}

/** Builds every adapter from the configuration. */
export function createRegistry(config: Config, lookups: RegistryLookups = {}): GatewayRegistry {
  const adapters: GatewayAdapter[] = [
    stripeAdapter(config),
    paypalAdapter(config),
    authorizenetAdapter(config, lookups.currencyOfReference),
    ewayAdapter(config, lookups.ewayHints),
    securepayAdapter(config),
  ];
  return new Map(adapters.map((adapter) => [adapter.name, adapter]));
}
