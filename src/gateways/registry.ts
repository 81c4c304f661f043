import type { Config } from '../config/env.ts';
import { GATEWAYS } from '../config/gateways.ts';
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

/**
 * Builds `gateway`'s adapter from the configuration: the one factory per gateway (its index.ts), used
 * for the default account (the environment) and for each gateway account (the environment with the
 * account's credentials in place of the gateway's variables).
 */
export function createAdapter(
  gateway: GatewayName,
  config: Config,
  lookups: RegistryLookups = {},
): GatewayAdapter {
  switch (gateway) {
    case 'stripe':
      return stripeAdapter(config);
    case 'paypal':
      return paypalAdapter(config);
    case 'authorizenet':
      return authorizenetAdapter(config, lookups.currencyOfReference);
    case 'eway':
      return ewayAdapter(config, lookups.ewayHints);
    case 'securepay':
      return securepayAdapter(config);
  }
}

/** Builds every adapter from the configuration. */
export function createRegistry(config: Config, lookups: RegistryLookups = {}): GatewayRegistry {
  return new Map(GATEWAYS.map((gateway) => [gateway, createAdapter(gateway, config, lookups)]));
}

/**
 * The adapters of the gateway accounts stored in the database (`gwa_…`), built per account from its
 * credentials and kept until the account changes (src/accounts/adapters.ts). The default account of
 * each gateway (the environment) is the `GatewayRegistry`'s.
 */
export interface AccountRegistry {
  /**
   * `account`'s adapter for `gateway`; undefined when no such account of that gateway exists, or it
   * is disabled and `includeDisabled` is not set (a stored delivery of a since disabled account is
   * still processed).
   */
  adapterOf(
    gateway: GatewayName,
    account: string,
    options?: { includeDisabled?: boolean },
  ): Promise<GatewayAdapter | undefined>;
}
