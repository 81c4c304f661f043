import type { Config } from '../config/env.ts';
import { authorizenetAdapter } from './authorizenet/index.ts';
import { ewayAdapter } from './eway/index.ts';
import { paypalAdapter } from './paypal/index.ts';
import { securepayAdapter } from './securepay/index.ts';
import { stripeAdapter } from './stripe/index.ts';
import type { GatewayAdapter, GatewayName } from './types.ts';

/** The configured adapters by gateway name. A gateway without credentials has no entry half. */
export type GatewayRegistry = ReadonlyMap<GatewayName, GatewayAdapter>;

/** Builds every adapter from the configuration. */
export function createRegistry(config: Config): GatewayRegistry {
  const adapters: GatewayAdapter[] = [
    stripeAdapter(config),
    paypalAdapter(config),
    authorizenetAdapter(config),
    ewayAdapter(config),
    securepayAdapter(config),
  ];
  return new Map(adapters.map((adapter) => [adapter.name, adapter]));
}
