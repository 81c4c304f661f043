import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStripeStub } from '../../src/gateways/stripe/stub.ts';
import { startCharge } from '../../src/payments/charges.ts';
import { FIXTURE_SIGNATURE_KEY } from '../gateways/authorizenet/support.ts';
import { TEST_CERT_FILE, TEST_KEY_FILE } from '../gateways/paypal/fixtures.ts';
import { STRIPE_WEBHOOK_SECRET, startTestApp, type TestApp } from '../support/app.ts';
import { cli } from '../support/cli.ts';
import { createTestDatabase } from '../support/database.ts';
import { openInvoice } from '../support/flow.ts';
import { waitFor, wakeWorkers } from '../support/wait.ts';

describe('billhook CLI', { timeout: 120_000 }, () => {
  let app: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    // /metrics' job gauges read pg-boss's counts from its maintenance pass (every 10 s by default).
    app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '0', QUEUE_MAINTENANCE_INTERVAL_SECONDS: '1' });
    env = { DATABASE_URL: app.runtime.databaseUrl, STRIPE_WEBHOOK_SECRET, LOG_LEVEL: 'silent' };
  });
  afterAll(() => app.stop());

  it('creates, lists and revokes API keys; the key works on the API until revoked', async () => {
    const created = await cli(['keys', 'create', '--name', 'reporting', '--scope', 'read'], env);
    expect(created.code).toBe(0);
    const [, id, secret] = /^(key_\w+) \(read\): (bh_\S+)/.exec(created.stdout) ?? [];
    expect(secret).toBeDefined();
    expect((await app.api('GET', '/v1/events', undefined, secret)).status).toBe(200);

    const listed = await cli(['keys', 'list'], env);
    expect(listed.stdout).toContain(`${id}`);
    // Used once above: its last use is shown (to the minute).
    expect(listed.stdout).toMatch(new RegExp(`${id} .* last used \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z +reporting`));
    expect(listed.stdout).not.toContain(secret!);

    expect((await cli(['keys', 'revoke', id!], env)).code).toBe(0);
    expect((await app.api('GET', '/v1/events', undefined, secret)).status).toBe(401);
    const again = await cli(['keys', 'revoke', id!], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no api key with id/);
  });

  it('reconcile asks the gateway about every open charge, printing progress', async () => {
    const stub = await startStripeStub(0, 'processing');
    try {
      const { invoice } = await openInvoice(app);
      const attempt = await startCharge(app.runtime.db, 'system', app.runtime, invoice.id);
      const result = await cli(['reconcile'], {
        ...env,
        STRIPE_SECRET_KEY: 'sk_test_cli',
        STRIPE_API_BASE: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`,
      });
      expect(result.code).toBe(0);
      // The stub keeps no payment intents: the answer is unclear, so the charge stays as it was (pending).
      expect(result.stdout).toMatch(new RegExp(`\\[1/1\\] ${attempt.id}  pending`));
      expect(result.stdout).toMatch(/1 charge\(s\) checked/);
      // A check by hand is not one of the poll schedule's: the charge still has all of them.
      const row = await app.runtime.db
        .selectFrom('transactions')
        .select('poll_attempts')
        .where('id', '=', attempt.id)
        .executeTakeFirstOrThrow();
      expect(row.poll_attempts).toBe(0);
    } finally {
      stub.close();
    }
  });

  it('refuses a bad scope with a clear message', async () => {
    const result = await cli(['keys', 'create', '--name', 'x', '--scope', 'root'], env);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/scope must be read, write or admin/);
  });

  it('send-test-webhook signs a realistic event that the server accepts and reconciles', async () => {
    const result = await cli(
      [
        'send-test-webhook',
        'stripe',
        'payment_intent.succeeded',
        '--url',
        app.url,
        '--amount',
        '2500',
        '--currency',
        'usd',
      ],
      env,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^stripe payment_intent.succeeded → HTTP 200 \{"received":true\}/);
    // No such payment intent here: with no retries configured it becomes an exception at once.
    const event = await waitFor('the test event to be handled', async () => {
      const e = (await app.api('GET', '/v1/events?limit=100')).body.data.find(
        (x: { type: string }) => x.type === 'payment_intent.succeeded',
      );
      return e?.status === 'exception' ? e : undefined;
    });
    expect(event.gateway_event_id).toMatch(/^evt_test/);
  });

  it('send-test-webhook explains unsupported gateways and event types', async () => {
    expect((await cli(['send-test-webhook', 'bitpay', 'x', '--url', app.url], env)).stderr).toMatch(
      /supports: stripe, paypal, authorizenet, eway, securepay/,
    );
    expect(
      (await cli(['send-test-webhook', 'stripe', 'customer.created', '--url', app.url], env)).stderr,
    ).toMatch(/one of: payment_intent.succeeded/);
  });

  it('stops with a message naming a bad variable', async () => {
    const result = await cli(['keys', 'list'], { ...env, PORT: 'eighty' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/PORT/);
  });

  it('prints help for every command', async () => {
    for (const args of [['--help'], ['keys', '--help'], ['send-test-webhook', '--help']]) {
      const result = await cli(args, env);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/Usage: billhook/);
    }
  });
});

describe('send-test-webhook for the other gateways', { timeout: 120_000 }, () => {
  let app: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    const gateways = {
      PAYPAL_WEBHOOK_ID: 'WH-billhook-cli-test',
      PAYPAL_TEST_CERT_FILE: TEST_CERT_FILE,
      PAYPAL_TEST_KEY_FILE: TEST_KEY_FILE,
      AUTHORIZENET_API_LOGIN_ID: 'login',
      AUTHORIZENET_TRANSACTION_KEY: 'transaction-key',
      AUTHORIZENET_SIGNATURE_KEY: FIXTURE_SIGNATURE_KEY,
      EWAY_API_KEY: 'eway-key',
      EWAY_API_PASSWORD: 'eway-password',
      SECUREPAY_CLIENT_ID: 'client',
      SECUREPAY_CLIENT_SECRET: 'secret',
      SECUREPAY_MERCHANT_CODE: '5AR0055',
      SECUREPAY_WEBHOOKS: 'on',
    };
    // Processing would ask the gateways' servers; this test is about delivery, so none is configured to answer.
    app = await startTestApp({ ...gateways, WEBHOOK_RETRY_LIMIT: '0' }, 'web');
    env = { ...gateways, DATABASE_URL: app.runtime.databaseUrl, LOG_LEVEL: 'silent' };
  });
  afterAll(() => app.stop());

  it.each([
    [
      'paypal',
      'PAYMENT.CAPTURE.COMPLETED',
      ['--transaction-id', '2GG279541U471931P', '--reference', 'txn_cli'],
    ],
    ['authorizenet', 'net.authorize.payment.authcapture.created', ['--transaction-id', '60123456789']],
    ['eway', 'transaction', ['--transaction-id', '11818347']],
    ['securepay', 'payment.paid', ['--reference', 'txn_cli_securepay']],
  ])('delivers a %s %s that the server verifies and stores', async (gateway, eventType, extra) => {
    const result = await cli(
      ['send-test-webhook', gateway, eventType, '--url', app.url, '--amount', '2507', ...extra],
      env,
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(new RegExp(`^${gateway} ${eventType} → HTTP 200`));
    const stored = await app.runtime.db
      .selectFrom('inbox')
      .select(['gateway', 'event_type'])
      .where('gateway', '=', gateway as 'paypal')
      .execute();
    expect(stored).toEqual([
      { gateway, event_type: eventType === 'transaction' ? 'transaction' : eventType },
    ]);
  });
});

describe('replay and dead letters from the CLI', { timeout: 120_000 }, () => {
  let app: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '0' });
    env = { DATABASE_URL: app.runtime.databaseUrl, LOG_LEVEL: 'silent', WEBHOOK_RETRY_LIMIT: '0' };
  });
  afterAll(() => app.stop());

  it('lists, retries and purges dead letters; replays an event', async () => {
    // A PayPal delivery on a server without PayPal cannot be processed: it ends as a dead letter.
    const inbox = app.runtime.inbox!;
    const receipt = await inbox.receive({
      gateway: 'paypal',
      eventId: 'WH-cli-dead',
      eventType: 'X',
      body: '{}',
    });
    await waitFor('the dead letter', async () =>
      (await cli(['jobs', 'failed'], env)).stdout.includes(receipt.id!),
    );
    // Another queue's job that exhausted its retries: an invoice.refund job whose data is not valid.
    const refundJob = await app.runtime.boss.send('invoice.refund', { refundId: 'bogus' }, { retryLimit: 0 });
    wakeWorkers(app.runtime.boss, 'invoice.refund');
    await waitFor('the refund dead letter', async () =>
      (await cli(['jobs', 'failed'], env)).stdout.includes(`invoice.refund  `),
    );
    const failed = await cli(['jobs', 'failed'], env);
    expect(failed.stdout).toMatch(
      new RegExp(`^webhook\\.process  \\S+  ${receipt.id}  .*gateway paypal is not configured`, 'm'),
    );
    expect(failed.stdout).toMatch(new RegExp(`^invoice\\.refund  \\S+  ${refundJob}  .*re_`, 'm'));
    expect(failed.stdout).toMatch(/2 dead letter\(s\)/);
    // Every queue's failures show in /metrics: attempts counted by the worker, and failed jobs kept by
    // pg-boss, counted at its maintenance pass: one now (the app's first comes late after its start).
    await app.runtime.boss.supervise();
    await waitFor('the failed refund job in /metrics', async () => {
      const metrics = await (await fetch(`${app.url}/metrics`)).text();
      return (
        /billhook_job_failures_total\{queue="invoice\.refund"\} 1\n/.test(metrics) &&
        /billhook_jobs_failed\{queue="invoice\.refund"\} 1\n/.test(metrics)
      );
    });

    expect((await cli(['jobs', 'retry'], env)).stdout).toMatch(
      /2 dead letter\(s\) queued again, 1 stored webhook\(s\) among them/,
    );
    // The webhook fails again at once; the refund job is back in its queue with a fresh set of
    // retries (a minute apart), so it is not dead again yet.
    await waitFor('the retried webhook to fail again', async () =>
      (await cli(['jobs', 'failed'], env)).stdout.includes('1 dead letter'),
    );
    const requeued = await app.runtime.boss.findJobs('invoice.refund', { data: { refundId: 'bogus' } });
    // The first job stays as it ended (failed); its redriven copy is waiting, running or retrying.
    expect(requeued.map((job) => job.state).filter((state) => state === 'failed')).toHaveLength(1);
    const copies = requeued.filter((job) => job.state !== 'failed');
    expect(copies).toHaveLength(1);
    expect(['created', 'active', 'retry']).toContain(copies[0]!.state);
    expect((await cli(['jobs', 'purge'], env)).stdout).toMatch(/1 dead letter\(s\) deleted/);
    expect((await cli(['jobs', 'failed'], env)).stdout).toMatch(/0 dead letter\(s\)/);
    // The webhook whose dead letter was deleted is given up, by the command: its exception names `cli`.
    const opened = await app.runtime.db
      .selectFrom('activities')
      .innerJoin('reconciliation_exceptions as x', 'x.id', 'activities.resource_id')
      .select(['activities.action', 'activities.actor'])
      .where('x.inbox_id', '=', receipt.id!)
      .execute();
    expect(opened).toEqual([{ action: 'reconciliation_exception.opened', actor: 'cli' }]);

    const replay = await cli(['replay', receipt.id!], env);
    expect(replay.stdout).toMatch(new RegExp(`${receipt.id}\\s+paypal\\s+X\\s+queued again`));
    expect((await cli(['replay', 'evt_nope'], env)).stderr).toMatch(/no event with id evt_nope/);
  });

  it('migrate reports what it applied, then that the database is up to date', async () => {
    const fresh = { ...env, DATABASE_URL: await createTestDatabase({ empty: true }) };
    const first = await cli(['migrate'], fresh);
    expect(first.stdout).toMatch(/^applied: 0001_foundation, 0002_transaction_polling/);
    const again = await cli(['migrate'], fresh);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/database is up to date/);
  });
});

describe('send-test-webhook to a gateway account', { timeout: 120_000 }, () => {
  const secretKey = randomBytes(32).toString('hex');
  let app: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    app = await startTestApp({ BILLHOOK_SECRET_KEY: secretKey, WEBHOOK_RETRY_LIMIT: '0' }, 'web');
    // The default account's secret differs from the account's: only the account's can pass.
    env = {
      DATABASE_URL: app.runtime.databaseUrl,
      BILLHOOK_SECRET_KEY: secretKey,
      STRIPE_WEBHOOK_SECRET,
      LOG_LEVEL: 'silent',
    };
  });
  afterAll(() => app.stop());

  const createAccount = async (body: Record<string, unknown>) => {
    const created = await app.api('POST', '/v1/gateway-accounts', { mode: 'test', ...body });
    expect(created.status).toBe(201);
    return created.body.id as string;
  };
  const inboxOf = (account: string) =>
    app.runtime.db
      .selectFrom('inbox')
      .select(['gateway', 'event_type', 'gateway_account'])
      .where('gateway_account', '=', account)
      .execute();

  it("signs with the account's webhook secret from the database and posts to its route", async () => {
    const stripe = await createAccount({
      gateway: 'stripe',
      name: 'CLI EU',
      credentials: { webhook_secrets: ['whsec_cli_account_only_0001'] },
    });
    const result = await cli(
      ['send-test-webhook', 'stripe', 'payment_intent.succeeded', '--url', app.url, '--account', stripe],
      env,
    );
    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(result.stdout).toMatch(/^stripe payment_intent.succeeded → HTTP 200 \{"received":true\}/);
    expect(await inboxOf(stripe)).toEqual([
      { gateway: 'stripe', event_type: 'payment_intent.succeeded', gateway_account: stripe },
    ]);

    const signatureKey = randomBytes(32).toString('hex').toUpperCase();
    const authorizenet = await createAccount({
      gateway: 'authorizenet',
      name: 'CLI B2B',
      credentials: {
        api_login_id: 'login_cli_0001',
        transaction_key: 'txkey_cli_0001',
        signature_key: signatureKey,
      },
    });
    const anet = await cli(
      [
        'send-test-webhook',
        'authorizenet',
        'net.authorize.payment.authcapture.created',
        '--transaction-id',
        '60123456789',
        '--url',
        app.url,
        '--account',
        authorizenet,
      ],
      env,
    );
    expect(anet.stdout).toMatch(/→ HTTP 200/);
    expect(await inboxOf(authorizenet)).toHaveLength(1);
    for (const output of [result, anet])
      expect(output.stdout + output.stderr).not.toMatch(/whsec_cli_account_only_0001|login_cli|txkey_cli/);
  });

  it('refuses an unknown account, one of another gateway and a missing key, posting nothing; posts to a disabled one', async () => {
    const stripe = await createAccount({
      gateway: 'stripe',
      name: 'CLI disabled',
      credentials: { webhook_secrets: ['whsec_cli_account_disabled_02'] },
    });
    const send = (gateway: string, account: string, extra: Record<string, string> = {}) =>
      cli(
        [
          'send-test-webhook',
          gateway,
          gateway === 'stripe' ? 'payment_intent.succeeded' : 'PAYMENT.CAPTURE.COMPLETED',
          '--url',
          app.url,
          '--account',
          account,
        ],
        { ...env, ...extra },
      );
    const unknown = await send('stripe', 'gwa_unknown');
    expect([unknown.code, unknown.stderr]).toEqual([
      1,
      expect.stringMatching(/no stripe gateway account gwa_unknown/),
    ]);
    expect((await send('paypal', stripe)).stderr).toMatch(/no paypal gateway account/);
    expect((await send('stripe', stripe, { BILLHOOK_SECRET_KEY: '' })).stderr).toMatch(/BILLHOOK_SECRET_KEY/);
    expect(await inboxOf(stripe)).toEqual([]);
    // A disabled account's webhooks are still received (money already in flight there is booked).
    expect((await app.api('POST', `/v1/gateway-accounts/${stripe}/disable`, {})).status).toBe(200);
    const disabled = await send('stripe', stripe);
    expect([disabled.code, disabled.stdout]).toEqual([0, expect.stringMatching(/→ HTTP 200/)]);
    expect(await inboxOf(stripe)).toEqual([
      { gateway: 'stripe', event_type: 'payment_intent.succeeded', gateway_account: stripe },
    ]);
  });
});
