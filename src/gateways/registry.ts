import type { Config } from '../config/env.ts';
import { AUTHORIZENET_CAPABILITIES } from './authorizenet/capabilities.ts';
import { authorizenetAdapter } from './authorizenet/index.ts';
import type { ReferenceCurrency } from './authorizenet/webhook.ts';
import { EWAY_CAPABILITIES } from './eway/capabilities.ts';
import { ewayAdapter } from './eway/index.ts';
import type { EwayHintOptions } from './eway/webhook.ts';
import { PAYPAL_CAPABILITIES } from './paypal/capabilities.ts';
import { paypalAdapter } from './paypal/index.ts';
import { SECUREPAY_CAPABILITIES } from './securepay/capabilities.ts';
import { securepayAdapter } from './securepay/index.ts';
import { STRIPE_CAPABILITIES } from './stripe/capabilities.ts';
import { stripeAdapter } from './stripe/index.ts';
import type { GatewayAdapter, GatewayCapabilities, GatewayName } from './types.ts';

/** Each gateway's declared capabilities (its capabilities.ts), whether or not it is configured. */
const CAPABILITIES: Readonly<Record<GatewayName, GatewayCapabilities>> = {
  stripe: STRIPE_CAPABILITIES,
  paypal: PAYPAL_CAPABILITIES,
  authorizenet: AUTHORIZENET_CAPABILITIES,
  eway: EWAY_CAPABILITIES,
  securepay: SECUREPAY_CAPABILITIES,
};

/**
 * What `gateway` can do (`GatewayCapabilities`): for code that acts on a gateway's event or record
 * without the configured registry at hand (reconcile, refunds, disputes). Equal to the adapter's
 * `capabilities`.
 */
export function capabilitiesOf(gateway: GatewayName): GatewayCapabilities {
  return CAPABILITIES[gateway];
}

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
