import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded.ts';
import { createTestDatabase } from '../support/database.ts';
import { stripeFixture } from '../support/stripe.ts';
import { waitFor } from '../support/wait.ts';

const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const KEY = 'bh_graceful_admin_key_0123456789abcdef';

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
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN, 'start'], {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        PORT: String(port),
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
  }, 90_000);
});
