import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CERT_FILE } from '../gateways/paypal/fixtures.ts';
import { startTestApp } from '../support/app.ts';
import { cli } from '../support/cli.ts';
import { createTestDatabase } from '../support/database.ts';
import { BIN, billhook, type Run } from '../support/process.ts';

const KEY = 'bh_lifecycle_admin_key_0123456789abcdef';

/** A TCP server holding a port on every interface, as another program would. */
async function occupyPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port };
}

describe('process lifecycle', () => {
  let databaseUrl: string;
  let taken: { server: Server; port: number };
  const runs: Run[] = [];
  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    taken = await occupyPort();
  });
  afterAll(async () => {
    for (const run of runs) if (run.child.exitCode === null) run.child.kill('SIGKILL');
    await new Promise((resolve) => taken.server.close(resolve));
  });

  // Issue #22 item 9: each used to crash with "Cannot read properties of null (reading 'port')", and
  // stub-stripe printed that it ran, then exited 0. The command's message and exit code, in-process.
  it.each([
    ['start', ['start'], 'PORT'],
    ['web', ['web'], 'PORT'],
    ['worker with METRICS_PORT', ['worker'], 'METRICS_PORT'],
  ])(
    '%s on a port in use says so and exits 1',
    async (_name, args, variable) => {
      const result = await cli(args, {
        DATABASE_URL: databaseUrl,
        BILLHOOK_ADMIN_KEY: KEY,
        LOG_LEVEL: 'warn',
        [variable]: String(taken.port),
      });
      const output = result.stdout + result.stderr;
      expect(result.code, output).toBe(1);
      expect(result.stderr).toContain(
        `billhook: port ${taken.port} is in use: stop what listens on it or set ${variable} to another port`,
      );
      expect(output).not.toMatch(/Cannot read properties/);
    },
    60_000,
  );

  // The process this time, through the bin shim `npx billhook` runs: a server that could not start
  // ends it with exit code 1 (main.ts), its message on stderr.
  it('stub-stripe on a port in use says so and exits 1 (bin/billhook.js)', async () => {
    const run = billhook(['stub-stripe', '--port', String(taken.port)], {}, false, BIN);
    runs.push(run);
    expect(await run.exited, run.output()).toBe(1);
    expect(run.output()).toContain(`billhook: port ${taken.port} is in use`);
    expect(run.output()).not.toContain('Stripe stub on');
  }, 180_000);

  // Issue #22 item 7: the PayPal test certificate's private key is in the repository.
  it('refuses PAYPAL_TEST_CERT_FILE with the live PayPal API, naming the variable', async () => {
    const result = await cli(['start'], {
      DATABASE_URL: databaseUrl,
      PORT: '0',
      BILLHOOK_ADMIN_KEY: KEY,
      LOG_LEVEL: 'warn',
      PAYPAL_API_BASE: 'https://api-m.paypal.com',
      PAYPAL_TEST_CERT_FILE: TEST_CERT_FILE,
    });
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stderr).toMatch(/PAYPAL_TEST_CERT_FILE: must not be set with PayPal's live API/);
  }, 180_000);

  // The warning comes from startRuntime, with the logger `start` gives it (serve in program.ts): an
  // app started in this process shows it as the process would, without a process of its own (whose
  // JSON lines on stdout and exit 0 on SIGTERM test/cli/stdout.test.ts and graceful.test.ts cover).
  it('warns at start when PAYPAL_TEST_CERT_FILE is set (sandbox)', async () => {
    const app = await startTestApp({ DATABASE_URL: databaseUrl, PAYPAL_TEST_CERT_FILE: TEST_CERT_FILE });
    try {
      const warning = app.logs.find((line) => String(line.msg).startsWith('PAYPAL_TEST_CERT_FILE is set'));
      expect(warning).toMatchObject({ level: 40, file: TEST_CERT_FILE });
    } finally {
      await app.stop();
    }
  }, 180_000);
});
