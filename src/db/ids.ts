import { randomBytes } from 'node:crypto';

/** Type prefixes of billhook's public ids (`cus_…`, `inv_…`, `txn_…`, …). */
export type IdPrefix =
  | 'cus'
  | 'pm'
  | 'inv'
  | 'il'
  | 'txn'
  | 'op'
  | 're'
  | 'dp'
  | 'evt'
  | 'rex'
  | 'acct'
  | 'je'
  | 'key'
  | 'prod'
  | 'plan'
  | 'sub'
  | 'cpn'
  | 'cr'
  | 'ue'
  | 'ul'
  | 'act';

/**
 * A new prefixed id: the prefix, `_`, 10 base-32 characters of the creation time in milliseconds,
 * then 10 random base-32 characters (50 bits), e.g. `inv_01jh3k9q2m4v8c1xk0bd`. Ids of one type
 * therefore sort roughly by creation time, which keeps cursor pagination stable.
 */
export function newId(prefix: IdPrefix): string {
  const time = Date.now().toString(32).padStart(10, '0');
  const random = randomBytes(8).readBigUInt64BE().toString(32).padStart(13, '0').slice(0, 10);
  return `${prefix}_${time}${random}`;
}
