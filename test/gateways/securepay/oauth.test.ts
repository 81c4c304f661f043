import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attemptCreatedAt } from '../../../src/gateways/attempts.ts';
import { GatewayUnreachable } from '../../../src/gateways/http.ts';
import { OAuthError, TokenCache } from '../../../src/gateways/oauth.ts';
import { SecurepayClient } from '../../../src/gateways/securepay/client.ts';
import { SECUREPAY_AUDIENCE } from '../../../src/gateways/securepay/conventions.ts';
import { ANSWERED_CALL_TIMEOUT_MS, HANGING_CALL_TIMEOUT_MS, noAnswer } from '../../support/timeouts.ts';
import { nockToken, PAID, securepayFixture } from './fixtures.ts';

const AUTH_ORIGIN = 'https://auth.securepay.test';
const AUTH_URL = `${AUTH_ORIGIN}/oauth/token`;
const API = 'https://securepay.test';

function cache(now: () => number = Date.now, timeoutMs = ANSWERED_CALL_TIMEOUT_MS) {
  return new TokenCache(
    {
      tokenUrl: AUTH_URL,
      clientId: 'sp-client-id',
      clientSecret: 'sp-client-secret',
      form: { audience: SECUREPAY_AUDIENCE },
      timeoutMs,
    },
    now,
  );
}

describe('TokenCache against the SecurePay token endpoint', () => {
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
  });
  afterAll(() => nock.enableNetConnect());

  it('asks with Basic client credentials and the form SecurePay documents: grant_type and audience', async () => {
    let form: URLSearchParams | undefined;
    nock(AUTH_ORIGIN)
      .post('/oauth/token', (body) => {
        form = new URLSearchParams(body as string);
        return true;
      })
      .matchHeader(
        'authorization',
        `Basic ${Buffer.from('sp-client-id:sp-client-secret').toString('base64')}`,
      )
      .matchHeader('content-type', 'application/x-www-form-urlencoded')
      .reply(200, securepayFixture('oauth.token.constructed.json'));
    expect(await cache().get()).toBe(securepayFixture('oauth.token.constructed.json').access_token);
    expect(Object.fromEntries(form!)).toEqual({
      grant_type: 'client_credentials',
      audience: 'https://api.payments.auspost.com.au',
    });
  });

  it('makes one token request for concurrent callers, and serves later callers from the cache', async () => {
    let calls = 0;
    nock(AUTH_ORIGIN)
      .post('/oauth/token')
      .delay(50)
      .reply(() => {
        calls += 1;
        return [200, { access_token: `tok-${calls}`, expires_in: 3600 }];
      });
    const tokens = cache();
    const got = await Promise.all(Array.from({ length: 8 }, () => tokens.get()));
    expect(got).toEqual(Array(8).fill('tok-1'));
    expect(await tokens.get()).toBe('tok-1');
    expect(calls).toBe(1);
  });

  it('keeps a token until one minute before `expires_in` ends, then fetches a new one (injected clock)', async () => {
    let now = 1_750_000_000_000;
    const tokens = cache(() => now);
    nockToken(AUTH_URL, 'tok-first', 120);
    expect(await tokens.get()).toBe('tok-first');
    now += 59_000; // 120 s - 60 s margin = valid for 60 s
    expect(await tokens.get()).toBe('tok-first');
    now += 1_001;
    nockToken(AUTH_URL, 'tok-second', 120);
    expect(await tokens.get()).toBe('tok-second');
  });

  it('fetches a new token after invalidate() (what the client does on a 401)', async () => {
    const tokens = cache();
    nockToken(AUTH_URL, 'tok-a');
    expect(await tokens.get()).toBe('tok-a');
    tokens.invalidate();
    nockToken(AUTH_URL, 'tok-b');
    expect(await tokens.get()).toBe('tok-b');
  });

  it('throws OAuthError when the endpoint refuses the credentials, and tries again on the next call', async () => {
    const tokens = cache();
    nock(AUTH_ORIGIN).post('/oauth/token').reply(401, securepayFixture('oauth.token.error.constructed.json'));
    const refused = await tokens.get().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OAuthError);
    expect((refused as Error).message).toMatch(/HTTP 401/);
    nockToken(AUTH_URL, 'tok-after-refusal');
    expect(await tokens.get()).toBe('tok-after-refusal');
  });

  it('throws OAuthError for a 200 that is not a token answer', async () => {
    nock(AUTH_ORIGIN).post('/oauth/token').reply(200, { token_type: 'Bearer' });
    await expect(cache().get()).rejects.toThrow(OAuthError);
  });

  it('throws GatewayUnreachable when the endpoint does not answer: connection refused, or the timeout', async () => {
    nock(AUTH_ORIGIN).post('/oauth/token').replyWithError('connect ECONNREFUSED');
    await expect(cache().get()).rejects.toThrow(GatewayUnreachable);
    nock(AUTH_ORIGIN).post('/oauth/token').reply(noAnswer);
    await expect(cache(Date.now, HANGING_CALL_TIMEOUT_MS).get()).rejects.toThrow(GatewayUnreachable);
    nock.abortPendingRequests();
  });
});

describe('SecurepayClient and its token', () => {
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => {
    expect(nock.pendingMocks()).toEqual([]);
    nock.cleanAll();
  });
  afterAll(() => nock.enableNetConnect());

  // Its clock a minute after the attempt PAID names, as the first status check (which repeats the
  // payment only within SAFE_REPEAT_WINDOW_MS of the attempt).
  const client = () =>
    new SecurepayClient({
      clientId: 'sp-client-id',
      clientSecret: 'sp-client-secret',
      merchantCode: '5AR0055',
      apiBase: API,
      authUrl: AUTH_URL,
      timeoutMs: ANSWERED_CALL_TIMEOUT_MS,
      now: () => attemptCreatedAt(PAID.orderId)!.getTime() + 61_000,
    });
  const charge = {
    reference: PAID.orderId as string,
    amount: 10000n,
    currency: 'AUD',
    initiation: 'recurring' as const,
    paymentMethod: { token: PAID.token as string, customerId: PAID.customerCode as string },
  };

  it('reuses one token for several calls', async () => {
    const securepay = client();
    nockToken(AUTH_URL, 'tok-shared');
    nock(API)
      .post(`/v2/customers/${PAID.customerCode}/payments`)
      .times(2)
      .matchHeader('authorization', 'Bearer tok-shared')
      .reply(201, PAID);
    expect((await securepay.charge(charge)).status).toBe('succeeded');
    expect((await securepay.charge(charge)).status).toBe('succeeded');
  });

  it('on a 401 drops the token, fetches a new one and repeats the call once with the same Idempotency-Key', async () => {
    const securepay = client();
    nockToken(AUTH_URL, 'tok-revoked');
    nock(API)
      .post(`/v2/customers/${PAID.customerCode}/payments`)
      .matchHeader('authorization', 'Bearer tok-revoked')
      .matchHeader('idempotency-key', charge.reference)
      .reply(401);
    nockToken(AUTH_URL, 'tok-fresh');
    nock(API)
      .post(`/v2/customers/${PAID.customerCode}/payments`)
      .matchHeader('authorization', 'Bearer tok-fresh')
      .matchHeader('idempotency-key', charge.reference)
      .reply(201, PAID);
    expect(await securepay.charge(charge)).toEqual({
      status: 'succeeded',
      gatewayTransactionId: charge.reference,
    });
  });

  it('declines with `unauthorized` after a second 401 (nothing was taken), and does not loop', async () => {
    const securepay = client();
    nockToken(AUTH_URL, 'tok-1');
    nockToken(AUTH_URL, 'tok-2');
    nock(API).post(`/v2/customers/${PAID.customerCode}/payments`).times(2).reply(401);
    expect(await securepay.charge(charge)).toMatchObject({ status: 'declined', code: 'unauthorized' });
  });

  it('declines with `authentication_failed` when the token endpoint refuses: no payment request is sent', async () => {
    nock(AUTH_ORIGIN).post('/oauth/token').reply(401, securepayFixture('oauth.token.error.constructed.json'));
    expect(await client().charge(charge)).toMatchObject({
      status: 'declined',
      code: 'authentication_failed',
    });
  });

  it('declines with `token_unavailable` when the token endpoint does not answer: no payment request is sent', async () => {
    nock(AUTH_ORIGIN).post('/oauth/token').replyWithError('socket hang up');
    expect(await client().charge(charge)).toMatchObject({ status: 'declined', code: 'token_unavailable' });
  });

  it('leaves the idempotent repeat unknown when no token can be had', async () => {
    nock(AUTH_ORIGIN).post('/oauth/token').reply(503);
    expect(await client().fetchTransaction({ reference: charge.reference, charge })).toMatchObject({
      status: 'unknown',
    });
  });
});
