import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database.ts';
import { listeningPort, MAIN } from '../support/process.ts';
import { deliverStripe, paymentIntentSucceeded } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const KEY = 'bh_stdout_admin_key_0123456789abcdef';
const SECRET = 'whsec_stdout_secret';

/** Every JSON line of `text` parsed; throws naming the first line that is not JSON. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`a stdout line is not JSON: ${line}`);
      }
    });
}

/**
 * Issue #22 item 12: `billhook start`'s stdout is JSON lines only (the start banner is on stderr),
 * a 4xx access line carries its error code, and a failed gateway call and a webhook for an unknown
 * payment each leave a warn line with the ids to act on.
 */
describe('billhook start: stdout is JSON lines, failures are logged', { timeout: 120_000 }, () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('keeps stdout to JSON lines and logs 4xx codes, a gateway that does not answer and an unknown payment', async () => {
    let stdout = '';
    let stderr = '';
    const started = spawn(process.execPath, [MAIN, 'start'], {
      env: {
        ...process.env,
        DATABASE_URL: await createTestDatabase(),
        // Any free port, bound by billhook itself: the test reads it from the start banner.
        PORT: '0',
        LOG_LEVEL: 'info',
        BILLHOOK_ADMIN_KEY: KEY,
        STRIPE_WEBHOOK_SECRET: SECRET,
        STRIPE_SECRET_KEY: 'sk_test_stdout_secret',
        // Port 0, on which nothing can listen: Stripe's API refuses the connection.
        STRIPE_API_BASE: 'http://127.0.0.1:0',
        WEBHOOK_RETRY_LIMIT: '0',
        BILLING_SWEEPS: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    started.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    started.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => started.once('exit', (code) => resolve(code)));
    const port = await listeningPort(
      () => stdout + stderr,
      () => started.exitCode,
    );
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      'billhook to be ready',
      async () => {
        if (started.exitCode !== null) throw new Error(`billhook exited: ${stderr}`);
        return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200;
      },
      60_000,
    );
    await waitFor('the start banner', async () => stderr.includes(`billhook all running`));

    const api = async (
      method: string,
      path: string,
      body?: unknown,
      key = KEY,
    ): Promise<{ status: number; body: any }> => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    };
    expect((await api('GET', '/v1/invoices/inv_missing')).status).toBe(404);
    expect((await api('GET', '/v1/invoices', undefined, 'bh_not_a_key')).status).toBe(401);
    expect((await api('POST', '/v1/customers', { email: 'not an email' })).status).toBe(422);

    const customer = (await api('POST', '/v1/customers', { email: 'ada@example.com' })).body;
    await api('POST', '/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_1RWJtyQ8iJWBZFaM7VUymbOi',
      gateway_customer_id: 'cus_SRCIP043oBsNpV',
    });
    const draft = (
      await api('POST', '/v1/invoices', {
        customer: customer.id,
        currency: 'eur',
        lines: [{ description: 'Pro plan', amount: 4620, quantity: 1 }],
      })
    ).body;
    await api('POST', `/v1/invoices/${draft.id}/finalize`);
    const charged = await api('POST', `/v1/invoices/${draft.id}/charge`, {});
    expect(charged.body.transaction.status).toBe('unknown');

    const delivered = await deliverStripe(
      base,
      paymentIntentSucceeded({
        eventId: 'evt_stdout_unknown',
        intentId: 'pi_stdout_unknown',
        amount: 1000,
        currency: 'usd',
        reference: 'txn_stdout_unknown',
      }),
      { secret: SECRET },
    );
    expect(delivered.status).toBe(200);
    await waitFor('the unknown payment to be logged', async () =>
      stdout.includes('webhook raised a reconciliation exception'),
    );

    started.kill('SIGTERM');
    expect(await exited).toBe(0);
    const lines = jsonLines(stdout);
    const access = (path: string, status: number) =>
      lines.find(
        (l) =>
          (l.req as { url?: string } | undefined)?.url === path &&
          (l.res as { statusCode?: number } | undefined)?.statusCode === status,
      );
    expect(access('/v1/invoices/inv_missing', 404)).toMatchObject({
      level: 40,
      errorCode: 'invoice_not_found',
    });
    expect(access('/v1/invoices', 401)).toMatchObject({ level: 40, errorCode: 'invalid_api_key' });
    expect(access('/v1/customers', 422)).toMatchObject({ level: 40, errorCode: 'validation_failed' });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        msg: 'gateway call failed',
        gateway: 'stripe',
        operation: 'charge',
        transactionId: charged.body.transaction.id,
        invoiceId: draft.id,
        outcome: 'unknown',
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        msg: 'webhook raised a reconciliation exception',
        gateway: 'stripe',
        gatewayEventId: 'evt_stdout_unknown',
        references: [expect.objectContaining({ gatewayTransactionId: 'pi_stdout_unknown' })],
        outcome: 'unknown_entity',
      }),
    );
    // The banner is for a person: on stderr, not mixed into the JSON lines.
    expect(stdout).not.toContain('billhook all running');
    expect(stdout).not.toContain('sk_test_stdout_secret');
  });
});
