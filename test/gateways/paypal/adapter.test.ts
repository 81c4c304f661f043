import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/env.ts';
import { PAYPAL_CAPABILITIES } from '../../../src/gateways/paypal/capabilities.ts';
import { PaypalClient } from '../../../src/gateways/paypal/client.ts';
import { paypalAdapter } from '../../../src/gateways/paypal/index.ts';
import { PaypalWebhook } from '../../../src/gateways/paypal/webhook.ts';
import { TEST_CERT_FILE } from './fixtures.ts';

describe('paypalAdapter', () => {
  it('enables nothing without PayPal variables', () => {
    expect(paypalAdapter(loadConfig({}))).toEqual({
      name: 'paypal',
      capabilities: PAYPAL_CAPABILITIES,
      webhook: undefined,
      client: undefined,
    });
  });

  it('enables the webhook half with PAYPAL_WEBHOOK_ID, and the client half with the client id and secret', () => {
    const webhookOnly = paypalAdapter(loadConfig({ PAYPAL_WEBHOOK_ID: '8PT597110X687430LKGECATA' }));
    expect(webhookOnly.webhook).toBeInstanceOf(PaypalWebhook);
    expect(webhookOnly.client).toBeUndefined();
    const clientOnly = paypalAdapter(loadConfig({ PAYPAL_CLIENT_ID: 'id', PAYPAL_CLIENT_SECRET: 'secret' }));
    expect(clientOnly.client).toBeInstanceOf(PaypalClient);
    expect(clientOnly.webhook).toBeUndefined();
    expect(paypalAdapter(loadConfig({ PAYPAL_CLIENT_ID: 'id' })).client).toBeUndefined();
  });

  it('verifies through the API with PAYPAL_WEBHOOK_VERIFICATION=api, which needs the client credentials', () => {
    const env = { PAYPAL_WEBHOOK_ID: 'WH1', PAYPAL_WEBHOOK_VERIFICATION: 'api' };
    expect(() => paypalAdapter(loadConfig(env))).toThrow(
      /PAYPAL_WEBHOOK_VERIFICATION=api needs PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET/,
    );
    const adapter = paypalAdapter(loadConfig({ ...env, PAYPAL_CLIENT_ID: 'id', PAYPAL_CLIENT_SECRET: 's' }));
    expect(adapter.webhook).toBeInstanceOf(PaypalWebhook);
    expect(() => loadConfig({ PAYPAL_WEBHOOK_VERIFICATION: 'sometimes' })).toThrow(
      /PAYPAL_WEBHOOK_VERIFICATION/,
    );
  });

  it('reads PAYPAL_TEST_CERT_FILE at start and names it when it cannot', () => {
    const env = { PAYPAL_WEBHOOK_ID: 'WH1', PAYPAL_TEST_CERT_FILE: TEST_CERT_FILE };
    expect(paypalAdapter(loadConfig(env)).webhook).toBeInstanceOf(PaypalWebhook);
    expect(() =>
      paypalAdapter(loadConfig({ ...env, PAYPAL_TEST_CERT_FILE: '/nonexistent/cert.pem' })),
    ).toThrow(/PAYPAL_TEST_CERT_FILE: cannot read/);
    expect(() => paypalAdapter(loadConfig({ ...env, PAYPAL_TEST_CERT_FILE: import.meta.filename }))).toThrow(
      /PAYPAL_TEST_CERT_FILE holds no PEM certificate/,
    );
  });
});
