import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPlan, planAmount } from '../../src/billing/plans.ts';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf } from '../support/collection.ts';

describe('/v1/products and /v1/plans', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());

  const count = async (table: 'products' | 'plans') =>
    (await app.runtime.db.selectFrom(table).select('id').execute()).length;

  describe('products', () => {
    it('creates (201), reads, lists by active and updates a product, logging each change', async () => {
      const created = await app.api('POST', '/v1/products', {
        name: 'API access',
        description: 'Calls to the API',
        external_id: 'sku-api',
        metadata: { tier: 'gold' },
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        object: 'product',
        name: 'API access',
        description: 'Calls to the API',
        external_id: 'sku-api',
        active: true,
        metadata: { tier: 'gold' },
      });
      expect(created.body.id).toMatch(/^prod_/);
      const id = created.body.id;
      expect((await app.api('GET', `/v1/products/${id}`)).body).toEqual(created.body);

      const updated = await app.api('POST', `/v1/products/${id}`, {
        name: 'API',
        description: null,
        active: false,
      });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({
        name: 'API',
        description: null,
        active: false,
        external_id: 'sku-api',
      });
      // The same body again changes and logs nothing.
      expect((await app.api('POST', `/v1/products/${id}`, { name: 'API' })).status).toBe(200);
      expect(await actionsOf(app, id)).toEqual(['product.created', 'product.updated']);
      const log = await app.api('GET', `/v1/activities?resource=${id}`);
      expect(log.body.data[1].data).toEqual({
        name: { from: 'API access', to: 'API' },
        description: { from: 'Calls to the API', to: null },
        active: { from: true, to: false },
      });

      const other = (await app.api('POST', '/v1/products', { name: 'Seats' })).body;
      const inactive = await app.api('GET', '/v1/products?active=false');
      expect(inactive.body.data.map((p: { id: string }) => p.id)).toEqual([id]);
      const active = await app.api('GET', '/v1/products?active=true');
      expect(active.body.data.map((p: { id: string }) => p.id)).toContain(other.id);
      expect(active.body.data.map((p: { id: string }) => p.id)).not.toContain(id);
      expect((await app.api('GET', '/v1/products?active=maybe')).status).toBe(422);
    });

    it('answers 404 for an unknown product, 422 with field errors and 409 for a taken external_id, changing nothing', async () => {
      expect((await app.api('GET', '/v1/products/prod_nope')).status).toBe(404);
      expect((await app.api('POST', '/v1/products/prod_nope', { name: 'x' })).status).toBe(404);
      const before = await count('products');
      const bad = await app.api('POST', '/v1/products', { name: '', metadata: { k: 1 }, price: 5 });
      expect(bad.status).toBe(422);
      expect(Object.keys(bad.body.error.fields)).toEqual(expect.arrayContaining(['name', 'metadata.k']));
      await app.api('POST', '/v1/products', { name: 'Taken', external_id: 'sku-taken' });
      const taken = await app.api('POST', '/v1/products', { name: 'Again', external_id: 'sku-taken' });
      expect(taken.status).toBe(409);
      expect(taken.body.error.code).toBe('external_id_taken');
      expect(await count('products')).toBe(before + 1);

      const product = (await app.api('POST', '/v1/products', { name: 'Kept' })).body;
      const badUpdate = await app.api('POST', `/v1/products/${product.id}`, { active: 'yes', name: 7 });
      expect(badUpdate.status).toBe(422);
      expect(Object.keys(badUpdate.body.error.fields).sort()).toEqual(['active', 'name']);
      expect((await app.api('GET', `/v1/products/${product.id}`)).body).toEqual(product);
    });
  });

  describe('plans', () => {
    let productId: string;
    beforeAll(async () => {
      productId = (await app.api('POST', '/v1/products', { name: 'Platform' })).body.id;
    });

    const tiered = {
      model: 'TIERED',
      tiers: [
        { up_to: 5, unit_amount: 500, flat_amount: 1000 },
        { up_to: 10, unit_amount: 400 },
        { up_to: null, unit_amount: 300, flat_amount: 200 },
      ],
    };

    it('creates a plan with a price and metered prices, answered in the API shape, tax_percent as a string', async () => {
      const created = await app.api('POST', '/v1/plans', {
        product: productId,
        name: 'Team, monthly',
        currency: 'usd',
        interval: 'MONTH',
        price: tiered,
        metered: [
          { code: 'api_calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 2 } },
          {
            code: 'storage_gb',
            aggregation: 'MAX',
            price: {
              model: 'STAIRSTEP',
              steps: [
                { up_to: 10, flat_amount: 0 },
                { up_to: null, flat_amount: 5000 },
              ],
            },
          },
        ],
        trial_days: 14,
        tax_percent: '8.875',
        metadata: { team: 'yes' },
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        object: 'plan',
        product: productId,
        currency: 'USD',
        interval: 'MONTH',
        interval_count: 1,
        price: tiered,
        trial_days: 14,
        tax_percent: '8.875',
        active: true,
        metadata: { team: 'yes' },
      });
      expect(created.body.metered[1].price.steps[1]).toEqual({ up_to: null, flat_amount: 5000 });
      expect(created.body.id).toMatch(/^plan_/);
      expect((await app.api('GET', `/v1/plans/${created.body.id}`)).body).toEqual(created.body);

      // Stored as JSON integers, ppm in its column; planOf / planAmount for the subscription engine.
      const row = await app.runtime.db
        .selectFrom('plans')
        .selectAll()
        .where('id', '=', created.body.id)
        .executeTakeFirstOrThrow();
      expect(row.price).toEqual(tiered);
      expect(row.tax_rate_ppm).toBe(88_750);
      const plan = await getPlan(app.runtime.db, created.body.id);
      expect(plan.metered[0]).toEqual({
        code: 'api_calls',
        aggregation: 'SUM',
        price: { model: 'PER_UNIT', unitAmount: 2n },
      });
      expect(planAmount(plan, 12n)).toBe(6300n); // 5×500 + 1000 + 5×400 + 2×300 + 200
      expect(await actionsOf(app, created.body.id)).toEqual(['plan.created']);
    });

    it('takes tax_percent as a JSON number with decimals exactly (never a float), and 1e1 is refused', async () => {
      const body = (tax: string) =>
        `{"product":"${productId}","name":"Tax","currency":"USD","interval":"MONTH","price":{"model":"FLAT_FEE","amount":100},"tax_percent":${tax}}`;
      const post = (tax: string) =>
        fetch(`${app.url}/v1/plans`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
          body: body(tax),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
      for (const [tax, percent] of [
        ['8.875', '8.875'],
        ['7.2500', '7.25'],
        ['0.0001', '0.0001'],
        ['100.0', '100'],
      ]) {
        const answer = await post(tax!);
        expect(answer.status, tax).toBe(201);
        expect(answer.body.tax_percent).toBe(percent);
      }
      for (const tax of ['1e1', '100.0001', '8.12345']) {
        const refused = await post(tax);
        expect(refused.status, tax).toBe(422);
        expect(refused.body.error.fields).toHaveProperty('tax_percent');
      }
    });

    it('accepts every price model and a whole-number tax_percent', async () => {
      const prices = [
        { model: 'FLAT_FEE', amount: 2500 },
        { model: 'PER_UNIT', unit_amount: 199 },
        { ...tiered, model: 'VOLUME' },
        {
          model: 'STAIRSTEP',
          steps: [
            { up_to: 10, flat_amount: 1000 },
            { up_to: null, flat_amount: 4000 },
          ],
        },
      ];
      for (const price of prices) {
        const answer = await app.api('POST', '/v1/plans', {
          product: productId,
          name: price.model,
          currency: 'EUR',
          interval: 'YEAR',
          interval_count: 2,
          price,
          tax_percent: 20,
        });
        expect(answer.status, price.model).toBe(201);
        expect(answer.body).toMatchObject({ price, tax_percent: '20', interval_count: 2 });
      }
    });

    it.each([
      [
        'a tier bound not ascending',
        {
          price: {
            model: 'TIERED',
            tiers: [
              { up_to: 5, unit_amount: 1 },
              { up_to: 5, unit_amount: 1 },
              { up_to: null, unit_amount: 1 },
            ],
          },
        },
        ['price.tiers.1.up_to'],
      ],
      [
        'a last tier that is not infinite',
        { price: { model: 'VOLUME', tiers: [{ up_to: 5, unit_amount: 1 }] } },
        ['price.tiers.0.up_to'],
      ],
      ['a float amount', { price: { model: 'PER_UNIT', unit_amount: 1.5 } }, ['price.unit_amount']],
      ['an amount as a string', { price: { model: 'FLAT_FEE', amount: '100' } }, ['price.amount']],
      ['an unknown model', { price: { model: 'FREE' } }, ['price.model']],
      ['camelCase fields', { price: { model: 'PER_UNIT', unitAmount: 1 } }, ['price.unit_amount']],
      [
        'a FLAT_FEE metered price and a duplicate code',
        {
          metered: [
            { code: 'calls', aggregation: 'SUM', price: { model: 'PER_UNIT', unit_amount: 1 } },
            { code: 'calls', aggregation: 'COUNT', price: { model: 'FLAT_FEE', amount: 1 } },
          ],
        },
        ['metered.1.code', 'metered.1.price.model'],
      ],
      [
        'a bad aggregation and code',
        { metered: [{ code: 'a b', aggregation: 'AVG', price: { model: 'PER_UNIT', unit_amount: 1 } }] },
        ['metered.0.code', 'metered.0.aggregation'],
      ],
      [
        'a bad interval and count',
        { interval: 'FORTNIGHT', interval_count: 0 },
        ['interval', 'interval_count'],
      ],
      ['a tax over 100% and too many decimals', { tax_percent: '100.5' }, ['tax_percent']],
      ['tax_percent with 5 decimals', { tax_percent: '8.12345' }, ['tax_percent']],
      ['tax_percent as a number with 5 decimals', { tax_percent: 8.12345 }, ['tax_percent']],
      ['a negative tax_percent', { tax_percent: -1 }, ['tax_percent']],
      ['trial days beyond 730', { trial_days: 731 }, ['trial_days']],
      ['an unknown currency', { currency: 'XYZ' }, ['currency']],
    ])('refuses %s with 422 and field errors, storing nothing', async (_what, override, fields) => {
      const before = await count('plans');
      const answer = await app.api('POST', '/v1/plans', {
        product: productId,
        name: 'Bad',
        currency: 'USD',
        interval: 'MONTH',
        price: { model: 'FLAT_FEE', amount: 100 },
        ...override,
      });
      expect(answer.status).toBe(422);
      expect(Object.keys(answer.body.error.fields)).toEqual(expect.arrayContaining(fields));
      expect(await count('plans')).toBe(before);
    });

    it('answers 404 for an unknown product and 409 for an inactive one', async () => {
      const body = { name: 'P', currency: 'USD', interval: 'MONTH', price: { model: 'FLAT_FEE', amount: 1 } };
      const missing = await app.api('POST', '/v1/plans', { ...body, product: 'prod_nope' });
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('product_not_found');
      const retired = (await app.api('POST', '/v1/products', { name: 'Retired' })).body;
      await app.api('POST', `/v1/products/${retired.id}`, { active: false });
      const before = await count('plans');
      const inactive = await app.api('POST', '/v1/plans', { ...body, product: retired.id });
      expect(inactive.status).toBe(409);
      expect(inactive.body.error.code).toBe('product_inactive');
      expect(await count('plans')).toBe(before);
    });

    it('updates name, active and metadata only: a price never changes (422), and lists by product and active', async () => {
      const product = (await app.api('POST', '/v1/products', { name: 'Listed' })).body;
      const base = {
        product: product.id,
        currency: 'USD',
        interval: 'WEEK',
        price: { model: 'FLAT_FEE', amount: 700 },
      };
      const a = (await app.api('POST', '/v1/plans', { ...base, name: 'A' })).body;
      const b = (await app.api('POST', '/v1/plans', { ...base, name: 'B' })).body;

      const renamed = await app.api('POST', `/v1/plans/${a.id}`, {
        name: 'A2',
        active: false,
        metadata: { x: 'y' },
      });
      expect(renamed.status).toBe(200);
      expect(renamed.body).toMatchObject({
        name: 'A2',
        active: false,
        metadata: { x: 'y' },
        price: base.price,
      });
      const refused = await app.api('POST', `/v1/plans/${b.id}`, {
        name: 'B2',
        price: { model: 'FLAT_FEE', amount: 1 },
        tax_percent: '5',
      });
      expect(refused.status).toBe(422);
      expect(refused.body.error.fields.price).toMatch(/create a new plan/);
      expect(refused.body.error.fields).toHaveProperty('tax_percent');
      expect((await app.api('GET', `/v1/plans/${b.id}`)).body).toEqual(b);
      expect(await actionsOf(app, a.id)).toEqual(['plan.created', 'plan.updated']);
      expect(await actionsOf(app, b.id)).toEqual(['plan.created']);
      expect((await app.api('POST', '/v1/plans/plan_nope', { name: 'x' })).status).toBe(404);
      expect((await app.api('GET', '/v1/plans/plan_nope')).status).toBe(404);

      const ids = (query: string) =>
        app.api('GET', `/v1/plans?${query}`).then((r) => r.body.data.map((p: { id: string }) => p.id));
      expect(await ids(`product=${product.id}`)).toEqual([b.id, a.id]);
      expect(await ids(`product=${product.id}&active=true`)).toEqual([b.id]);
      expect(await ids(`product=${product.id}&active=false&sort=created`)).toEqual([a.id]);
      const page = await app.api('GET', `/v1/plans?product=${product.id}&limit=1`);
      expect(page.body).toMatchObject({ has_more: true });
    });
  });
});
