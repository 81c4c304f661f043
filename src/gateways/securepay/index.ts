import type { Config } from '../../config/env.ts';
import type { GatewayAdapter } from '../types.ts';

/** The SecurePay adapter: not implemented yet, so neither its webhook route nor its API is enabled. */
export function securepayAdapter(_config: Config): GatewayAdapter {
  return { name: 'securepay' };
}
