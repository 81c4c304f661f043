import { readFileSync } from 'node:fs';
import path from 'node:path';
import nock from 'nock';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/securepay');

/** A SecurePay fixture from test/fixtures/securepay (constructed from FACTS.md, see SOURCES.md there), parsed. */
export function securepayFixture(name: string): any {
  return JSON.parse(securepayFixtureRaw(name));
}

/** The raw bytes of a fixture, exactly as stored. */
export function securepayFixtureRaw(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

/** The constructed approved payment; its `orderId` is a billhook reference. */
export const PAID = securepayFixture('api.customers.payments.paid.constructed.json');

/** Answers the OAuth token request once with the constructed token answer (access token `token`). */
export function nockToken(authUrl: string, token = 'sp-token-1', expiresIn = 86400) {
  const url = new URL(authUrl);
  return nock(url.origin)
    .post(url.pathname)
    .reply(200, {
      ...securepayFixture('oauth.token.constructed.json'),
      access_token: token,
      expires_in: expiresIn,
    });
}
