import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { raiseException } from '../../src/exceptions/exceptions.ts';
import { inUnitOfWork } from '../../src/ledger/unit-of-work.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

describe('activities (the audit log) and resolving exceptions', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(() => app.stop());

  it('logs every change of an invoice, readable per resource, with the API key as actor', async () => {
    const customer = (await app.api('POST', '/v1/customers', { email: 'ada@example.com' })).body;
    const invoice = (
      await app.api('POST', '/v1/invoices', {
        customer: customer.id,
        currency: 'USD',
        lines: [{ description: 'Consulting', amount: 5000 }],
      })
    ).body;
    await app.api('POST', `/v1/invoices/${invoice.id}/finalize`);
    await app.api('POST', `/v1/invoices/${invoice.id}/payments`, { amount: 2000, method: 'BANK' });
    await app.api('POST', `/v1/invoices/${invoice.id}/payments`, { amount: 3000, method: 'CASH' });

    const log = await app.api('GET', `/v1/activities?resource=${invoice.id}`);
    expect(log.status).toBe(200);
    expect(log.body.data.map((a: { action: string }) => a.action)).toEqual([
      'invoice.created',
      'invoice.finalized',
      'invoice.offline_payment_recorded',
      'invoice.payment_applied',
      'invoice.offline_payment_recorded',
      'invoice.paid',
    ]);
    const [keyRow] = await app.runtime.db.selectFrom('api_keys').select('id').execute();
    for (const activity of log.body.data) {
      expect(activity).toMatchObject({ object: 'activity', resource_type: 'invoice', customer: customer.id });
      expect(activity.actor).toBe(keyRow!.id);
    }
    expect(log.body.data.at(-1).data).toMatchObject({ amount: '3000', amount_paid: '5000', amount_due: '0' });

    const byCustomer = await app.api('GET', `/v1/activities?customer=${customer.id}`);
    expect(byCustomer.body.data[0].action).toBe('customer.created');
  });

  it('names the key that made each call, not another key: the actor is passed from the request', async () => {
    const { secret, key } = await createApiKey(app.runtime.db, 'second writer', 'write');
    const mine = (await app.api('POST', '/v1/customers', { email: 'second@example.com' }, secret)).body;
    const theirs = (await app.api('POST', '/v1/customers', { email: 'first@example.com' })).body;
    const actorOn = async (id: string) =>
      (await app.api('GET', `/v1/activities?resource=${id}`)).body.data.map(
        (a: { actor: string }) => a.actor,
      );
    expect(await actorOn(mine.id)).toEqual([key.id]);
    expect((await actorOn(theirs.id))[0]).toMatch(/^key_/);
    expect(await actorOn(theirs.id)).not.toContain(key.id);
  });

  it('pages by sequence: a consumer polling with its last cursor reads each activity once', async () => {
    const seen: string[] = [];
    let cursor = 0;
    for (;;) {
      const page = await app.api('GET', `/v1/activities?limit=2&after_sequence=${cursor}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((a: { id: string }) => a.id));
      if (!page.body.has_more) break;
      cursor = page.body.data.at(-1).sequence;
    }
    const all = await app.runtime.db.selectFrom('activities').select('id').orderBy('sequence').execute();
    expect(seen).toEqual(all.map((a) => a.id));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('refuses to change or delete an activity', async () => {
    await expect(sql`UPDATE activities SET action = 'x'`.execute(app.runtime.db)).rejects.toThrow(
      /append-only/,
    );
    await expect(sql`DELETE FROM activities`.execute(app.runtime.db)).rejects.toThrow(/append-only/);
  });

  it('resolves an open reconciliation exception once: 200, then 409; 404 for an unknown id', async () => {
    await inUnitOfWork(app.runtime.db, { actor: 'system' }, (work) =>
      raiseException(work, { kind: 'unknown_outcome', gateway: 'stripe', message: 'ask the gateway' }),
    );
    const open = await app.api('GET', '/v1/reconciliation-exceptions?status=open');
    const id = open.body.data[0].id;
    const resolved = await app.api('POST', `/v1/reconciliation-exceptions/${id}/resolve`, {
      note: 'refunded by hand',
    });
    expect(resolved.status).toBe(200);
    expect(resolved.body).toMatchObject({ id, status: 'resolved' });
    expect(resolved.body.resolved_at).toBeTruthy();
    const again = await app.api('POST', `/v1/reconciliation-exceptions/${id}/resolve`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('exception_already_resolved');
    const missing = await app.api('POST', '/v1/reconciliation-exceptions/rex_nope/resolve', {});
    expect(missing.status).toBe(404);
    const bad = await app.api('POST', `/v1/reconciliation-exceptions/${id}/resolve`, { note: 7 });
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields).toHaveProperty('note');
    const log = await app.api('GET', `/v1/activities?resource=${id}`);
    expect(log.body.data.map((a: { action: string }) => a.action)).toEqual([
      'reconciliation_exception.opened',
      'reconciliation_exception.resolved',
    ]);
    expect(log.body.data[1].data).toEqual({ kind: 'unknown_outcome', note: 'refunded by hand' });
  });
});
