import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/** A request without an API key, as if the front proxy forwarded it for `client`. */
async function unauthenticated(app: TestApp, client: string): Promise<number> {
  const response = await fetch(`${app.url}/v1/customers`, { headers: { 'x-forwarded-for': client } });
  await response.arrayBuffer();
  return response.status;
}

/**
 * Behind a front proxy every request comes from the proxy's address; `TRUST_PROXY` lets the
 * per-address limits (failed authentications, unsigned webhook routes) count the clients the proxy
 * names in `X-Forwarded-For`, and only when the operator says the peer is a proxy.
 */
describe('TRUST_PROXY', () => {
  let trusting: TestApp;
  let plain: TestApp;
  beforeAll(async () => {
    trusting = await startTestApp({ TRUST_PROXY: 'loopback', AUTH_FAILURES_PER_MINUTE: '2' }, 'web');
    plain = await startTestApp({ AUTH_FAILURES_PER_MINUTE: '2' }, 'web');
  });
  afterAll(async () => {
    await trusting.stop();
    await plain.stop();
  });

  it('counts each forwarded client on its own when the peer is a trusted proxy', async () => {
    expect(await unauthenticated(trusting, '203.0.113.1')).toBe(401);
    expect(await unauthenticated(trusting, '203.0.113.1')).toBe(401);
    expect(await unauthenticated(trusting, '203.0.113.1')).toBe(429);
    // Another client behind the same proxy is not punished for the first one's failures.
    expect(await unauthenticated(trusting, '203.0.113.2')).toBe(401);
  });

  it('ignores X-Forwarded-For by default, so a client cannot pick its own address', async () => {
    expect(await unauthenticated(plain, '203.0.113.1')).toBe(401);
    expect(await unauthenticated(plain, '203.0.113.2')).toBe(401);
    // Both came from the peer's address (127.0.0.1): the limit of 2 is used up whatever they claim.
    expect(await unauthenticated(plain, '203.0.113.3')).toBe(429);
  });

  it('takes hops, addresses, ranges and names, and refuses anything else naming the entry', () => {
    expect(loadConfig({ TRUST_PROXY: '1' }).TRUST_PROXY).toBe(1);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8, ::1' }).TRUST_PROXY).toEqual([
      'loopback',
      '10.0.0.0/8',
      '::1',
    ]);
    expect(loadConfig({}).TRUST_PROXY).toBe(false);
    expect(() => loadConfig({ TRUST_PROXY: '10.0.0.0/33' })).toThrow(/TRUST_PROXY[\s\S]*"10\.0\.0\.0\/33"/);
    expect(() => loadConfig({ TRUST_PROXY: 'everyone' })).toThrow(/TRUST_PROXY[\s\S]*"everyone"/);
  });
});
