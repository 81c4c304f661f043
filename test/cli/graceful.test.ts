import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signStripePayload } from '../../src/gateways/stripe/test-events.ts';
import { createTestDatabase } from '../support/database.ts';
import { listeningPort } from '../support/process.ts';
import { paymentIntentSucceeded, stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const KEY = 'bh_graceful_admin_key_0123456789abcdef';
const SECRET = 'whsec_graceful_secret';

/**
 * `billhook <role>` on `databaseUrl` and any free port (it binds port 0 and prints the port); resolves
 * once it answers /readyz 200, with that port.
 */
async function startBillhook(
  role: string,
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; port: number; output: () => string; exited: Promise<number | null> }> {
  let output = '';
  const child = spawn(process.execPath, [MAIN, role], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: '0',
      LOG_LEVEL: 'warn',
      BILLHOOK_ADMIN_KEY: KEY,
      STRIPE_WEBHOOK_SECRET: SECRET,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdout?.on('data', (chunk) => {
    output = (output + chunk).slice(-10_000);
  });
  child.stderr?.on('data', (chunk) => {
    output = (output + chunk).slice(-10_000);
  });
  const port = await listeningPort(
    () => output,
    () => child.exitCode,
  ).catch((error: Error) => {
    child.kill('SIGKILL');
    throw error;
  });
  await waitFor(
    'billhook to be ready',
    async () => {
      if (child.exitCode !== null) throw new Error(`billhook exited with ${child.exitCode}`);
      return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200;
    },
    60_000,
  ).catch((error: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${error.message}; its output:\n${output}`);
  });
  return { child, port, output: () => output, exited };
}

/** PRODUCT.md §7: SIGTERM stops taking requests and jobs, finishes what is in flight, then exits. */
describe('graceful shutdown on SIGTERM', () => {
  let slowStripe: Server;
  let answered: () => void;
  const chargeArrived = new Promise<void>((resolve) => {
    answered = resolve;
  });
  beforeAll(async () => {
    // A Stripe stand-in that takes 1.5 s to answer a charge, so SIGTERM lands while it is in flight.
    const intent = stripeFixture('webhook.payment_intent.succeeded.json').data.object;
    slowStripe = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        answered();
        const params = new URLSearchParams(body);
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              ...intent,
              id: 'pi_graceful',
              amount: Number(params.get('amount')),
              currency: params.get('currency'),
              metadata: { billhook_reference: params.get('metadata[billhook_reference]') },
            }),
          );
        }, 1500);
      });
    });
    await new Promise<void>((resolve) => slowStripe.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise((resolve) => slowStripe.close(resolve)));

  it('finishes the charge in flight, answers it, and exits 0', async () => {
    const databaseUrl = await createTestDatabase();
    const child = spawn(process.execPath, [MAIN, 'start'], {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        PORT: '0',
        LOG_LEVEL: 'warn',
        BILLHOOK_ADMIN_KEY: KEY,
        STRIPE_SECRET_KEY: 'sk_test_graceful',
        STRIPE_API_BASE: `http://127.0.0.1:${(slowStripe.address() as AddressInfo).port}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (chunk) => {
      output = (output + chunk).slice(-10_000);
    });
    child.stderr?.on('data', (chunk) => {
      output = (output + chunk).slice(-10_000);
    });
    const port = await listeningPort(
      () => output,
      () => child.exitCode,
    );
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      'billhook to be ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`billhook exited with ${child.exitCode}: ${output}`);
        return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200;
      },
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; its output:\n${output}`);
    });
    const api = async (path: string, body?: unknown) =>
      (
        await fetch(`${base}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify(body ?? {}),
        })
      ).json() as Promise<any>;
    const customer = await api('/v1/customers', { email: 'term@example.com' });
    await api('/v1/payment-methods', {
      customer: customer.id,
      gateway: 'stripe',
      gateway_token: 'pm_card_visa',
    });
    const invoice = await api('/v1/invoices', {
      customer: customer.id,
      currency: 'eur',
      lines: [{ description: 'x', amount: 4620 }],
    });
    await api(`/v1/invoices/${invoice.id}/finalize`);

    const charging = fetch(`${base}/v1/invoices/${invoice.id}/charge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: '{}',
    });
    await chargeArrived;
    child.kill('SIGTERM');
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

    const answer = await charging;
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as any).transaction).toMatchObject({
      status: 'succeeded',
      gateway_transaction_id: 'pi_graceful',
    });
    expect(await exited).toBe(0);
    // New requests are refused once it stopped.
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    const db = new pg.Client(databaseUrl);
    await db.connect();
    const { rows } = await db.query('SELECT status FROM invoices WHERE id = $1', [invoice.id]);
    await db.end();
    expect(rows).toEqual([{ status: 'PAID' }]);
  }, 180_000);

  // Issue #22 item 5: under keep-alive load the server kept answering on the open connections and
  // SIGTERM never finished.
  it('under keep-alive webhook load: stops taking requests, exits 0 within the deadline, and every acknowledged webhook is stored', async () => {
    const databaseUrl = await createTestDatabase();
    const billhook = await startBillhook('web', databaseUrl);
    const port = billhook.port;
    const CONNECTIONS = 32;
    let signalledAt = 0;
    const acknowledged = new Set<string>();
    let acknowledgedAfterSignal = 0;
    let n = 0;
    const load = autocannon(
      {
        url: `http://127.0.0.1:${port}`,
        connections: CONNECTIONS,
        duration: 120,
        requests: [
          {
            method: 'POST',
            path: '/webhooks/stripe',
            setupRequest: (request, context) => {
              const eventId = `evt_keepalive_${n++}`;
              const body = paymentIntentSucceeded({
                eventId,
                intentId: `pi_keepalive_${n}`,
                amount: 1000,
                currency: 'usd',
                reference: `txn_keepalive_${n}`,
              });
              (context as { eventId?: string }).eventId = eventId;
              request.body = body;
              request.headers = {
                'content-type': 'application/json',
                'stripe-signature': signStripePayload(body, SECRET),
              };
              return request;
            },
            onResponse: (status, _body, context) => {
              if (status !== 200) return;
              acknowledged.add((context as { eventId: string }).eventId);
              if (signalledAt) acknowledgedAfterSignal++;
            },
          },
        ],
      },
      () => undefined,
    );
    await waitFor('webhooks acknowledged under load', async () => acknowledged.size >= 500, 60_000);
    signalledAt = Date.now();
    billhook.child.kill('SIGTERM');
    const code = await Promise.race([
      billhook.exited,
      new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 20_000)),
    ]);
    const tookMs = Date.now() - signalledAt;
    load.stop();
    if (code === 'still running') billhook.child.kill('SIGKILL');
    expect(code, billhook.output()).toBe(0);
    // The deadline (SHUTDOWN_TIMEOUT_SECONDS, 10 s) was not needed: the connections closed at once.
    expect(tookMs).toBeLessThan(10_000);
    // The server stopped taking requests: a connection is closed once idle, or its next request is
    // answered with Connection: close (before, 11,545 more were answered). Counted by the client,
    // so answers already on their way when the signal landed (the process handles it after the
    // event loop's current turn; a busy machine delays that) count too: a few per connection.
    expect(acknowledgedAfterSignal).toBeLessThanOrEqual(8 * CONNECTIONS);
    // Nothing acknowledged is lost: every 200 is a stored inbox row (with its job, same transaction).
    const db = new pg.Client(databaseUrl);
    await db.connect();
    const { rows } = await db.query<{ id: string }>(
      `SELECT gateway_event_id AS id FROM inbox WHERE gateway = 'stripe'`,
    );
    await db.end();
    const stored = new Set(rows.map((row) => row.id));
    expect([...acknowledged].filter((id) => !stored.has(id))).toEqual([]);
  }, 120_000);

  it('exits within SHUTDOWN_TIMEOUT_SECONDS when a request never finishes', async () => {
    const databaseUrl = await createTestDatabase();
    const billhook = await startBillhook('web', databaseUrl, { SHUTDOWN_TIMEOUT_SECONDS: '2' });
    const port = billhook.port;
    // A client that sends half of a webhook's body and then nothing.
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => undefined);
    // `Expect: 100-continue`: Node's server answers `100 Continue` once it has the request's headers,
    // so the test knows the request is in flight before it signals (on busy cores that takes a while).
    const continued = new Promise<void>((resolve) =>
      socket.on('data', (chunk) => {
        if (String(chunk).startsWith('HTTP/1.1 100 Continue')) resolve();
      }),
    );
    socket.write(
      'POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n{"id":',
    );
    await continued;
    const signalledAt = Date.now();
    billhook.child.kill('SIGTERM');
    const code = await Promise.race([
      billhook.exited,
      new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 15_000)),
    ]);
    if (code === 'still running') billhook.child.kill('SIGKILL');
    expect(code, billhook.output()).toBe(0);
    // 2 s of deadline, then closing the pools; far below the 300 s Node would wait for the body.
    expect(Date.now() - signalledAt).toBeLessThan(8_000);
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(1_900);
    await closed;
    expect(billhook.output()).toContain('shutdown deadline reached');
  }, 180_000);
});
