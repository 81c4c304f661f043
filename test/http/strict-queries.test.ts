import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/db/ids.ts';
import { openApiDocument } from '../../src/http/api/openapi.ts';
import type { TestApp } from '../support/app.ts';
import { customerWith } from '../support/collection.ts';
import { openInvoice, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { startOfflineTestApp, stopOfflineTestApp } from '../support/offline.ts';
import { insertPlan } from '../support/plans.ts';

interface Parameter {
  name: string;
  in: string;
  schema: { type?: string; enum?: string[] };
}

/** Every /v1 operation of the served document: method, path and parameters (new routes join on their own). */
function documentedOperations(): { method: string; path: string; query: Parameter[] }[] {
  const paths = openApiDocument().paths as Record<string, Record<string, { parameters?: Parameter[] }>>;
  const v1 = Object.entries(paths).filter(([path]) => path.startsWith('/v1/'));
  return v1.flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      method,
      path,
      query: (op.parameters ?? []).filter((p) => p.in === 'query'),
    })),
  );
}

const ids = (page: { data: { id: string }[] }) => page.data.map((x) => x.id).sort();

describe('strict queries on /v1 (#26 item 4)', () => {
  let app: TestApp;
  beforeAll(async () => {
    // A key for the webhook endpoints' secrets (a nested list needs one endpoint).
    app = await startOfflineTestApp({ BILLHOOK_SECRET_KEY: randomBytes(32).toString('base64') });
  });
  afterAll(() => stopOfflineTestApp(app));

  it('answers 422 unknown_parameter on every documented operation for a parameter it does not take', async () => {
    const operations = documentedOperations();
    expect(operations.length).toBeGreaterThan(60);
    for (const { method, path, query } of operations) {
      const url = `${path.replaceAll(/\{\w+\}/g, 'x_unknown')}?not_a_parameter=1`;
      const answer = await app.api(method.toUpperCase(), url, method === 'post' ? {} : undefined);
      expect(answer.status, `${method} ${path}`).toBe(422);
      expect(answer.body.error.code, `${method} ${path}`).toBe('unknown_parameter');
      expect(answer.body.error.fields.not_a_parameter, `${method} ${path}`).toMatch(
        query.length ? `takes ${query.map((p) => p.name).join(', ')}` : 'takes no query parameters',
      );
      // A documented parameter is never refused as unknown (its value may still be refused).
      for (const parameter of method === 'get' ? query : []) {
        const named = await app.api('GET', `${path.replaceAll(/\{\w+\}/g, 'x_unknown')}?${parameter.name}=1`);
        expect(named.body?.error?.code, `${path} ${parameter.name}`).not.toBe('unknown_parameter');
      }
    }
  });

  it('names each unknown parameter, and a filter a list lacks is refused instead of ignored', async () => {
    const answer = await app.api('GET', '/v1/refunds?payment_intent=pi_1&charge=ch_1&limit=5');
    expect(answer.status).toBe(422);
    expect(answer.body.error.message).toBe('unknown query parameter: payment_intent, charge');
    expect(Object.keys(answer.body.error.fields)).toEqual(['payment_intent', 'charge']);
    expect((await app.api('GET', '/v1/disputes?charge=ch_1')).body.error.code).toBe('unknown_parameter');
    // `expand` only where it works (invoices): refused elsewhere.
    expect((await app.api('GET', '/v1/subscriptions?expand=customer')).body.error.code).toBe(
      'unknown_parameter',
    );
    // The same list without the unknown parameters answers.
    expect((await app.api('GET', '/v1/refunds?limit=5')).status).toBe(200);
  });

  it('lists invoices of one subscription exactly, with expand on the list and the read', async () => {
    const plan = await insertPlan(app.runtime.db, { currency: 'EUR' });
    const customer = (await customerWith(app)).customer.id;
    const subscriptions: string[] = [];
    for (let i = 0; i < 2; i++) {
      const created = await app.api('POST', '/v1/subscriptions', { customer, plan });
      expect(created.status).toBe(201);
      subscriptions.push(created.body.id);
    }
    const all = await app.api('GET', `/v1/invoices?customer=${customer}&limit=100`);
    for (const subscription of subscriptions) {
      const expected = all.body.data
        .filter((i: { subscription: string | null }) => i.subscription === subscription)
        .map((i: { id: string }) => i.id)
        .sort();
      expect(expected.length).toBeGreaterThan(0);
      const page = await app.api('GET', `/v1/invoices?subscription=${subscription}&expand=customer`);
      expect(page.status).toBe(200);
      expect(ids(page.body)).toEqual(expected);
      expect(page.body.data[0].customer).toMatchObject({ id: customer, object: 'customer' });
      const one = await app.api('GET', `/v1/invoices/${expected[0]}?expand=transactions`);
      expect(one.body.transactions).toEqual([]);
    }
    expect((await app.api('GET', '/v1/invoices?subscription=sub_nope')).body.data).toEqual([]);
    expect((await app.api('GET', `/v1/invoices/${all.body.data[0].id}?limit=1`)).body.error.code).toBe(
      'unknown_parameter',
    );
  });

  it('lists transactions of one invoice exactly', async () => {
    const charged: { invoice: string; transaction: string }[] = [];
    for (let i = 0; i < 2; i++) {
      const { invoice } = await openInvoice(app);
      stripeChargeSucceeds();
      const answer = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
      expect(answer.status).toBe(200);
      charged.push({ invoice: invoice.id, transaction: answer.body.transaction.id });
    }
    for (const { invoice, transaction } of charged) {
      const page = await app.api('GET', `/v1/transactions?invoice=${invoice}`);
      expect(page.status).toBe(200);
      expect(ids(page.body)).toEqual([transaction]);
      expect(page.body.data[0].invoice).toBe(invoice);
    }
    expect((await app.api('GET', '/v1/transactions?invoice=inv_nope')).body.data).toEqual([]);
  });

  it('lists subscriptions by plan and by product, their payments by subscription, and customers by country', async () => {
    const planA = await insertPlan(app.runtime.db, { currency: 'EUR' });
    const planB = await insertPlan(app.runtime.db, { currency: 'EUR' });
    const { customer, method } = await customerWith(app, { stripe: true });
    const subscribe = async (plan: string) =>
      (
        await app.api('POST', '/v1/subscriptions', {
          customer: customer.id,
          plan,
          payment_method: method!.id,
        })
      ).body.id as string;
    const [a, b] = [await subscribe(planA), await subscribe(planB)];
    expect(ids((await app.api('GET', `/v1/subscriptions?plan=${planA}`)).body)).toEqual([a]);
    const productB = (
      await app.runtime.db
        .selectFrom('plans')
        .select('product_id')
        .where('id', '=', planB)
        .executeTakeFirstOrThrow()
    ).product_id;
    expect(ids((await app.api('GET', `/v1/subscriptions?product=${productB}`)).body)).toEqual([b]);

    stripeChargeSucceeds();
    const settled = await app.api('POST', `/v1/subscriptions/${a}/settle`);
    const paid = settled.body.invoices[0].transaction.id as string;
    expect(ids((await app.api('GET', `/v1/transactions?subscription=${a}`)).body)).toEqual([paid]);
    expect((await app.api('GET', `/v1/transactions?subscription=${b}`)).body.data).toEqual([]);

    const inNz = await app.api('POST', '/v1/customers', {
      email: 'kiri@example.com',
      address: { country: 'nz' },
    });
    expect(inNz.status).toBe(201);
    expect(ids((await app.api('GET', '/v1/customers?country=NZ')).body)).toEqual([inNz.body.id]);
    expect(ids((await app.api('GET', '/v1/customers?country=nz')).body)).toEqual([inNz.body.id]);
    const bad = await app.api('GET', '/v1/customers?country=NZL');
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields).toHaveProperty('country');
  });

  it('lists inbox events received in [created_gte, created_lt)', async () => {
    const day = (n: number) => new Date(`2026-03-0${n}T12:00:00Z`);
    const rows = [1, 2, 3].map((n) => ({
      id: newId('evt'),
      gateway: 'stripe' as const,
      gateway_event_id: `evt_gw_strict_${n}`,
      event_type: 'payment_intent.succeeded',
      body: '{}',
      status: 'processed' as const,
      outcome: 'applied',
      received_at: day(n),
    }));
    await app.runtime.db.insertInto('inbox').values(rows).execute();
    const page = await app.api(
      'GET',
      '/v1/events?created_gte=2026-03-02T12:00:00Z&created_lt=2026-03-03T12:00:00Z&limit=100',
    );
    expect(page.status).toBe(200);
    expect(ids(page.body)).toEqual([rows[1]!.id]);
    const from = await app.api(
      'GET',
      '/v1/events?created_gte=2026-03-02T12:00:00Z&created_lt=2026-04-01T00:00:00Z',
    );
    expect(ids(from.body)).toEqual([rows[1]!.id, rows[2]!.id].sort());
  });

  it('lists inbox events about one customer: naming their transaction, refund or dispute at that gateway', async () => {
    const charged: { customer: string; invoice: string; intent: string; transaction: string }[] = [];
    for (const intent of ['pi_strict_customer_a', 'pi_strict_customer_b']) {
      const { customer, invoice } = await openInvoice(app);
      stripeChargeSucceeds(intent);
      const answer = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
      expect(answer.status).toBe(200);
      charged.push({
        customer: customer.id,
        invoice: invoice.id,
        intent,
        transaction: answer.body.transaction.id,
      });
    }
    const [a, b] = charged as [(typeof charged)[0], (typeof charged)[0]];
    stripeRefundSucceeds('re_strict_customer_a');
    expect((await app.api('POST', `/v1/invoices/${a.invoice}/refund`, { amount: 100 })).status).toBe(201);
    await app.runtime.db
      .insertInto('disputes')
      .values({
        id: newId('dp'),
        transaction_id: b.transaction,
        gateway: 'stripe',
        gateway_dispute_id: 'dp_strict_customer_b',
        amount: 4620n,
        currency: 'EUR',
        status: 'open',
        reason: 'fraudulent',
      })
      .execute();
    const event = (ids: Record<string, string>) => ({
      type: 'payment.succeeded',
      amount: '4620',
      currency: 'EUR',
      occurredAt: '2026-03-01T00:00:00Z',
      ...ids,
    });
    const delivery = (n: number, events: unknown[] | null, gateway: 'stripe' | 'paypal' = 'stripe') => ({
      id: newId('evt'),
      gateway,
      gateway_event_id: `evt_gw_customer_${n}`,
      event_type: 'payment_intent.succeeded',
      body: '{}',
      status: events ? ('processed' as const) : ('received' as const),
      outcome: events ? 'applied' : null,
      events: (events ? JSON.stringify(events) : null) as never,
    });
    const rows = [
      delivery(1, [event({ gatewayTransactionId: a.intent })]),
      delivery(2, [event({ type: 'refund.succeeded', gatewayRefundId: 're_strict_customer_a' })]),
      delivery(3, [event({ gatewayTransactionId: 'pi_unknown' }), event({ gatewayTransactionId: b.intent })]),
      delivery(6, [event({ type: 'dispute.opened', gatewayDisputeId: 'dp_strict_customer_b' })]),
      // Not processed yet: about nobody known.
      delivery(4, null),
      // The same id at another gateway is another payment.
      delivery(5, [event({ gatewayTransactionId: a.intent })], 'paypal'),
    ];
    await app.runtime.db.insertInto('inbox').values(rows).execute();
    const about = async (customer: string) =>
      ids((await app.api('GET', `/v1/events?customer=${customer}&limit=100`)).body);
    expect(await about(a.customer)).toEqual([rows[0]!.id, rows[1]!.id].sort());
    expect(await about(b.customer)).toEqual([rows[2]!.id, rows[3]!.id].sort());
    expect(await about('cus_nope')).toEqual([]);
    const withStatus = await app.api('GET', `/v1/events?customer=${a.customer}&status=received`);
    expect(withStatus.body.data).toEqual([]);
  });

  it('lists the refunds and disputes of one customer (GET /v1/refunds?customer=, /v1/disputes?customer=)', async () => {
    const charged: { customer: string; invoice: string; transaction: string }[] = [];
    for (const intent of ['pi_strict_refunds_a', 'pi_strict_refunds_b']) {
      const { customer, invoice } = await openInvoice(app);
      stripeChargeSucceeds(intent);
      const answer = await app.api('POST', `/v1/invoices/${invoice.id}/charge`, {});
      expect(answer.status).toBe(200);
      charged.push({ customer: customer.id, invoice: invoice.id, transaction: answer.body.transaction.id });
    }
    const [a, b] = charged as [(typeof charged)[0], (typeof charged)[0]];
    stripeRefundSucceeds('re_strict_refunds_a');
    const refund = await app.api('POST', `/v1/invoices/${a.invoice}/refund`, { amount: 100 });
    expect(refund.status).toBe(201);
    const dispute = newId('dp');
    await app.runtime.db
      .insertInto('disputes')
      .values({
        id: dispute,
        transaction_id: b.transaction,
        gateway: 'stripe',
        gateway_dispute_id: 'dp_strict_refunds_b',
        amount: 4620n,
        currency: 'EUR',
        status: 'open',
        reason: 'fraudulent',
      })
      .execute();
    const list = async (path: string) => {
      const answer = await app.api('GET', path);
      expect(answer.status).toBe(200);
      return ids(answer.body);
    };
    expect(await list(`/v1/refunds?customer=${a.customer}&limit=100`)).toEqual([refund.body.id]);
    expect(await list(`/v1/refunds?customer=${b.customer}&limit=100`)).toEqual([]);
    expect(await list(`/v1/disputes?customer=${b.customer}&limit=100`)).toEqual([dispute]);
    expect(await list(`/v1/disputes?customer=${a.customer}&limit=100`)).toEqual([]);
    expect(await list(`/v1/refunds?customer=${a.customer}&status=failed`)).toEqual([]);
  });

  it("refuses a status a list's rows never have (invoices' status=paid: PAID) instead of answering an empty page", async () => {
    const { invoice } = await openInvoice(app, { amount: 2500 });
    const open = await app.api('GET', '/v1/invoices?status=OPEN&limit=100');
    expect(open.body.data.map((i: { id: string }) => i.id)).toContain(invoice.id);
    // Before: 200 with no invoice, as if EUR 25.00 were owed by nobody.
    const lower = await app.api('GET', '/v1/invoices?status=open&limit=100');
    expect(lower.status).toBe(422);
    expect(lower.body.error.fields.status).toContain('OPEN');
    for (const [path, wrong] of [
      ['/v1/transactions', 'SUCCEEDED'],
      ['/v1/refunds', 'refunded'],
      ['/v1/disputes', 'needs_response'],
      ['/v1/events', 'failed'],
      ['/v1/reconciliation-exceptions', 'closed'],
      ['/v1/credit-notes', 'issued'],
      ['/v1/subscriptions', 'active'],
    ] as const) {
      const answer = await app.api('GET', `${path}?status=${wrong}`);
      expect([path, answer.status, answer.body.error?.code]).toEqual([path, 422, 'validation_failed']);
      expect(answer.body.error.fields, path).toHaveProperty('status');
    }
  });

  it('lists activities recorded in [created_gte, created_lt), with the other filters', async () => {
    // The audit log is append-only: bound the range by the times three customers' creations got.
    const customers: string[] = [];
    const times: Date[] = [];
    for (let n = 1; n <= 3; n++) {
      const created = await app.api('POST', '/v1/customers', { email: `range${n}@example.com` });
      customers.push(created.body.id);
      const row = await app.runtime.db
        .selectFrom('activities')
        .select('created_at')
        .where('resource_id', '=', created.body.id)
        .executeTakeFirstOrThrow();
      times.push(new Date(row.created_at));
    }
    const [from, to] = [times[1]!, times[2]!];
    const page = await app.api(
      'GET',
      `/v1/activities?created_gte=${from.toISOString()}&created_lt=${to.toISOString()}&limit=100`,
    );
    expect(page.status).toBe(200);
    const expected = await app.runtime.db
      .selectFrom('activities')
      .select('id')
      .where('created_at', '>=', from)
      .where('created_at', '<', to)
      .orderBy('sequence')
      .execute();
    expect(page.body.data.map((a: { id: string }) => a.id)).toEqual(expected.map((a) => a.id));
    const resources = page.body.data.map((a: { resource: string }) => a.resource);
    expect(resources).toContain(customers[1]);
    expect(resources).not.toContain(customers[2]);
    const one = await app.api(
      'GET',
      `/v1/activities?created_gte=${from.toISOString()}&resource=${customers[2]}`,
    );
    expect(one.body.data.map((a: { resource: string }) => a.resource)).toEqual([customers[2]]);
    const none = await app.api(
      'GET',
      `/v1/activities?created_lt=${from.toISOString()}&resource=${customers[2]}`,
    );
    expect(none.body.data).toEqual([]);
    const bad = await app.api('GET', '/v1/activities?created_gte=yesterday');
    expect(bad.status).toBe(422);
    expect(Object.keys(bad.body.error.fields)).toEqual(['created_gte']);
  });

  it('applies every documented filter of every list: a value no row has empties a list that has rows', async () => {
    // Values of the right shape that match nothing (a filter naming a missing customer or
    // subscription may also answer 404, as the usage lists do).
    const nothing: Record<string, string> = {
      status: 'NO_SUCH_STATUS',
      customer: 'cus_zzzz',
      subscription: 'sub_zzzz',
      invoice: 'inv_zzzz',
      refund: 're_zzzz',
      payout: 'pyo_zzzz',
      product: 'prod_zzzz',
      plan: 'plan_zzzz',
      country: 'ZZ',
      gateway_account: 'gwa_zzzz',
      email: 'nobody@example.com',
      external_id: 'no-such-external-id',
      resource: 'zz_none',
      code: 'no.such.code',
      currency: 'CHF',
      created_gte: '2100-01-01T00:00:00Z',
      created_lt: '2000-01-01T00:00:00Z',
      arrival_gte: '2100-01-01T00:00:00Z',
      arrival_lt: '2000-01-01T00:00:00Z',
      active: 'false',
      // Every row these tests make is Stripe's.
      gateway: 'securepay',
    };
    const lists = documentedOperations().filter(
      (op) => op.method === 'get' && !op.path.includes('{') && op.query.some((p) => p.name === 'limit'),
    );
    let exercised = 0;
    for (const { path, query } of lists) {
      const all = await app.api('GET', `${path}?limit=100`);
      expect(all.status, path).toBe(200);
      for (const { name, schema } of query) {
        if (!(name in nothing)) continue;
        // An enumerated filter whose values all may match (payouts' status) must answer, at least.
        const free = schema.enum !== undefined && !schema.enum.includes(nothing[name]!);
        const value = free ? schema.enum!.at(-1) : nothing[name];
        const filtered = await app.api('GET', `${path}?limit=100&${name}=${value}`);
        if (filtered.status === 404) continue;
        expect(filtered.status, `${path} ${name}`).toBe(200);
        if (free) continue;
        // (Products and plans made here are all active: `active=false` matches none of them.)
        expect(filtered.body.data, `${path} ${name}`).toEqual([]);
        if (all.body.data.length > 0) exercised++;
      }
    }
    expect(exercised).toBeGreaterThan(20);
  });

  it('answers 422 resource_missing for a starting_after naming no row, on every list with an id cursor', async () => {
    const lists = documentedOperations().filter(
      (op) =>
        op.method === 'get' &&
        op.query.some((p) => p.name === 'starting_after' && p.schema.type === 'string'),
    );
    expect(lists.length).toBeGreaterThan(15);
    // A list under a resource (`{id}`) reads an existing one's: a missing parent is a 404 first.
    const parents: Record<string, () => Promise<string>> = {
      '/v1/webhook-endpoints/{id}/deliveries': async () => {
        const created = await app.api('POST', '/v1/webhook-endpoints', {
          url: 'https://example.com/billhook',
          enabled_events: ['invoice.paid'],
        });
        expect(created.status).toBe(201);
        return created.body.id;
      },
    };
    for (const { path } of lists) {
      if (path.includes('{')) expect(parents[path], `a parent for ${path}`).toBeDefined();
      const parent = path.includes('{') ? await parents[path]!() : '';
      const answer = await app.api('GET', `${path.replace(/\{\w+\}/, parent)}?starting_after=zz_nope`);
      expect(answer.status, path).toBe(422);
      expect(answer.body.error.code, path).toBe('resource_missing');
      expect(answer.body.error.fields.starting_after, path).toMatch(/zz_nope$/);
    }
    // A cursor naming a row of the list (even one another filter leaves out) pages on.
    const { customer } = await openInvoice(app);
    const page = await app.api('GET', `/v1/customers?starting_after=${customer.id}&email=nobody@example.com`);
    expect(page.status).toBe(200);
    expect(page.body.data).toEqual([]);
  });
});
