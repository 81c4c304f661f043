import type { Config } from '../../config/env.ts';
import type { GatewayAdapter } from '../types.ts';

/** The Authorize.Net adapter: not implemented yet, so neither its webhook route nor its API is enabled. */
export function authorizenetAdapter(_config: Config): GatewayAdapter {
  return { name: 'authorizenet' };
}
