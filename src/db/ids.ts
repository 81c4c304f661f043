import { randomFillSync } from 'node:crypto';

/** Type prefixes of billhook's public ids (`cus_…`, `inv_…`, `txn_…`, …). */
export type IdPrefix =
  | 'cus'
  | 'pm'
  | 'inv'
  | 'il'
  | 'txn'
  | 'op'
  | 're'
  | 'cn'
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
  | 'act'
  | 'gwa'
  | 'pyo'
  | 'stl'
  | 'we'
  | 'wdl'
  | 'txr'
  | 'addon'
  | 'sao';

/**
 * A new prefixed id: the prefix, `_`, 10 base-32 characters of the creation time in milliseconds,
 * then 10 random base-32 characters (50 bits), e.g. `inv_01jh3k9q2m4v8c1xk0bd`. Ids of one type
 * therefore sort roughly by creation time, which keeps cursor pagination stable.
 */
export function newId(prefix: IdPrefix): string {
  const time = Date.now().toString(32).padStart(10, '0');
  return `${prefix}_${time}${random25()}${random25()}`;
}

// Random bytes drawn from a pool refilled 4 kB at a time: one call into the CSPRNG per 1,024 ids
// instead of one per id (ids are made on every webhook's hot path).
const pool = new Uint32Array(1024);
let next = pool.length;

/** 25 random bits as 5 base-32 characters. */
function random25(): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  return ((pool[next++] as number) >>> 7).toString(32).padStart(5, '0');
}
