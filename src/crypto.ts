import { timingSafeEqual } from 'node:crypto';

/**
 * The one comparison of a secret, a signature or a hash with what was sent: true when `given` and
 * `expected` hold the same bytes, compared in constant time (`crypto.timingSafeEqual`), so the time
 * taken leaks no matching prefix. Strings are compared as their UTF-8 bytes. Inputs of different
 * lengths are unequal at once: a length is no secret (a digest's is fixed; a token's is public).
 * Used for webhook signatures (Authorize.Net), API key hashes (auth/) and the admin form token.
 */
export function constantTimeEqual(given: Buffer | string, expected: Buffer | string): boolean {
  const a = typeof given === 'string' ? Buffer.from(given) : given;
  const b = typeof expected === 'string' ? Buffer.from(expected) : expected;
  return a.length === b.length && timingSafeEqual(a, b);
}
