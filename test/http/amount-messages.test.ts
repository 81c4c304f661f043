import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * A fresh clone's walk: `{"amount": -1}` to a refund, or a line of -5, was refused (422, nothing
 * changed) as "must be an integer amount in minor units" — it is an integer; and 10^16 as "(no
 * decimals)"; 5.5 and "500" now say what a JSON amount must be. Each amount field now says what is wrong with the value sent.
 */
describe('amounts refused with the message that fits the value', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());

  const invoices = async () =>
    Number(
      (
        await app.runtime.db
          .selectFrom('invoices')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('names a negative amount, one above 10^15, a fraction and a string, and creates nothing', async () => {
    const customer = await app.api('POST', '/v1/customers', { email: 'amounts@example.com' });
    const before = await invoices();
    const cases: [unknown, string][] = [
      [-5, 'must not be negative'],
      [10_000_000_000_000_000, 'must be at most 1000000000000000 (10^15) minor units'],
      // The body parser hands a fraction over as its source text (json-input.ts): refused as a string is.
      [5.5, 'must be a JSON integer amount in minor units (no decimals, not a string)'],
      ['500', 'must be a JSON integer amount in minor units (no decimals, not a string)'],
    ];
    for (const [amount, message] of cases) {
      const answer = await app.api('POST', '/v1/invoices', {
        customer: customer.body.id,
        currency: 'usd',
        lines: [{ description: 'x', amount }],
      });
      expect([amount, answer.status, answer.body.error.fields]).toEqual([
        amount,
        422,
        { 'lines.0.amount': message },
      ]);
    }
    const plan = await app.api('POST', '/v1/products', { name: 'p' });
    const refused = await app.api('POST', '/v1/plans', {
      product: plan.body.id,
      name: 'neg',
      currency: 'usd',
      interval: 'MONTH',
      price: { model: 'PER_UNIT', unit_amount: -1500 },
    });
    expect([refused.status, refused.body.error.fields]).toEqual([
      422,
      { 'price.unit_amount': 'must not be negative' },
    ]);
    expect(await invoices()).toBe(before);
  });
});
