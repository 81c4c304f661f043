import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRIPE_WEBHOOK_SECRET, startTestApp, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/wait.ts';

const run = promisify(execFile);
const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

/** Runs `billhook …` in a child process with `env`; never throws, returns the exit code and output. */
async function cli(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('billhook CLI', () => {
  let app: TestApp;
  let env: Record<string, string>;
  beforeAll(async () => {
    app = await startTestApp({ WEBHOOK_RETRY_LIMIT: '0' });
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
    expect(listed.stdout).not.toContain(secret!);

    expect((await cli(['keys', 'revoke', id!], env)).code).toBe(0);
    expect((await app.api('GET', '/v1/events', undefined, secret)).status).toBe(401);
    const again = await cli(['keys', 'revoke', id!], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no api key with id/);
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
