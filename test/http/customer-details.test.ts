import { randomUUID } from 'node:crypto';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, type TestApp } from '../support/app.ts';
import { actionsOf } from '../support/collection.ts';
import { intentEchoing, openInvoice } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';
import { stripeFixture } from '../support/stripe.ts';

const ADDRESS = {
  line1: '1 Smith St',
  line2: null,
  city: 'Mont Albert',
  state: 'Victoria',
  postal_code: '3145',
  country: 'AU',
};

/**
 * Customers as the seeds have them (#28 item 4): billing contact, address, tax id and exemption,
 * locale; a signup in one call; a payment method's token replaced.
 */
describe('customers: contact, address, tax and locale; signups; payment-method updates', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startOfflineTestApp();
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => stopOfflineTestApp(app));

  const db = () => app.runtime.db;

  it('sets contact, address, tax and locale on create, shows them on read, changes and clears them on update', async () => {
    const created = await app.api('POST', '/v1/customers', {
      email: 'accounts@bigco.net',
      name: 'Big Co',
      phone: '040000000',
      address: { ...ADDRESS, country: 'au' },
      tax_id: 'ABN 51 824 753 556',
      tax_exempt: true,
      locale: 'EN-au',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      phone: '040000000',
      address: ADDRESS,
      tax_id: 'ABN 51 824 753 556',
      tax_exempt: true,
      locale: 'en-AU',
      closed_at: null,
    });
    const row = await db()
      .selectFrom('customers')
      .selectAll()
      .where('id', '=', created.body.id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      address_line1: '1 Smith St',
      address_line2: null,
      address_city: 'Mont Albert',
      address_state: 'Victoria',
      address_postal_code: '3145',
      address_country: 'AU',
      tax_exempt: true,
      tax_id: 'ABN 51 824 753 556',
      locale: 'en-AU',
    });
    expect((await app.api('GET', `/v1/customers/${created.body.id}`)).body).toEqual(created.body);

    // The address is replaced whole; other fields one by one; null clears.
    const updated = await app.api('POST', `/v1/customers/${created.body.id}`, {
      address: { line1: '10 Downing St', city: 'London', postal_code: 'SW1A 2AA', country: 'GB' },
      tax_exempt: false,
      locale: null,
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      phone: '040000000',
      address: {
        line1: '10 Downing St',
        line2: null,
        city: 'London',
        state: null,
        postal_code: 'SW1A 2AA',
        country: 'GB',
      },
      tax_exempt: false,
      locale: null,
    });
    const log = await app.api('GET', `/v1/activities?resource=${created.body.id}`);
    expect(log.body.data[1].data).toEqual({
      tax_exempt: { from: true, to: false },
      locale: { from: 'en-AU', to: null },
      address_line1: { from: '1 Smith St', to: '10 Downing St' },
      address_city: { from: 'Mont Albert', to: 'London' },
      address_state: { from: 'Victoria', to: null },
      address_postal_code: { from: '3145', to: 'SW1A 2AA' },
      address_country: { from: 'AU', to: 'GB' },
    });
    const cleared = await app.api('POST', `/v1/customers/${created.body.id}`, { address: null, phone: null });
    expect([cleared.body.address, cleared.body.phone]).toEqual([null, null]);
    // The same body again changes and logs nothing.
    await app.api('POST', `/v1/customers/${created.body.id}`, { address: null, phone: null });
    expect(await actionsOf(app, created.body.id)).toEqual([
      'customer.created',
      'customer.updated',
      'customer.updated',
    ]);

    // A customer without any of them reads nulls and not exempt.
    const plain = await app.api('POST', '/v1/customers', { email: 'plain@example.com' });
    expect(plain.body).toMatchObject({
      phone: null,
      address: null,
      tax_id: null,
      tax_exempt: false,
      locale: null,
    });
  });

  it('refuses a country that is not an assigned ISO 3166-1 alpha-2 code, a malformed locale and unknown address keys (422, nothing stored)', async () => {
    const bad = async (body: Record<string, unknown>) => {
      const answer = await app.api('POST', '/v1/customers', { email: 'bad@example.com', ...body });
      expect(answer.status).toBe(422);
      return answer.body.error.fields;
    };
    for (const country of ['UK', 'EU', 'XK', 'ZZ', 'AUS', '12'])
      expect(Object.keys(await bad({ address: { country } }))).toEqual(['address.country']);
    expect(Object.keys(await bad({ locale: 'en_US' }))).toEqual(['locale']);
    expect(Object.keys(await bad({ address: { zip: '3145' } }))).toEqual(['address']);
    expect(Object.keys(await bad({ tax_exempt: 'yes' }))).toEqual(['tax_exempt']);
    expect(
      await db().selectFrom('customers').select('id').where('email', '=', 'bad@example.com').execute(),
    ).toEqual([]);
  });

  it('signs up a customer, their payment method and subscription in one call, idempotently; a refusal anywhere creates nothing', async () => {
    const plan = await insertPlan(db());
    const signup = {
      customer: {
        email: 'signup@example.com',
        name: 'Sign Up',
        address: { country: 'US', state: 'NY' },
        locale: 'en-US',
      },
      payment_method: {
        gateway: 'stripe',
        gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
        gateway_customer_id: 'cus_SRCIP043oBsNpV',
      },
      subscription: { plan, quantity: 2, metadata: { source: 'web' } },
    };
    const post = async (body: unknown, key: string) => {
      const response = await fetch(`${app.url}/v1/signups`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ADMIN_KEY}`,
          'content-type': 'application/json',
          'idempotency-key': key,
        },
        body: JSON.stringify(body),
      });
      return {
        status: response.status,
        replayed: response.headers.get('idempotent-replayed'),
        body: (await response.json()) as any,
      };
    };
    const key = randomUUID();
    const created = await post(signup, key);
    expect(created.status).toBe(201);
    const { customer, payment_method: method, subscription } = created.body;
    expect(created.body.object).toBe('signup');
    expect(customer).toMatchObject({
      email: 'signup@example.com',
      address: { country: 'US', state: 'NY' },
      locale: 'en-US',
    });
    expect(customer.balances).toEqual([{ currency: 'USD', balance: 2000 }]);
    expect(method).toMatchObject({ customer: customer.id, default: true, gateway: 'stripe' });
    expect(subscription).toMatchObject({
      customer: customer.id,
      payment_method: method.id,
      quantity: 2,
      status: 'ACTIVE',
    });
    const invoice = (await app.api('GET', `/v1/invoices/${subscription.latest_invoice}`)).body;
    expect([invoice.status, invoice.total, invoice.customer]).toEqual(['OPEN', 2000, customer.id]);
    const log = await app.api('GET', `/v1/activities?customer=${customer.id}&limit=100`);
    expect(log.body.data.map((a: { action: string }) => a.action)).toEqual(
      expect.arrayContaining([
        'customer.created',
        'payment_method.created',
        'subscription.created',
        'invoice.created',
      ]),
    );

    const replay = await post(signup, key);
    expect([replay.status, replay.replayed, replay.body.customer.id]).toEqual([201, 'true', customer.id]);
    const customers = () =>
      db().selectFrom('customers').select('id').where('email', '=', 'signup@example.com').execute();
    expect(await customers()).toHaveLength(1);

    // A refusal in the last part (an unknown coupon, an inactive plan) rolls back the first two.
    const count = async (table: 'customers' | 'payment_methods' | 'subscriptions' | 'invoices') =>
      Number((await db().selectFrom(table).select(db().fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const before = await Promise.all([
      count('customers'),
      count('payment_methods'),
      count('subscriptions'),
      count('invoices'),
    ]);
    const noCoupon = await post(
      { ...signup, customer: { email: 'rollback@example.com' }, subscription: { plan, coupon: 'NOPE' } },
      randomUUID(),
    );
    expect([noCoupon.status, Object.keys(noCoupon.body.error.fields ?? {})]).toEqual([422, ['coupon']]);
    const inactive = await insertPlan(db(), { active: false });
    const refused = await post(
      { ...signup, customer: { email: 'rollback@example.com' }, subscription: { plan: inactive } },
      randomUUID(),
    );
    expect([refused.status, refused.body.error.code]).toEqual([409, 'plan_inactive']);
    const taken = await post(
      { ...signup, customer: { email: 'rollback@example.com', external_id: 'crm-1' } },
      randomUUID(),
    );
    expect(taken.status).toBe(201);
    const again = await post(
      { ...signup, customer: { email: 'rollback2@example.com', external_id: 'crm-1' } },
      randomUUID(),
    );
    expect([again.status, again.body.error.code]).toEqual([409, 'external_id_taken']);
    const badAccount = await post(
      {
        ...signup,
        customer: { email: 'rollback@example.com' },
        payment_method: { ...signup.payment_method, gateway_account: 'gwa_nope' },
      },
      randomUUID(),
    );
    expect([badAccount.status, Object.keys(badAccount.body.error.fields)]).toEqual([
      422,
      ['gateway_account'],
    ]);
    const invalid = await post(
      { customer: { email: 'x@example.com' }, payment_method: signup.payment_method },
      randomUUID(),
    );
    expect([invalid.status, Object.keys(invalid.body.error.fields)]).toEqual([422, ['subscription']]);
    // Only the one that succeeded (crm-1) added rows.
    const after = await Promise.all([
      count('customers'),
      count('payment_methods'),
      count('subscriptions'),
      count('invoices'),
    ]);
    expect(after).toEqual(before.map((n) => n + 1));
    expect(
      await db().selectFrom('customers').select('id').where('email', '=', 'rollback2@example.com').execute(),
    ).toEqual([]);
  });

  it('replaces a payment method token (card details cleared, logged without the token); refused while a charge of it is in flight', async () => {
    const { method, invoice } = await openInvoice(app, { amount: 777 });
    await db()
      .updateTable('payment_methods')
      .set({ card_brand: 'visa', card_last4: '4242', card_exp_month: 8, card_exp_year: 2030 })
      .where('id', '=', method.id)
      .execute();
    expect((await app.api('GET', `/v1/payment-methods/${method.id}`)).body.card).toEqual({
      brand: 'visa',
      last4: '4242',
      exp_month: 8,
      exp_year: 2030,
    });
    const replaced = await app.api('POST', `/v1/payment-methods/${method.id}`, {
      gateway_token: 'pm_new_card',
      gateway_customer_id: 'cus_other',
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({
      gateway_token: 'pm_new_card',
      gateway_customer_id: 'cus_other',
      card: null,
    });
    const log = await app.api('GET', `/v1/activities?resource=${method.id}`);
    expect(log.body.data.at(-1)).toMatchObject({
      action: 'payment_method.updated',
      data: {
        gateway_token: 'replaced',
        gateway_customer_id: { from: 'cus_SRCIP043oBsNpV', to: 'cus_other' },
      },
    });
    expect(JSON.stringify(log.body.data)).not.toContain('pm_new_card');

    // A charge left unknown (Stripe answered 500) keeps its token: 409 charge_in_progress.
    nock('https://stripe.test')
      .post('/v1/payment_intents')
      .reply(500, { error: { type: 'api_error', message: 'boom' } });
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('unknown');
    const refused = await app.api('POST', `/v1/payment-methods/${method.id}`, { gateway_token: 'pm_third' });
    expect([refused.status, refused.body.error.code]).toEqual([409, 'charge_in_progress']);
    expect((await app.api('GET', `/v1/payment-methods/${method.id}`)).body.gateway_token).toBe('pm_new_card');
    // Other keys than these: 422.
    const gateway = await app.api('POST', `/v1/payment-methods/${method.id}`, { gateway: 'paypal' });
    expect(gateway.status).toBe(422);
  });

  it('shows the card brand, last four and expiry Stripe reports on a charge (expanded latest_charge)', async () => {
    const { method, invoice } = await openInvoice(app, { amount: 4620 });
    expect(method.card).toBeNull();
    // The real charge fixture (payment_method_details.card: visa 4242, 8/2030) as the expanded latest_charge.
    const charge = stripeFixture('api.charge.succeeded.openapi-fixture.json');
    const seen: URLSearchParams[] = [];
    nock('https://stripe.test')
      .post('/v1/payment_intents')
      .reply(async (request: Request) => {
        const params = new URLSearchParams(await request.text());
        seen.push(params);
        return [200, { ...intentEchoing(params, 'pi_card_details'), latest_charge: charge }];
      });
    const charged = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('succeeded');
    // stripe-node sends the list as `expand[0]=latest_charge`.
    expect(seen[0]?.get('expand[0]')).toBe('latest_charge');
    expect((await app.api('GET', `/v1/payment-methods/${method.id}`)).body.card).toEqual({
      brand: 'visa',
      last4: '4242',
      exp_month: 8,
      exp_year: 2030,
    });
    const row = await db()
      .selectFrom('payment_methods')
      .selectAll()
      .where('id', '=', method.id)
      .executeTakeFirstOrThrow();
    expect([row.card_brand, row.card_last4, row.card_exp_month, row.card_exp_year]).toEqual([
      'visa',
      '4242',
      8,
      2030,
    ]);
  });
});
