import { readFileSync } from 'node:fs';
import path from 'node:path';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/eway');

/** An eWAY payload from test/fixtures/eway (see SOURCES.md there), parsed. */
export function ewayFixture(name: string): any {
  return JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8'));
}

/** The raw text of a fixture, exactly as stored. */
export function ewayFixtureRaw(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

/** Test credentials and the HTTP Basic header eWAY expects for them (API key : password). */
export const EWAY_TEST_KEY = 'C3AB9CtestKey+ewayapi/key==';
export const EWAY_TEST_PASSWORD = 'Y6ZgTestPw';
export const EWAY_TEST_AUTHORIZATION = `Basic ${Buffer.from(`${EWAY_TEST_KEY}:${EWAY_TEST_PASSWORD}`).toString('base64')}`;

/** The TokenCustomerID of the real token-payment fixture. */
export const FIXTURE_TOKEN = '918260741894';
