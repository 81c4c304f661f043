import { describe, expect, it } from 'vitest';
import {
  checkCertUrl,
  checkPaypalChain,
  parsePemChain,
  TEST_CERT_URL,
} from '../../../src/gateways/paypal/certificates.ts';
import { WebhookVerificationError } from '../../../src/gateways/types.ts';
import { paypalFixtureRaw, SIMULATOR_CERT_PEM, SIMULATOR_CLOCK, TEST_CERT_PEM } from './fixtures.ts';

const chainOf = (...names: string[]) =>
  parsePemChain(names.map((n) => paypalFixtureRaw(`test-signing/chain/${n}`)).join('\n'), 'test chain');
const now = new Date();

describe('checkCertUrl', () => {
  it.each([
    'https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1a5f47cb',
    'https://api-m.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1a5f47cb',
    'https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270',
    'https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270',
    'https://API.PAYPAL.COM/v1/notifications/certs/CERT-1',
    TEST_CERT_URL,
  ])('accepts %s', (url) => {
    expect(checkCertUrl(url).hostname).toMatch(/paypal\.com$/);
  });

  it.each([
    'https://www.paypal.com/v1/notifications/certs/CERT-1',
    'https://paypal.com/v1/notifications/certs/CERT-1',
    'https://api.paypal.com.example/v1/notifications/certs/CERT-1',
    'https://api.paypal.com/v1/notifications/certs/',
    'https://api.paypal.com/v1/notifications/certs/a/b',
    'https://api.paypal.com/v1/notifications/certs/%2e%2e',
    'https://api.paypal.com/v1/notifications/certs/CERT-1#x',
    'ftp://api.paypal.com/v1/notifications/certs/CERT-1',
    'file:///etc/passwd',
    '',
  ])('rejects %s', (url) => {
    expect(() => checkCertUrl(url)).toThrow(WebhookVerificationError);
  });
});

describe('checkPaypalChain', () => {
  it('accepts PayPal’s 2024 certificate inside its validity, and says the chain does not reach a root offline', () => {
    const report = checkPaypalChain(parsePemChain(SIMULATOR_CERT_PEM, 'fixture'), SIMULATOR_CLOCK);
    expect(report.leaf.subject).toContain('CN=messageverificationcerts.paypal.com');
    expect(report.leaf.issuer).toContain('CN=DigiCert SHA2 Extended Validation Server CA');
    // The PEM is the leaf alone and its issuer is an intermediate, not one of Node's bundled roots.
    expect(report.reachesRoot).toBe(false);
  });

  it('rejects it after 2025-03-07', () => {
    expect(() => checkPaypalChain(parsePemChain(SIMULATOR_CERT_PEM, 'fixture'), now)).toThrow(
      /outside its validity/,
    );
  });

  it('rejects a certificate that is not PayPal’s signing certificate', () => {
    expect(() => checkPaypalChain(parsePemChain(TEST_CERT_PEM, 'test'), now)).toThrow(
      /is not PayPal's messageverificationcerts.paypal.com/,
    );
  });

  it('rejects a chain ending in a self-signed certificate that is not a trusted root', () => {
    expect(() => checkPaypalChain(chainOf('fake-paypal-leaf.cert.pem', 'test-ca.cert.pem'), now)).toThrow(
      /self-signed certificate that is not a trusted root/,
    );
  });

  it('rejects a chain whose link does not verify', () => {
    expect(() => checkPaypalChain(chainOf('fake-paypal-leaf.cert.pem', 'other-ca.cert.pem'), now)).toThrow(
      /not signed by certificate 1/,
    );
  });

  it('accepts a lone leaf whose issuer is not in the PEM (what can not be checked offline: trust rests on the URL check)', () => {
    expect(checkPaypalChain(chainOf('fake-paypal-leaf.cert.pem'), now).reachesRoot).toBe(false);
  });

  it('rejects text that holds no certificate', () => {
    expect(() => parsePemChain('<html>not found</html>', 'answer')).toThrow(/holds no PEM certificate/);
    expect(() =>
      parsePemChain('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', 'answer'),
    ).toThrow(/not a valid certificate/);
  });
});
