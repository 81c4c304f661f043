import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/env.ts';

/** The ConfigError loadConfig throws for `env` (fails the test when it does not throw one). */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('applies the defaults for an empty environment', () => {
    expect(loadConfig({})).toEqual({
      EMBEDDED_PG_DIR: './.data/pg',
      PORT: 3000,
      BILLHOOK_ROLE: 'all',
      BILLHOOK_BENCH_ROUTES: false,
      API_RATE_LIMIT_PER_MINUTE: 600,
      AUTH_FAILURES_PER_MINUTE: 60,
      TRUST_PROXY: false,
      IDEMPOTENCY_KEY_TTL_HOURS: 24,
      LOG_LEVEL: 'info',
      WEBHOOK_BATCH_SIZE: 100,
      WEBHOOK_CONCURRENCY: 8,
      WEBHOOK_MAX_WAITING: 5000,
      WEBHOOK_MAX_WAITING_BYTES: 64 * 1024 * 1024,
      UNSIGNED_WEBHOOK_RATE_LIMIT_PER_MINUTE: 60,
      EWAY_HINT_QUERIES_PER_SECOND: 5,
      WEBHOOK_RETRY_LIMIT: 8,
      WEBHOOK_RETRY_DELAY_SECONDS: 5,
      WEBHOOK_ENDPOINT_RETRY_DELAY_SECONDS: 60,
      GATEWAY_TIMEOUT_MS: 30_000,
      SHUTDOWN_TIMEOUT_SECONDS: 10,
      QUEUE_MAINTENANCE_INTERVAL_SECONDS: 10,
      QUEUE_POLL_INTERVAL_SECONDS: 1,
      QUEUE_POOL_SIZE: 10,
      POLL_SCHEDULE_SECONDS: [60, 300, 3600, 86400],
      DUNNING_RETRY_DAYS: [1, 3, 5, 7],
      DUNNING_FINAL_ACTION: 'SUSPEND',
      BILL_SUSPENDED_SUBSCRIPTIONS: false,
      BILLING_SWEEPS: true,
      LOST_CLAIM_REFUND_DAYS: 7,
      INBOX_BODY_RETENTION_DAYS: 90,
      INBOX_ROW_RETENTION_DAYS: 400,
      SETTLEMENT_SYNC_DAYS: 7,
      SETTLEMENT_PAYOUT_DELAY_DAYS: { stripe: 2, paypal: 0, authorizenet: 1, eway: 1, securepay: 1 },
      SETTLEMENT_MARGIN_DAYS: 3,
      SETTLEMENT_FEE_EXPECTATIONS: [],
      SETTLEMENT_FEE_TOLERANCE: 1,
      STRIPE_WEBHOOK_SECRET: [],
      STRIPE_WEBHOOK_TOLERANCE_SECONDS: 300,
      STRIPE_API_BASE: 'https://api.stripe.com',
      PAYPAL_API_BASE: 'https://api-m.sandbox.paypal.com',
      PAYPAL_WEBHOOK_VERIFICATION: 'offline',
      AUTHORIZENET_API_BASE: 'https://apitest.authorize.net',
      EWAY_API_BASE: 'https://api.sandbox.ewaypayments.com',
      SECUREPAY_API_BASE: 'https://payments-stest.npe.auspost.zone',
      SECUREPAY_AUTH_URL: 'https://welcome.api2.sandbox.auspost.com.au/oauth/token',
      SECUREPAY_WEBHOOKS: false,
    });
  });

  it('reads the environment passed in, not process.env', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://billhook:secret@db.internal:5432/billhook',
      PORT: '8080',
      BILLHOOK_ROLE: 'worker',
      BILLHOOK_ADMIN_KEY: 'bh_admin_0123456789abcdefghij',
      LOG_LEVEL: 'warn',
      WEBHOOK_RETRY_LIMIT: '0',
      STRIPE_SECRET_KEY: 'sk_test_123',
      STRIPE_API_BASE: 'http://localhost:12111',
    });
    expect(config).toMatchObject({
      DATABASE_URL: 'postgres://billhook:secret@db.internal:5432/billhook',
      PORT: 8080,
      BILLHOOK_ROLE: 'worker',
      BILLHOOK_ADMIN_KEY: 'bh_admin_0123456789abcdefghij',
      LOG_LEVEL: 'warn',
      WEBHOOK_RETRY_LIMIT: 0,
      STRIPE_SECRET_KEY: 'sk_test_123',
      STRIPE_API_BASE: 'http://localhost:12111',
    });
    expect(loadConfig({ DATABASE_URL: 'postgresql://h/d' }).DATABASE_URL).toBe('postgresql://h/d');
  });

  it('splits STRIPE_WEBHOOK_SECRET on commas, trimming spaces and dropping empty items', () => {
    expect(loadConfig({ STRIPE_WEBHOOK_SECRET: 'whsec_new' }).STRIPE_WEBHOOK_SECRET).toEqual(['whsec_new']);
    expect(
      loadConfig({ STRIPE_WEBHOOK_SECRET: ' whsec_new , whsec_old,,  whsec_older ,' }).STRIPE_WEBHOOK_SECRET,
    ).toEqual(['whsec_new', 'whsec_old', 'whsec_older']);
  });

  it('treats empty (or blank) optional strings as unset', () => {
    const config = loadConfig({
      DATABASE_URL: '',
      BILLHOOK_ADMIN_KEY: '  ',
      STRIPE_SECRET_KEY: '',
      STRIPE_WEBHOOK_SECRET: ' ',
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.BILLHOOK_ADMIN_KEY).toBeUndefined();
    expect(config.STRIPE_SECRET_KEY).toBeUndefined();
    expect(config.STRIPE_WEBHOOK_SECRET).toEqual([]);
    expect(config).toEqual(loadConfig({}));
  });

  it('reads the poll schedule and refuses a bad one', () => {
    expect(loadConfig({ POLL_SCHEDULE_SECONDS: '1, 2,3' }).POLL_SCHEDULE_SECONDS).toEqual([1, 2, 3]);
    expect(() => loadConfig({ POLL_SCHEDULE_SECONDS: '60,soon' })).toThrow(/POLL_SCHEDULE_SECONDS/);
    expect(() => loadConfig({ POLL_SCHEDULE_SECONDS: '60,-1' })).toThrow(/POLL_SCHEDULE_SECONDS/);
  });

  it('reads the dunning retry days and final action, and refuses bad ones', () => {
    expect(loadConfig({ DUNNING_RETRY_DAYS: '2, 4,8' }).DUNNING_RETRY_DAYS).toEqual([2, 4, 8]);
    expect(loadConfig({ DUNNING_FINAL_ACTION: 'CANCEL' }).DUNNING_FINAL_ACTION).toBe('CANCEL');
    for (const days of ['1,soon', '0,3', '3,1', '1,1', '1.5', '400']) {
      expect(() => loadConfig({ DUNNING_RETRY_DAYS: days }), days).toThrow(/DUNNING_RETRY_DAYS/);
    }
    expect(() => loadConfig({ DUNNING_FINAL_ACTION: 'DELETE' })).toThrow(/DUNNING_FINAL_ACTION/);
  });

  it('reads whether SUSPENDED subscriptions keep being billed (default: not), and refuses anything else', () => {
    expect(loadConfig({}).BILL_SUSPENDED_SUBSCRIPTIONS).toBe(false);
    expect(loadConfig({ BILL_SUSPENDED_SUBSCRIPTIONS: '1' }).BILL_SUSPENDED_SUBSCRIPTIONS).toBe(true);
    expect(loadConfig({ BILL_SUSPENDED_SUBSCRIPTIONS: 'false' }).BILL_SUSPENDED_SUBSCRIPTIONS).toBe(false);
    expect(() => loadConfig({ BILL_SUSPENDED_SUBSCRIPTIONS: 'yes' })).toThrow(/BILL_SUSPENDED_SUBSCRIPTIONS/);
  });

  // An empty variable (as a copied .env file has it) means unset: `PORT=` must not become port 0.
  it('treats an empty PORT as unset (default 3000)', () => {
    expect(loadConfig({ PORT: '' }).PORT).toBe(3000);
  });

  it('treats an empty WEBHOOK_RETRY_LIMIT as unset (default 8)', () => {
    expect(loadConfig({ WEBHOOK_RETRY_LIMIT: '' }).WEBHOOK_RETRY_LIMIT).toBe(8);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['BILLHOOK_ROLE', 'boss'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'not a url'],
    ['STRIPE_API_BASE', 'ftp://x'],
    ['LOG_LEVEL', 'verbose'],
    ['BILLHOOK_ADMIN_KEY', 'too-short'],
    ['WEBHOOK_RETRY_LIMIT', '51'],
    ['STRIPE_WEBHOOK_TOLERANCE_SECONDS', '0'],
    ['GATEWAY_TIMEOUT_MS', '99'],
    ['SHUTDOWN_TIMEOUT_SECONDS', '0'],
    ['SHUTDOWN_TIMEOUT_SECONDS', '2.5'],
  ])('refuses %s=%s with a ConfigError naming the variable', (name, value) => {
    const error = configError({ [name]: value });
    expect(error.name).toBe('ConfigError');
    expect(error.message).toMatch(new RegExp(`^invalid configuration:\\n  ${name}: `));
  });

  it('reads SHUTDOWN_TIMEOUT_SECONDS', () => {
    expect(loadConfig({ SHUTDOWN_TIMEOUT_SECONDS: '30' }).SHUTDOWN_TIMEOUT_SECONDS).toBe(30);
  });

  // The repository's PayPal test certificate has its private key next to it: with the live API it
  // would let anyone sign webhooks billhook trusts.
  it.each(['https://api-m.paypal.com', 'https://api.paypal.com', 'https://API-M.PAYPAL.COM/'])(
    'refuses PAYPAL_TEST_CERT_FILE with the live PayPal API %s',
    (base) => {
      const error = configError({ PAYPAL_API_BASE: base, PAYPAL_TEST_CERT_FILE: 'test.cert.pem' });
      expect(error.message).toMatch(
        /^invalid configuration:\n {2}PAYPAL_TEST_CERT_FILE: must not be set with PayPal's live API/,
      );
    },
  );

  it('accepts PAYPAL_TEST_CERT_FILE with the sandbox or a local API, and the live API without it', () => {
    for (const base of ['https://api-m.sandbox.paypal.com', 'http://127.0.0.1:9999']) {
      expect(
        loadConfig({ PAYPAL_API_BASE: base, PAYPAL_TEST_CERT_FILE: 'x.pem' }).PAYPAL_TEST_CERT_FILE,
      ).toBe('x.pem');
    }
    expect(loadConfig({ PAYPAL_API_BASE: 'https://api-m.paypal.com' }).PAYPAL_API_BASE).toBe(
      'https://api-m.paypal.com',
    );
  });

  it('names every bad variable, one per line', () => {
    const error = configError({ PORT: '70000', BILLHOOK_ROLE: 'boss', STRIPE_API_BASE: 'ftp://x' });
    const lines = error.message.split('\n').slice(1);
    expect(lines).toHaveLength(3);
    expect(lines.map((line) => line.trim().split(':')[0]).sort()).toEqual([
      'BILLHOOK_ROLE',
      'PORT',
      'STRIPE_API_BASE',
    ]);
    expect(error.message).toContain('PORT: Too big: expected number to be <=65535');
  });
});
