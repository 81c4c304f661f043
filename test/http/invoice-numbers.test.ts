import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finalizeLocked, lockInvoice } from '../../src/billing/invoices.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { insertPlan } from '../support/plans.ts';

const DAY = 86_400_000;

describe('invoice numbers, payment terms and details (issue #28 item 1)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.stop();
  });

  async function customer(body: Record<string, unknown> = {}) {
    const created = await app.api('POST', '/v1/customers', { email: 'terms@example.com', ...body });
    expect(created.status).toBe(201);
    return created.body as { id: string };
  }

  async function draft(customerId: string, body: Record<string, unknown> = {}) {
    const created = await app.api('POST', '/v1/invoices', {
      customer: customerId,
      currency: 'usd',
      lines: [{ description: 'Support, December', amount: 5000 }],
      ...body,
    });
    expect(created.status).toBe(201);
    return created.body;
  }

  async function finalize(id: string) {
    const answer = await app.api('POST', `/v1/invoices/${id}/finalize`);
    expect(answer.status).toBe(200);
    return answer.body;
  }

  it('gives a prefix gap-free numbers at finalization, in finalization order; a DRAFT has none', async () => {
    const acme = await customer({ invoice_prefix: 'ACME' });
    const first = await draft(acme.id);
    const second = await draft(acme.id);
    expect(first.number).toBeNull();
    // Finalized in the other order than created: the number follows finalization.
    expect((await finalize(second.id)).number).toBe('ACME-000001');
    expect((await finalize(first.id)).number).toBe('ACME-000002');
    expect((await app.api('GET', `/v1/invoices/${first.id}`)).body.number).toBe('ACME-000002');
    // A customer without a prefix of their own numbers with INV.
    const plain = await customer();
    expect((await finalize((await draft(plain.id)).id)).number).toMatch(/^INV-\d{6}$/);
  });

  it('numbers concurrent finalizations 1…n with no gap and no repeat', async () => {
    const c = await customer({ invoice_prefix: 'RACE' });
    const drafts = await Promise.all(Array.from({ length: 12 }, () => draft(c.id)));
    const numbers = (await Promise.all(drafts.map((d) => finalize(d.id)))).map((i) => i.number).sort();
    expect(numbers).toEqual(Array.from({ length: 12 }, (_, i) => `RACE-${String(i + 1).padStart(6, '0')}`));
  });

  it('gives back the number of a finalization that rolls back (a counter row, not a sequence)', async () => {
    const c = await customer({ invoice_prefix: 'ROLL' });
    const [a, b] = [await draft(c.id), await draft(c.id)];
    const db = app.runtime.db;
    const failed = inUnitOfWork(db, { actor: 'system' }, async (work) => {
      await finalizeLocked(work, await lockInvoice(work, a.id), new Date());
      // The number is taken at the unit's end, just before the commit; then the commit fails.
      work.atEnd(async () => {
        const numbered = await work.trx
          .selectFrom('invoices')
          .select('number')
          .where('id', '=', a.id)
          .executeTakeFirst();
        expect(numbered?.number).toBe('ROLL-000001');
        throw new Error('the rest of the unit failed');
      });
    });
    await expect(failed).rejects.toThrow('the rest of the unit failed');
    expect((await app.api('GET', `/v1/invoices/${a.id}`)).body).toMatchObject({
      status: 'DRAFT',
      number: null,
    });
    expect((await finalize(b.id)).number).toBe('ROLL-000001');
    expect((await finalize(a.id)).number).toBe('ROLL-000002');
  });

  it('sets due_date from net N days: the invoice’s own terms, else the customer’s, else 0', async () => {
    const net14 = await customer({ payment_terms_days: 14 });
    expect((await app.api('GET', `/v1/customers/${net14.id}`)).body.payment_terms_days).toBe(14);
    const inherits = await finalize((await draft(net14.id)).id);
    expect(inherits.payment_terms_days).toBe(14);
    expect(Date.parse(inherits.due_date) - Date.parse(inherits.finalized_at)).toBe(14 * DAY);

    const own = await draft(net14.id, { payment_terms_days: 30 });
    expect(own).toMatchObject({ payment_terms_days: 30, due_date: null });
    const overridden = await finalize(own.id);
    expect(Date.parse(overridden.due_date) - Date.parse(overridden.finalized_at)).toBe(30 * DAY);

    const none = await finalize((await draft((await customer()).id)).id);
    expect(none.payment_terms_days).toBe(0);
    expect(none.due_date).toBe(none.finalized_at);
    // The due date says when payment is owed; when the scheduler charges is still charge_at.
    expect(overridden.charge_at).toBeNull();
    expect(overridden.status).toBe('OPEN');
  });

  it('keeps po_number, title, notes and external_id; changes them while DRAFT only', async () => {
    const c = await customer();
    const created = await draft(c.id, {
      po_number: 'PO6767',
      title: 'December support',
      notes: 'Thank you for your business.',
      external_id: 'erp-inv-1',
    });
    expect(created).toMatchObject({
      po_number: 'PO6767',
      title: 'December support',
      notes: 'Thank you for your business.',
      external_id: 'erp-inv-1',
    });
    const changed = await app.api('POST', `/v1/invoices/${created.id}`, { po_number: 'PO7000', notes: null });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ po_number: 'PO7000', notes: null, title: 'December support' });

    // The external id is unique among invoices: on create and on update.
    const taken = await app.api('POST', '/v1/invoices', {
      customer: c.id,
      currency: 'usd',
      lines: [{ description: 'x', amount: 1 }],
      external_id: 'erp-inv-1',
    });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('external_id_taken');
    const other = await draft(c.id);
    const clash = await app.api('POST', `/v1/invoices/${other.id}`, { external_id: 'erp-inv-1' });
    expect(clash.status).toBe(409);
    expect(clash.body.error.code).toBe('external_id_taken');

    // Listed by number and by external id.
    const finalized = await finalize(created.id);
    const byNumber = await app.api('GET', `/v1/invoices?number=${finalized.number}`);
    expect(byNumber.body.data.map((i: { id: string }) => i.id)).toEqual([created.id]);
    const byExternal = await app.api('GET', '/v1/invoices?external_id=erp-inv-1');
    expect(byExternal.body.data.map((i: { id: string }) => i.id)).toEqual([created.id]);

    // Once finalized, what was sent stays: details 409, charge_at still changes.
    const late = await app.api('POST', `/v1/invoices/${created.id}`, { title: 'Other' });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('invoice_not_draft');
    const chargeAt = '2030-01-01T00:00:00.000Z';
    const scheduled = await app.api('POST', `/v1/invoices/${created.id}`, { charge_at: chargeAt });
    expect(scheduled.body).toMatchObject({ charge_at: chargeAt, title: 'December support' });
  });

  it('numbers and dates a subscription’s invoices from the customer, like a manual one', async () => {
    const c = await customer({ invoice_prefix: 'SUB', payment_terms_days: 7 });
    const pm = await app.api('POST', '/v1/payment-methods', {
      customer: c.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    const plan = await insertPlan(app.runtime.db, { price: { model: 'FLAT_FEE', amount: 2500 } });
    const subscribed = await app.api('POST', '/v1/subscriptions', {
      customer: c.id,
      plan,
      payment_method: pm.body.id,
    });
    expect(subscribed.status).toBe(201);
    const invoice = (await app.api('GET', `/v1/invoices/${subscribed.body.latest_invoice}`)).body;
    expect(invoice).toMatchObject({ number: 'SUB-000001', payment_terms_days: 7, total: 2500 });
    expect(Date.parse(invoice.due_date) - Date.parse(invoice.finalized_at)).toBe(7 * DAY);
    // The scheduler still charges it at once (charge_at now), before its due date.
    expect(Date.parse(invoice.charge_at)).toBeLessThanOrEqual(Date.parse(invoice.due_date));
  });

  it('refuses bad details with field messages and changes nothing', async () => {
    const c = await customer();
    const d = await draft(c.id);
    for (const [body, field] of [
      [{ payment_terms_days: 366 }, 'payment_terms_days'],
      [{ payment_terms_days: 1.5 }, 'payment_terms_days'],
      [{ notes: 'x'.repeat(1001) }, 'notes'],
      [{ unknown: 1 }, ''],
    ] as const) {
      const refused = await app.api('POST', `/v1/invoices/${d.id}`, body);
      expect(refused.status).toBe(422);
      if (field) expect(Object.keys(refused.body.error.fields)).toContain(field);
    }
    const empty = await app.api('POST', `/v1/invoices/${d.id}`, {});
    expect(empty.status).toBe(422);
    const badPrefix = await app.api('POST', '/v1/customers', {
      email: 'p@example.com',
      invoice_prefix: 'inv-',
    });
    expect(badPrefix.status).toBe(422);
    expect(Object.keys(badPrefix.body.error.fields)).toContain('invoice_prefix');
    expect((await app.api('GET', `/v1/invoices/${d.id}`)).body).toMatchObject({
      payment_terms_days: null,
      notes: null,
    });
  });
});
