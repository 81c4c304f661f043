import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { renewDueSubscriptions, renewSubscription } from '../../src/billing/renewal.ts';
import { createSubscription } from '../../src/billing/subscriptions.ts';
import { cancelSubscriptionWithRefund } from '../../src/payments/cancellations.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { actionsOf, customerWith, flatPlan, ledgerIn, subscribedAndPaid } from '../support/collection.ts';
import { ledgerByCode, stripeChargeSucceeds, stripeRefundSucceeds } from '../support/flow.ts';
import { insertPlan } from '../support/plans.ts';

const d = (iso: string) => new Date(iso);
const DAY = 86_400_000;

describe('subscriptions as the seeds have them (#28 item 3) over HTTP', () => {
  let app: TestApp;
  let plan: string;
  let bigPlan: string;
  let customer: string;
  let method: string;
  beforeAll(async () => {
    app = await startTestApp();
    // 1000 per unit per month at 19% tax: one unit's period costs 1190.
    plan = await insertPlan(app.runtime.db, {
      name: 'Team',
      currency: 'EUR',
      price: { model: 'PER_UNIT', unit_amount: 1000 },
      taxRatePpm: 190_000,
    });
    bigPlan = await insertPlan(app.runtime.db, {
      name: 'Team XL',
      currency: 'EUR',
      price: { model: 'PER_UNIT', unit_amount: 3000 },
      taxRatePpm: 190_000,
    });
    const created = await customerWith(app, { stripe: true });
    customer = created.customer.id;
    method = created.method!.id;
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => app.stop());

  const subscriptionRow = (id: string) =>
    app.runtime.db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const invoicesOf = (id: string) =>
    app.runtime.db
      .selectFrom('invoices')
      .selectAll()
      .where('subscription_id', '=', id)
      .orderBy('created_at')
      .execute();

  /** A subscription whose first period's invoice (1190 per unit) is paid through Stripe. */
  async function paidSubscription(quantity = 1) {
    const sub = (
      await app.api('POST', '/v1/subscriptions', { customer, plan, quantity, payment_method: method })
    ).body;
    const stripe = stripeChargeSucceeds();
    const settled = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    expect(settled.body.invoices[0].invoice).toMatchObject({ status: 'PAID', total: 1190 * quantity });
    expect(stripe.scope.isDone()).toBe(true);
    return { sub, invoice: settled.body.invoices[0].invoice.id as string };
  }

  it('cancels now with refund_type full: the paid period is refunded through Stripe, credit note and ledger in step; the reason is stored', async () => {
    const { sub, invoice } = await paidSubscription();
    const before = await ledgerByCode(app);
    const stripe = stripeRefundSucceeds('re_cancel_full');
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, {
      refund_type: 'full',
      cancel_reason: 'User no longer happy with service.',
    });
    expect(cancelled.status).toBe(200);
    expect(stripe.isDone()).toBe(true);
    expect(cancelled.body).toMatchObject({
      status: 'CANCELLED',
      cancel_reason: 'User no longer happy with service.',
      cancel_at: null,
      refund: { status: 'succeeded', amount: 1190, invoice, gateway_refund_id: 're_cancel_full' },
    });
    expect((await app.api('GET', `/v1/invoices/${invoice}`)).body).toMatchObject({
      status: 'REFUNDED',
      amount_refunded: 1190,
    });
    const notes = await app.runtime.db
      .selectFrom('credit_notes')
      .selectAll()
      .where('invoice_id', '=', invoice)
      .execute();
    expect(notes.map((n) => [n.subtotal, n.tax, n.total])).toEqual([[1000n, 190n, 1190n]]);
    const after = await ledgerByCode(app);
    // Balances debit-positive: refunds and tax payable debited, Stripe's clearing credited.
    expect(after['refunds EUR']! - (before['refunds EUR'] ?? 0)).toBe(1000);
    expect(after['tax_payable EUR']! - before['tax_payable EUR']!).toBe(190);
    expect(after['gateway_clearing:stripe EUR']! - before['gateway_clearing:stripe EUR']!).toBe(-1190);
    const cancelledActivity = (
      await app.api('GET', `/v1/activities?resource=${sub.id}&limit=100`)
    ).body.data.find((a: { action: string }) => a.action === 'subscription.cancelled');
    expect(cancelledActivity.data).toMatchObject({
      reason: 'User no longer happy with service.',
      refund_type: 'full',
      refund_amount: '1190', // activity data keeps minor units as text
    });
  });

  it('cancels now with refund_type prorate: the unused half of the period, rounded half up, exactly', async () => {
    const db = app.runtime.db;
    // 2027-01-01 → 2027-02-01 is 31 days; halfway is 2027-01-16T12:00Z.
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan, quantity: 3, paymentMethodId: method },
      d('2027-01-01T00:00:00Z'),
    );
    const stripe = stripeChargeSucceeds();
    await app.api('POST', `/v1/subscriptions/${created.subscription.id}/settle`);
    expect(stripe.scope.isDone()).toBe(true);
    const refundScope = stripeRefundSucceeds('re_cancel_half');
    const result = await cancelSubscriptionWithRefund(
      db,
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      created.subscription.id,
      { when: 'now', refundType: 'prorate' },
      d('2027-01-16T12:00:00Z'),
    );
    expect(refundScope.isDone()).toBe(true);
    // 3 × 1190 = 3570 paid; half of it is 1785, and the customer keeps 1785 for the used half.
    expect(result.refunds).toMatchObject([{ status: 'succeeded', amount: 1785n }]);
    expect(result.subscription).toMatchObject({
      status: 'CANCELLED',
      cancelled_at: d('2027-01-16T12:00:00Z'),
    });
  });

  it('refuses a refund with nothing paid (409), field errors (422), and changes nothing', async () => {
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan })).body;
    const unpaid = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'prorate' });
    expect(unpaid.status).toBe(409);
    expect(unpaid.body.error.code).toBe('nothing_to_refund');
    const cases: [unknown, string][] = [
      [{ refund_type: 'half' }, 'refund_type'],
      [{ when: 'date' }, 'cancel_at'],
      [{ when: 'now', cancel_at: new Date(Date.now() + DAY).toISOString() }, 'when'],
      [{ at_period_end: true, when: 'now' }, 'at_period_end'],
      [{ cancel_reason: 'x'.repeat(1001) }, 'cancel_reason'],
      [{ cancel_at: 'tomorrow' }, 'cancel_at'],
      [{ cancel_at: new Date(Date.now() - DAY).toISOString() }, 'cancel_at'],
      // A refund needs the cancellation within the current period.
      [{ cancel_at: new Date(Date.now() + 45 * DAY).toISOString(), refund_type: 'full' }, 'refund_type'],
    ];
    for (const [body, field] of cases) {
      const refused = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, body);
      expect(refused.status, JSON.stringify(body)).toBe(422);
      expect(refused.body.error.fields[field], JSON.stringify(body)).toBeDefined();
    }
    expect(await subscriptionRow(sub.id)).toMatchObject({
      status: 'ACTIVE',
      cancel_at: null,
      cancel_reason: null,
    });
  });

  it('cancels at a date: the status stays, periods before it are invoiced, then renewal cancels at that moment', async () => {
    const db = app.runtime.db;
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    const id = created.subscription.id;
    // The API takes only a future date: schedule it below HTTP at a simulated now.
    const scheduled = await cancelSubscriptionWithRefund(
      db,
      'system',
      app.runtime.boss,
      { registry: app.runtime.registry, accounts: app.runtime.accounts },
      id,
      { when: 'date', cancelAt: d('2027-03-10T00:00:00Z'), refundType: 'none', reason: 'moving' },
      d('2027-01-05T00:00:00Z'),
    );
    expect(scheduled.subscription).toMatchObject({
      status: 'ACTIVE',
      cancel_at: d('2027-03-10T00:00:00Z'),
      cancel_at_period_end: false,
      cancel_reason: 'moving',
      next_renewal_at: d('2027-02-01T00:00:00Z'),
    });
    await renewSubscription(db, 'system', id, d('2027-03-05T00:00:00Z'));
    // Feb and Mar are invoiced whole; the next look is the cancellation, not April.
    expect(await subscriptionRow(id)).toMatchObject({
      status: 'ACTIVE',
      current_period_index: 2,
      next_renewal_at: d('2027-03-10T00:00:00Z'),
    });
    await renewSubscription(db, 'system', id, d('2027-04-20T00:00:00Z'));
    expect(await subscriptionRow(id)).toMatchObject({
      status: 'CANCELLED',
      cancelled_at: d('2027-03-10T00:00:00Z'),
      next_renewal_at: null,
    });
    expect((await invoicesOf(id)).map((i) => [i.period_index, i.total])).toEqual([
      [0, 1190n],
      [1, 1190n],
      [2, 1190n],
    ]);
    const read = await app.api('GET', `/v1/subscriptions/${id}`);
    expect(read.body).toMatchObject({ status: 'CANCELLED', effective_amount: 0, cancel_reason: 'moving' });

    // Over HTTP: a date in the current period; a second schedule is 409.
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan })).body;
    const at = new Date(Date.now() + 10 * DAY).toISOString();
    const viaApi = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { cancel_at: at });
    expect(viaApi.status).toBe(200);
    expect(viaApi.body).toMatchObject({ status: 'ACTIVE', cancel_at: at, next_renewal_at: at, refund: null });
    const twice = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { at_period_end: true });
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('cancellation_scheduled');
    expect(await actionsOf(app, sub.id)).toContain('subscription.cancellation_scheduled');
  });

  it('a refund with a cancellation at a date covers the period after it; a SUSPENDED one still ends at its date', async () => {
    const db = app.runtime.db;
    const gateways = { registry: app.runtime.registry, accounts: app.runtime.accounts };
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan, quantity: 2, paymentMethodId: method },
      d('2027-01-01T00:00:00Z'),
    );
    const id = created.subscription.id;
    const charge = stripeChargeSucceeds();
    await app.api('POST', `/v1/subscriptions/${id}/settle`);
    expect(charge.scope.isDone()).toBe(true);
    const refundScope = stripeRefundSucceeds('re_cancel_date');
    // Cancelling on 2027-01-25T06:00Z leaves 7 days − 6 h = 583,200 s of 2,678,400 s unused:
    // 2380 × 583200 / 2678400 = 518.22… → 518.
    const scheduled = await cancelSubscriptionWithRefund(
      db,
      'system',
      app.runtime.boss,
      gateways,
      id,
      { when: 'date', cancelAt: d('2027-01-25T06:00:00Z'), refundType: 'prorate' },
      d('2027-01-10T00:00:00Z'),
    );
    expect(refundScope.isDone()).toBe(true);
    expect(scheduled.refunds).toMatchObject([{ status: 'succeeded', amount: 518n }]);
    expect(scheduled.subscription).toMatchObject({
      status: 'ACTIVE',
      next_renewal_at: d('2027-01-25T06:00:00Z'),
    });

    await app.api('POST', `/v1/subscriptions/${id}/suspend`, { suspend_reason: 'paused' });
    await renewSubscription(db, 'system', id, d('2027-01-24T00:00:00Z'));
    expect((await subscriptionRow(id)).status).toBe('SUSPENDED');
    // The sweep finds it though SUSPENDED subscriptions are not billed (the default).
    expect((await renewDueSubscriptions(db, 'system', d('2027-01-26T00:00:00Z'))).failures).toEqual([]);
    expect(await subscriptionRow(id)).toMatchObject({
      status: 'CANCELLED',
      cancelled_at: d('2027-01-25T06:00:00Z'),
    });
    expect(await invoicesOf(id)).toHaveLength(1);
  });

  it('suspends with a reason (stored, then cleared on reactivation); too long a reason is 422', async () => {
    const sub = (await app.api('POST', '/v1/subscriptions', { customer, plan })).body;
    const long = await app.api('POST', `/v1/subscriptions/${sub.id}/suspend`, {
      suspend_reason: 'x'.repeat(1001),
    });
    expect(long.status).toBe(422);
    expect(long.body.error.fields.suspend_reason).toBeDefined();
    const suspended = await app.api('POST', `/v1/subscriptions/${sub.id}/suspend`, {
      suspend_reason: 'card reported stolen',
    });
    expect(suspended.body).toMatchObject({ status: 'SUSPENDED', suspend_reason: 'card reported stolen' });
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body.suspend_reason).toBe(
      'card reported stolen',
    );
    const reactivated = await app.api('POST', `/v1/subscriptions/${sub.id}/reactivate`);
    expect(reactivated.body).toMatchObject({ status: 'ACTIVE', suspend_reason: null });
  });

  it('BILL_SUSPENDED_SUBSCRIPTIONS on: a SUSPENDED subscription keeps being billed; off (default): not', async () => {
    const db = app.runtime.db;
    const make = async () =>
      (
        await createSubscription(
          db,
          'system',
          { customerId: customer, planId: plan },
          d('2027-01-01T00:00:00Z'),
        )
      ).subscription.id;
    const billed = await make();
    const skipped = await make();
    for (const id of [billed, skipped]) await app.api('POST', `/v1/subscriptions/${id}/suspend`);
    expect(app.config.BILL_SUSPENDED_SUBSCRIPTIONS).toBe(false);
    await renewSubscription(db, 'system', skipped, d('2027-03-01T00:10:00Z'));
    expect((await invoicesOf(skipped)).map((i) => i.period_index)).toEqual([0]);
    await renewSubscription(db, 'system', billed, d('2027-03-01T00:10:00Z'), false, { billSuspended: true });
    expect((await invoicesOf(billed)).map((i) => [i.period_index, i.total])).toEqual([
      [0, 1190n],
      [1, 1190n],
      [2, 1190n],
    ]);
    expect(await subscriptionRow(billed)).toMatchObject({ status: 'SUSPENDED', current_period_index: 2 });
  });

  it('changes at the next cycle: scheduled and visible, cancellable, applied by the renewal without proration', async () => {
    const db = app.runtime.db;
    const created = await createSubscription(
      db,
      'system',
      { customerId: customer, planId: plan },
      d('2027-01-01T00:00:00Z'),
    );
    const id = created.subscription.id;
    const preview = await app.api('POST', `/v1/subscriptions/${id}/change`, {
      plan: bigPlan,
      quantity: 2,
      when: 'next_cycle',
      preview: true,
    });
    expect(preview.body).toMatchObject({ preview: true, invoice: null, proration: { total: 0, lines: [] } });
    expect(preview.body.subscription.scheduled_change).toBeNull();
    const bad = await app.api('POST', `/v1/subscriptions/${id}/change`, {
      quantity: 2,
      when: 'next_cycle',
      proration: 'none',
    });
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields.proration).toBeDefined();
    const scheduled = await app.api('POST', `/v1/subscriptions/${id}/change`, {
      quantity: 2,
      when: 'next_cycle',
    });
    expect(scheduled.status).toBe(200);
    expect(scheduled.body).toMatchObject({ invoice: null, credited: 0 });
    expect(scheduled.body.subscription).toMatchObject({
      plan,
      quantity: 1,
      scheduled_change: { plan, quantity: 2, at: '2027-02-01T00:00:00.000Z' },
    });
    expect((await app.api('GET', `/v1/subscriptions/${id}`)).body.effective_amount).toBe(2000);
    const undone = await app.api('POST', `/v1/subscriptions/${id}/scheduled-change/cancel`);
    expect(undone.body.scheduled_change).toBeNull();
    const none = await app.api('POST', `/v1/subscriptions/${id}/scheduled-change/cancel`);
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe('no_scheduled_change');

    await app.api('POST', `/v1/subscriptions/${id}/change`, {
      plan: bigPlan,
      quantity: 2,
      when: 'next_cycle',
    });
    expect(await invoicesOf(id)).toHaveLength(1);
    await renewSubscription(db, 'system', id, d('2027-02-01T00:10:00Z'));
    expect(await subscriptionRow(id)).toMatchObject({
      plan_id: bigPlan,
      quantity: 2,
      scheduled_plan_id: null,
      scheduled_quantity: null,
    });
    const invoices = await invoicesOf(id);
    // Period 1 at 2 × 3000 = 6000 + 19% = 7140, whole: no proration.
    expect(invoices.map((i) => [i.period_index, i.subtotal, i.tax, i.total])).toEqual([
      [0, 1000n, 190n, 1190n],
      [1, 6000n, 1140n, 7140n],
    ]);
    expect(await actionsOf(app, id)).toEqual(
      expect.arrayContaining([
        'subscription.change_scheduled',
        'subscription.scheduled_change_cancelled',
        'subscription.changed',
      ]),
    );
  });

  it('proration behaviours: none, full and prorate_at_renewal, each with its invoice (or none)', async () => {
    const db = app.runtime.db;
    const make = async () =>
      (await app.api('POST', '/v1/subscriptions', { customer, plan })).body.id as string;

    // none: the quantity changes now, nothing is invoiced or credited; the next period bills 3 units.
    const noCost = await make();
    const none = await app.api('POST', `/v1/subscriptions/${noCost}/change`, {
      quantity: 3,
      proration: 'none',
    });
    expect(none.body).toMatchObject({ invoice: null, credited: 0, proration: { lines: [], total: 0 } });
    expect(none.body.subscription.quantity).toBe(3);
    await renewSubscription(db, 'system', noCost, new Date(Date.now() + 32 * DAY));
    expect((await invoicesOf(noCost)).map((i) => i.total)).toEqual([1190n, 3570n]);

    // full: the whole period's difference, 3 × 1000 − 1000 = 2000 + 19% = 2380, charged now.
    const full = await make();
    const fullChange = await app.api('POST', `/v1/subscriptions/${full}/change`, {
      quantity: 3,
      proration: 'full',
    });
    expect(fullChange.body.proration).toMatchObject({ subtotal: 2000, tax: 380, total: 2380 });
    const fullInvoice = (await app.api('GET', `/v1/invoices/${fullChange.body.invoice}`)).body;
    expect(fullInvoice).toMatchObject({ total: 2380, status: 'OPEN', billing_reason: 'subscription_update' });

    // prorate_at_renewal: the proration invoice is finalized now, charged at the period's end.
    const later = await make();
    const atRenewal = await app.api('POST', `/v1/subscriptions/${later}/change`, {
      quantity: 2,
      proration: 'prorate_at_renewal',
    });
    const invoice = (await app.api('GET', `/v1/invoices/${atRenewal.body.invoice}`)).body;
    expect(invoice.status).toBe('OPEN');
    expect(invoice.charge_at).toBe(atRenewal.body.subscription.current_period_end);
    expect(invoice.total).toBe(atRenewal.body.proration.total);

    const bad = await app.api('POST', `/v1/subscriptions/${later}/change`, {
      quantity: 4,
      proration: 'later',
    });
    expect(bad.status).toBe(422);
    expect(bad.body.error.fields.proration).toBeDefined();
  });

  it('credited is the change’s net credit before tax, below 0 when a taxed plan’s tax credit outweighs a dearer untaxed plan', async () => {
    // Its own customer, in CAD. 2000 + 25% = 2500 paid by card. `full` (the whole period, whatever
    // the clock) to an untaxed 2200: −2000 − 500 tax unused, +2200: subtotal +200, tax −500, total
    // −300, not invoiced: 300 to the customer's credit. Before tax the change charges 200 more than
    // it credits: credited −200, and credited + the tax given back (500) = 300, what the change
    // credited (credited_to_invoice null: all of it the customer's). Before: 0 (0 + 500 ≠ 300).
    const { customer: owner, method: card } = await customerWith(app, { stripe: true });
    const sub = await subscribedAndPaid(app, {
      customer: owner.id,
      plan: await flatPlan(app, 'CAD', 2000),
      method: card!.id,
    });
    const untaxed = await insertPlan(app.runtime.db, {
      currency: 'CAD',
      price: { model: 'FLAT_FEE', amount: 2200 },
    });
    const change = { plan: untaxed, proration: 'full' };
    const preview = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, { ...change, preview: true });
    const done = await app.api('POST', `/v1/subscriptions/${sub.id}/change`, change);
    for (const answer of [preview, done]) {
      expect(answer.body).toMatchObject({
        invoice: null,
        credited: -200,
        credited_to_invoice: null,
        proration: { subtotal: 200, tax: -500, total: -300 },
      });
    }
    expect((await app.api('GET', `/v1/customers/${owner.id}`)).body.credit).toEqual([
      { currency: 'CAD', amount: 300 },
    ]);
    // Books: revenue 2000 + 200 = 2200 (the untaxed plan's period), tax payable 500 − 500 = 0, the
    // customer's 300 of credit, clearing 2500.
    expect(await ledgerIn(app, 'CAD')).toMatchObject({
      revenue: -2200,
      tax_payable: 0,
      'customer_credit:customer': -300,
      'gateway_clearing:stripe': 2500,
    });
  });

  it('ends a trial now (first period invoiced at once) or extends it to a date (the schedule follows)', async () => {
    const extended = (await app.api('POST', '/v1/subscriptions', { customer, plan, trial_days: 14 })).body;
    const to = new Date(Date.now() + 30 * DAY).toISOString();
    const moved = await app.api('POST', `/v1/subscriptions/${extended.id}/trial`, { trial_end: to });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({
      status: 'IN_TRIAL',
      trial_end_at: to,
      billing_anchor: to,
      next_renewal_at: to,
      current_period_end: to,
      latest_invoice: null,
    });
    const past = await app.api('POST', `/v1/subscriptions/${extended.id}/trial`, {
      trial_end: new Date(Date.now() - DAY).toISOString(),
    });
    expect(past.status).toBe(422);
    expect(past.body.error.fields.trial_end).toBeDefined();
    expect(
      (await app.api('POST', `/v1/subscriptions/${extended.id}/trial`, { trial_end: 'soon' })).status,
    ).toBe(422);

    const ended = await app.api('POST', `/v1/subscriptions/${extended.id}/trial`, { trial_end: 'now' });
    expect(ended.body).toMatchObject({ status: 'ACTIVE', current_period_index: 0 });
    expect(ended.body.latest_invoice).toMatch(/^inv_/);
    const invoice = (await app.api('GET', `/v1/invoices/${ended.body.latest_invoice}`)).body;
    expect(invoice).toMatchObject({ total: 1190, billing_reason: 'subscription_create', status: 'OPEN' });
    expect(invoice.period_start).toBe(ended.body.trial_end_at);
    const again = await app.api('POST', `/v1/subscriptions/${extended.id}/trial`, { trial_end: 'now' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('not_in_trial');
    expect(await actionsOf(app, extended.id)).toContain('subscription.trial_changed');
  });

  it('effective_amount: plan price × quantity or the override, minus the coupons still in effect', async () => {
    await app.api('POST', '/v1/coupons', { code: 'QUARTER-OFF', percent_off: 25, duration: 'FOREVER' });
    const sub = (
      await app.api('POST', '/v1/subscriptions', { customer, plan, quantity: 3, coupon: 'QUARTER-OFF' })
    ).body;
    // 3 × 1000 = 3000, 25 % off → 2250 (before tax and usage).
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body).toMatchObject({
      effective_amount: 2250,
      currency: 'EUR',
    });
    const override = (
      await app.api('POST', '/v1/subscriptions', { customer, plan, quantity: 3, amount_override: 700 })
    ).body;
    expect((await app.api('GET', `/v1/subscriptions/${override.id}`)).body.effective_amount).toBe(700);
    await app.api('POST', `/v1/subscriptions/${override.id}/cancel`, { at_period_end: true });
    expect((await app.api('GET', `/v1/subscriptions/${override.id}`)).body.effective_amount).toBe(0);
  });
  it("a cancellation's full refund covers the period's recurring lines, not the one-off setup fee; effective_amount counts add-ons", async () => {
    const product = (await app.api('POST', '/v1/products', { name: 'Team with setup' })).body;
    const withSetup = (
      await app.api('POST', '/v1/plans', {
        product: product.id,
        name: 'Team with setup',
        currency: 'EUR',
        interval: 'MONTH',
        price: { model: 'PER_UNIT', unit_amount: 1000 },
        tax_percent: 19,
        setup_fee: 500,
      })
    ).body;
    const sub = (
      await app.api('POST', '/v1/subscriptions', { customer, plan: withSetup.id, payment_method: method })
    ).body;
    const stripe = stripeChargeSucceeds();
    const settled = await app.api('POST', `/v1/subscriptions/${sub.id}/settle`);
    // Period 0: 1000 + the setup fee 500, at 19%: 1785.
    expect(settled.body.invoices[0].invoice).toMatchObject({ status: 'PAID', total: 1785 });
    expect(stripe.scope.isDone()).toBe(true);

    const storage = (await app.api('POST', '/v1/add-ons', { name: 'Storage', currency: 'EUR', amount: 300 }))
      .body;
    // Not prorated (`none`): from the next period only, so the refund below is the period invoice's
    // (a period with an add-on's proration invoice refuses a full refund: add-on-proration.test.ts).
    await app.api('POST', `/v1/subscriptions/${sub.id}/add-ons`, {
      add_on: storage.id,
      quantity: 2,
      proration: 'none',
    });
    // The next period: 1000 + 2 × 300, no setup fee.
    expect((await app.api('GET', `/v1/subscriptions/${sub.id}`)).body.effective_amount).toBe(1600);

    const refund = stripeRefundSucceeds('re_cancel_setup');
    const cancelled = await app.api('POST', `/v1/subscriptions/${sub.id}/cancel`, { refund_type: 'full' });
    expect(cancelled.status).toBe(200);
    expect(refund.isDone()).toBe(true);
    // The plan's line with its tax (1190); the setup fee (595 with tax) stays paid.
    expect(cancelled.body.refund).toMatchObject({ status: 'succeeded', amount: 1190 });
    const invoice = (await app.api('GET', `/v1/invoices/${settled.body.invoices[0].invoice.id}`)).body;
    expect(invoice).toMatchObject({ status: 'PARTIALLY_REFUNDED', amount_refunded: 1190 });
  });
  it("gives each of its invoices the subscription's po_number and invoice_notes; an update applies from then on", async () => {
    const created = await app.api('POST', '/v1/subscriptions', {
      customer,
      plan,
      po_number: 'PO-4471',
      invoice_notes: 'Net 30, quote the PO number.',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      po_number: 'PO-4471',
      invoice_notes: 'Net 30, quote the PO number.',
    });
    const first = (await app.api('GET', `/v1/invoices/${created.body.latest_invoice}`)).body;
    expect(first).toMatchObject({ po_number: 'PO-4471', notes: 'Net 30, quote the PO number.' });

    const updated = await app.api('POST', `/v1/subscriptions/${created.body.id}`, {
      po_number: 'PO-5000',
      invoice_notes: null,
    });
    expect(updated.body).toMatchObject({ po_number: 'PO-5000', invoice_notes: null });
    // A quantity change now: its proration invoice says the new PO number, the first keeps its own.
    const changed = await app.api('POST', `/v1/subscriptions/${created.body.id}/change`, { quantity: 2 });
    expect(changed.status).toBe(200);
    const proration = (await app.api('GET', `/v1/invoices/${changed.body.invoice}`)).body;
    expect(proration).toMatchObject({ po_number: 'PO-5000', notes: null });
    expect((await app.api('GET', `/v1/invoices/${first.id}`)).body.po_number).toBe('PO-4471');

    const tooLong = await app.api('POST', `/v1/subscriptions/${created.body.id}`, {
      po_number: 'P'.repeat(101),
    });
    expect(tooLong.status).toBe(422);
    expect(tooLong.body.error.fields).toHaveProperty('po_number');
    expect((await app.api('GET', `/v1/subscriptions/${created.body.id}`)).body.po_number).toBe('PO-5000');
  });
});
