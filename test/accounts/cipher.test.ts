import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyring, open, SecretKeyMissing, seal } from '../../src/accounts/cipher.ts';
import { accountConfig, last4 } from '../../src/accounts/credentials.ts';
import { ConfigError, loadConfig } from '../../src/config/env.ts';

describe('credentials encryption (AES-256-GCM)', () => {
  const current = randomBytes(32);
  const previous = randomBytes(32);

  it('opens what it sealed, tagged with the key id; each seal has its own IV', () => {
    const keys = keyring(current, undefined);
    const sealed = seal(keys, '{"secret_key":"sk_test_x"}', 'gwa_1');
    expect(sealed.keyId).toMatch(/^[0-9a-f]{8}$/);
    expect(sealed.keyId).toBe(keys.current?.id);
    expect(sealed.data.toString('latin1')).not.toContain('sk_test_x');
    expect(seal(keys, '{"secret_key":"sk_test_x"}', 'gwa_1').data.equals(sealed.data)).toBe(false);
    expect(open(keys, sealed, 'gwa_1')).toBe('{"secret_key":"sk_test_x"}');
  });

  it("refuses a ciphertext altered or moved to another account's row", () => {
    const keys = keyring(current, undefined);
    const sealed = seal(keys, 'secret', 'gwa_1');
    expect(() => open(keys, sealed, 'gwa_2')).toThrow();
    const altered = Buffer.from(sealed.data);
    altered[altered.length - 1]! ^= 1;
    expect(() => open(keys, { ...sealed, data: altered }, 'gwa_1')).toThrow();
  });

  it('reads with the previous key during a rotation, and names a key it does not have', () => {
    const old = seal(keyring(previous, undefined), 'secret', 'gwa_1');
    expect(open(keyring(current, previous), old, 'gwa_1')).toBe('secret');
    expect(() => open(keyring(current, undefined), old, 'gwa_1')).toThrow(/neither BILLHOOK_SECRET_KEY/);
    expect(() => open(keyring(undefined, undefined), old, 'gwa_1')).toThrow(SecretKeyMissing);
    expect(() => seal(keyring(undefined, previous), 'secret', 'gwa_1')).toThrow(SecretKeyMissing);
  });
});

describe('BILLHOOK_SECRET_KEY', () => {
  it('takes 32 bytes as 64 hex digits or base64, and refuses anything else', () => {
    const key = randomBytes(32);
    for (const written of [key.toString('hex'), key.toString('base64'), key.toString('base64url')])
      expect(loadConfig({ BILLHOOK_SECRET_KEY: written }).BILLHOOK_SECRET_KEY?.equals(key)).toBe(true);
    expect(loadConfig({}).BILLHOOK_SECRET_KEY).toBeUndefined();
    for (const bad of ['short', randomBytes(16).toString('hex'), randomBytes(33).toString('base64')])
      expect(() => loadConfig({ BILLHOOK_SECRET_KEY_PREVIOUS: bad })).toThrow(ConfigError);
  });
});

describe("an account's configuration", () => {
  const config = loadConfig({
    STRIPE_SECRET_KEY: 'sk_test_default',
    STRIPE_WEBHOOK_SECRET: 'whsec_default',
    STRIPE_API_BASE: 'https://stripe.test',
  });

  it("replaces every credential variable of its gateway, never falling back to the default account's", () => {
    const eu = accountConfig(config, 'stripe', { webhook_secrets: ['whsec_eu'] }, null);
    expect(eu.STRIPE_WEBHOOK_SECRET).toEqual(['whsec_eu']);
    expect(eu.STRIPE_SECRET_KEY).toBeUndefined();
    expect(eu.STRIPE_API_BASE).toBe('https://stripe.test');
    expect(
      accountConfig(config, 'stripe', { secret_key: 'sk_test_eu' }, 'https://eu.stripe.test'),
    ).toMatchObject({
      STRIPE_SECRET_KEY: 'sk_test_eu',
      STRIPE_WEBHOOK_SECRET: [],
      STRIPE_API_BASE: 'https://eu.stripe.test',
    });
  });

  it('shows the last four characters of credentials of 12 or more', () => {
    expect(last4({ secret_key: 'sk_test_0123456789', webhook_secrets: ['whsec_abcdefgh', 'short'] })).toEqual(
      {
        secret_key: '6789',
        webhook_secrets: ['efgh', null],
      },
    );
  });
});
