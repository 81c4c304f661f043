import type { Config } from '../../config/env.ts';
import type { GatewayAdapter } from '../types.ts';

/** The eWAY Rapid adapter: not implemented yet, so neither its webhook route nor its API is enabled. */
export function ewayAdapter(_config: Config): GatewayAdapter {
  return { name: 'eway' };
}
