import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

interface GatewaySupport {
  gateway: string;
  accepted: boolean;
  exponent: number | null;
  step: number | null;
  rule: string | null;
  refusal: string | null;
  source: string;
}

describe('GET /v1/currencies: ISO 4217 with each gateway’s support (issue #28 item 6)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.stop();
  });

  const support = (currency: { gateways: GatewaySupport[] }, gateway: string) =>
    currency.gateways.find((g) => g.gateway === gateway)!;

  it('lists every currency at once with its exponent, name and symbol', async () => {
    const list = await app.api('GET', '/v1/currencies');
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ object: 'list', has_more: false });
    const byCode = new Map(list.body.data.map((c: { code: string }) => [c.code, c]));
    expect(byCode.size).toBeGreaterThan(150);
    expect(byCode.get('USD')).toMatchObject({
      id: 'USD',
      object: 'currency',
      exponent: 2,
      name: 'US Dollar',
      symbol: '$',
    });
    expect(byCode.get('JPY')).toMatchObject({ exponent: 0, symbol: '¥' });
    expect(byCode.get('KWD')).toMatchObject({ exponent: 3 });
    // The funds codes ICU leaves out are ISO 4217 all the same (money/currency.ts).
    expect(byCode.get('CLF')).toMatchObject({ exponent: 4 });
    const codes = list.body.data.map((c: { code: string }) => c.code);
    expect(codes).toEqual([...codes].sort());
  });

  it('says per gateway what its currency table says: the unit, the step, the rule or the refusal', async () => {
    const kwd = (await app.api('GET', '/v1/currencies/kwd')).body;
    // Stripe: thousandths whose last digit is 0 (docs.stripe.com/currencies#three-decimal).
    expect(support(kwd, 'stripe')).toMatchObject({
      accepted: true,
      exponent: 3,
      step: 10,
      source: 'https://docs.stripe.com/currencies',
    });
    expect(support(kwd, 'stripe').rule).toContain('multiple of 10');
    // PayPal takes 25 currencies, KWD not among them; SecurePay and Authorize.Net only two-decimal ones.
    for (const gateway of ['paypal', 'securepay', 'authorizenet']) {
      expect(support(kwd, gateway)).toMatchObject({ accepted: false, exponent: null, step: null });
      expect(support(kwd, gateway).refusal).toContain('does not take KWD');
    }
    // eWAY: the lowest denomination of every currency; the merchant facility decides (eway.io/api-v3).
    expect(support(kwd, 'eway')).toMatchObject({ accepted: true, exponent: 3, step: 1, rule: null });

    const mga = (await app.api('GET', '/v1/currencies/MGA')).body;
    expect(mga.exponent).toBe(2);
    // Stripe counts MGA in whole ariary: 100 minor units a step.
    expect(support(mga, 'stripe')).toMatchObject({ accepted: true, exponent: 0, step: 100 });
    const huf = (await app.api('GET', '/v1/currencies/HUF')).body;
    expect(support(huf, 'paypal')).toMatchObject({ accepted: true, exponent: 0, step: 100 });
    expect(support(huf, 'stripe')).toMatchObject({ accepted: true, exponent: 2, step: 1 });
  });

  it('answers 404 for a code that is not ISO 4217 and 422 for a query parameter it does not take', async () => {
    const missing = await app.api('GET', '/v1/currencies/XXY');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('currency_not_found');
    const paged = await app.api('GET', '/v1/currencies?page_size=20');
    expect(paged.status).toBe(422);
    expect(paged.body.error.code).toBe('unknown_parameter');
  });
});
