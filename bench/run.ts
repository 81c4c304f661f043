/**
 * `npm run bench`: billhook's performance on this machine (PRODUCT.md §9), as ratios measured in one
 * run. Starts its own embedded PostgreSQL and billhook processes, drives signed Stripe webhooks over
 * HTTP with autocannon, and writes one JSON document to bench/results/latest.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { createDb } from '../src/db/database.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { newId } from '../src/db/ids.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { startStripeStub } from '../src/gateways/stripe/stub.ts';
import { signStripePayload } from '../src/gateways/stripe/test-events.ts';

const SECRET = 'whsec_bench';
const ADMIN_KEY = 'bh_bench_admin_key_0123456789abcdef';
const MAIN = path.resolve(import.meta.dirname, '../src/cli/main.ts');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const BACKLOG = 10_000;
const SEEDED = 60_000;

const template = JSON.parse(
  readFileSync(
    path.resolve(import.meta.dirname, '../test/fixtures/stripe/webhook.payment_intent.succeeded.json'),
    'utf8',
  ),
);

// A realistic payment_intent.succeeded, serialised once with placeholders for its ids, so making an
// event costs the load generator a string concatenation, not a JSON.stringify.
const [head, middle, tail] = JSON.stringify({
  ...template,
  id: '\u0000event',
  data: {
    object: {
      ...template.data.object,
      id: '\u0000payment',
      amount: 1000,
      amount_received: 1000,
      currency: 'usd',
      metadata: {},
    },
  },
}).split(/"\\u0000(?:event|payment)"/) as [string, string, string];

let sequence = 0;
/** The body of a new event (unique event id) for one of the seeded payments. */
function eventBody(): string {
  const n = sequence++;
  return `${head}"evt_bench_${process.pid}_${n}"${middle}"pi_bench_${n % SEEDED}"${tail}`;
}

/** A signed delivery of a new event. */
function signedEvent(): { body: string; signature: string } {
  const body = eventBody();
  return { body, signature: signStripePayload(body, SECRET) };
}

function freePort(server: Server): number {
  return (server.address() as AddressInfo).port;
}

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never became ready`);
}

function startBillhook(command: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [MAIN, command], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

/** A process's peak (`VmHWM`) or current (`VmRSS`) resident set, MB. */
function rssMb(pid: number | undefined, which: 'VmHWM' | 'VmRSS' = 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(new RegExp(`${which}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
}

/** Samples `pid`'s resident set every second while `work` runs. */
async function sampleRss<T>(pid: number | undefined, work: Promise<T>): Promise<{ result: T; mb: number[] }> {
  const mb: number[] = [];
  const timer = setInterval(() => mb.push(rssMb(pid, 'VmRSS')), 1000);
  try {
    return { result: await work, mb };
  } finally {
    clearInterval(timer);
  }
}

type CpuTicks = { total: number; steal: number };

/** The machine's CPU time so far, in clock ticks: all of it, and what the hypervisor took (steal). */
function cpuTicks(): CpuTicks | undefined {
  try {
    // /proc/stat's first line: cpu user nice system idle iowait irq softirq steal guest guest_nice.
    const ticks = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1, 9)
      .map(Number);
    return { total: ticks.reduce((a, b) => a + b, 0), steal: ticks[7] ?? 0 };
  } catch {
    return undefined; // not Linux
  }
}

/**
 * Records under `name` in `steal` the share of the machine's CPU time (%) the hypervisor took from
 * this VM since `before`: a run with much steal measured a starved machine.
 */
function recordSteal(steal: Record<string, number>, name: string, before: CpuTicks | undefined): void {
  const after = cpuTicks();
  if (before && after && after.total > before.total)
    steal[name] = Math.round((100 * (after.steal - before.steal)) / (after.total - before.total));
}

/** Runs `work`, recording its steal (see `recordSteal`). */
async function measuringSteal<T>(
  steal: Record<string, number>,
  name: string,
  work: () => Promise<T>,
): Promise<T> {
  const before = cpuTicks();
  const result = await work();
  recordSteal(steal, name, before);
  return result;
}

interface Load {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
}

async function load(
  url: string,
  connections: number,
  seconds: number,
  path: string,
  amount?: number,
): Promise<Load> {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    amount,
    requests: [
      {
        method: 'POST',
        path,
        // autocannon hands each request a fresh copy of its options: filled in place rather than
        // copied again, the load generator leaves more of the two cores to what it measures.
        setupRequest: (request) => {
          const { body, signature } = signedEvent();
          request.body = body;
          request.headers = { 'content-type': 'application/json', 'stripe-signature': signature };
          return request;
        },
      },
    ],
  });
  const ok = result['2xx'];
  return {
    requestsPerSecond: Math.round(ok / (result.duration || seconds)),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx + result.errors + result.timeouts,
  };
}

/**
 * Single-row autocommit INSERTs of the same bodies from `clients` connections for `seconds`: into the
 * inbox table itself (the rows ingest stores, with the same indexes and storage), or into a bare
 * table with one unique index.
 */
async function rawInsertRate(
  url: string,
  clients: number,
  seconds: number,
  into: 'inbox' | 'bare',
): Promise<number> {
  const setup = new pg.Client(url);
  await setup.connect();
  await setup.query('CREATE TABLE IF NOT EXISTS bench_raw (gateway text, event_id text UNIQUE, body text)');
  await setup.end();
  let done = 0;
  const deadline = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      const client = new pg.Client(url);
      await client.connect();
      while (Date.now() < deadline) {
        const body = eventBody();
        const eventId = `raw_${into}_${sequence}`;
        if (into === 'inbox')
          await client.query(
            'INSERT INTO inbox (id, gateway, gateway_event_id, event_type, body) VALUES ($1, $2, $3, $4, $5)',
            [newId('evt'), 'stripe', eventId, 'payment_intent.succeeded', body],
          );
        else
          await client.query('INSERT INTO bench_raw (gateway, event_id, body) VALUES ($1, $2, $3)', [
            'stripe',
            eventId,
            body,
          ]);
        done++;
      }
      await client.end();
    }),
  );
  return Math.round(done / seconds);
}

async function main() {
  const dir = mkdtempSync(path.join(tmpdir(), 'billhook-bench-'));
  const postgres = await startEmbeddedPostgres(dir);
  const admin = new pg.Client(postgres.adminUrl);
  await admin.connect();
  await admin.query(`CREATE DATABASE billhook_bench OWNER ${postgres.appRole}`);
  await admin.end();
  const url = postgres.url.replace(/\/billhook$/, '/billhook_bench');
  const db = createDb(url);
  await migrateToLatest(db);

  // Seed: one customer and payment method; SEEDED pending charges on open invoices for the backlog to settle,
  // and open invoices without an attempt for the charge benchmark.
  const seed = new pg.Client(url);
  await seed.connect();
  await seed.query(`
    INSERT INTO customers (id, email) VALUES ('cus_bench', 'bench@example.com');
    INSERT INTO payment_methods (id, customer_id, gateway, gateway_token, is_default) VALUES ('pm_bench', 'cus_bench', 'stripe', 'pm_card_visa', true);
    INSERT INTO invoices (id, customer_id, currency, status, total, amount_due)
      SELECT 'inv_bench_' || i, 'cus_bench', 'USD', 'OPEN', 1000, 1000 FROM generate_series(0, ${SEEDED + 20_000 - 1}) i;
    INSERT INTO transactions (id, invoice_id, customer_id, payment_method_id, gateway, gateway_transaction_id, amount, currency, status)
      SELECT 'txn_bench_' || i, 'inv_bench_' || i, 'cus_bench', 'pm_bench', 'stripe', 'pi_bench_' || i, 1000, 'USD', 'pending'
      FROM generate_series(0, ${SEEDED - 1}) i;
  `);

  const stub = await startStripeStub(0, 'succeeded');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const env = {
    DATABASE_URL: url,
    PORT: String(port),
    LOG_LEVEL: 'warn',
    STRIPE_WEBHOOK_SECRET: SECRET,
    STRIPE_SECRET_KEY: 'sk_bench',
    STRIPE_API_BASE: `http://127.0.0.1:${freePort(stub)}`,
    BILLHOOK_ADMIN_KEY: ADMIN_KEY,
    BILLHOOK_BENCH_ROUTES: '1',
    // The charge run is one API key at hundreds of requests a second.
    API_RATE_LIMIT_PER_MINUTE: '1000000',
  };
  const base = `http://127.0.0.1:${port}`;
  const web = startBillhook('web', env);
  await waitReady(base);

  const steal: Record<string, number> = {};
  const verifyOnly = await measuringSteal(steal, 'verify_only_64', () =>
    load(base, 64, SECONDS, '/bench/verify-only/stripe'),
  );
  const ingest: Record<string, Load> = {};
  for (const connections of [1, 16])
    ingest[connections] = await measuringSteal(steal, `ingest_${connections}`, () =>
      load(base, connections, SECONDS, '/webhooks/stripe'),
    );
  // Under sustained load the web process's memory levels off: its RSS each second of the 64-connection run.
  const sustained = await measuringSteal(steal, 'ingest_64', () =>
    sampleRss(web.pid, load(base, 64, SECONDS, '/webhooks/stripe')),
  );
  ingest[64] = sustained.result;
  const rawInsert = await measuringSteal(steal, 'raw_insert', () => rawInsertRate(url, 64, SECONDS, 'inbox'));
  const rawInsertBare = await measuringSteal(steal, 'raw_insert_bare_table', () =>
    rawInsertRate(url, 64, SECONDS, 'bare'),
  );

  // Reconcile: a fresh backlog of BACKLOG events for distinct pending charges, drained by one worker process.
  await seed.query(`DELETE FROM inbox; DELETE FROM pgboss.job WHERE name = 'webhook.process'`);
  // The ingest runs left ~100k dead rows: vacuum them now, so autovacuum does not run during the drain.
  await seed.query('VACUUM ANALYZE inbox');
  await seed.query('VACUUM ANALYZE pgboss.job');
  sequence = 0;
  await load(base, 64, 120, '/webhooks/stripe', BACKLOG);
  const drainStart = cpuTicks();
  const worker = startBillhook('worker', env);
  const started = Date.now();
  let pending = 1;
  while (pending > 0 && Date.now() - started < 300_000) {
    // Every half second, the webhook.process jobs still to run (a few hundred rows): counting the
    // inbox instead scanned it, 10-15 ms of PostgreSQL a time, 3% of the database's CPU during the
    // drain it measures. The drain time itself comes from the rows' processed_at, not from this loop.
    await new Promise((r) => setTimeout(r, 500));
    const { rows } = await seed.query(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'webhook.process' AND state IN ('created', 'retry', 'active')`,
    );
    pending = rows[0].n;
  }
  const { rows: done } = await seed.query(
    `SELECT count(*)::int AS n FROM inbox WHERE status NOT IN ('received', 'retrying')`,
  );
  const processed: number = done[0].n;
  // From the first event reconciled to the last: the worker process's own start-up is not part of it.
  const { rows: span } = await seed.query(
    `SELECT extract(epoch FROM max(processed_at) - min(processed_at))::float8 AS s FROM inbox WHERE processed_at IS NOT NULL`,
  );
  const drainSeconds = Math.max(span[0].s, 0.001);
  const wallSeconds = (Date.now() - started) / 1000;
  recordSteal(steal, 'drain', drainStart);
  const { rows: postings } = await seed.query(
    `SELECT count(*)::int AS n FROM journal_entries WHERE source_type = 'transaction'`,
  );

  // Charges: open invoices charged over the API against the local Stripe stub.
  let next = SEEDED;
  const charge = await autocannon({
    url: base,
    connections: 16,
    duration: SECONDS,
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => ({
          ...request,
          path: `/v1/invoices/inv_bench_${next++}/charge`,
          headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
          body: '{}',
        }),
      },
    ],
  });

  const result = {
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    seconds_per_run: SECONDS,
    ingest: Object.fromEntries(Object.entries(ingest).map(([c, l]) => [`${c}_connections`, l])),
    baselines: {
      verify_only_64: verifyOnly,
      raw_single_row_insert_into_inbox_64_clients_per_s: rawInsert,
      raw_single_row_insert_into_bare_table_64_clients_per_s: rawInsertBare,
    },
    ratios_at_64: {
      ingest_over_verify_only: Number(
        (ingest[64]!.requestsPerSecond / verifyOnly.requestsPerSecond).toFixed(2),
      ),
      ingest_over_raw_insert: Number((ingest[64]!.requestsPerSecond / rawInsert).toFixed(2)),
      ingest_over_raw_insert_bare_table: Number((ingest[64]!.requestsPerSecond / rawInsertBare).toFixed(2)),
    },
    reconcile: {
      backlog: BACKLOG,
      drained: processed,
      drain_seconds: Number(drainSeconds.toFixed(2)),
      drain_seconds_with_worker_start: Number(wallSeconds.toFixed(2)),
      events_per_s: Math.round(processed / drainSeconds),
      payments_posted: postings[0].n,
    },
    charge: {
      invoices_charged_per_s: Math.round(charge['2xx'] / (charge.duration || SECONDS)),
      non2xx: charge.non2xx,
    },
    // Per run, the share of the machine's CPU time the hypervisor took (steal): compare runs with little.
    cpu_steal_pct: steal,
    peak_rss_mb: { web: rssMb(web.pid), worker: rssMb(worker.pid) },
    web_rss_mb_each_second_at_64_connections: sustained.mb,
  };

  web.kill('SIGTERM');
  worker.kill('SIGTERM');
  await Promise.all([web, worker].map((c) => new Promise((r) => c.once('exit', r))));
  await seed.end();
  await db.destroy();
  stub.close();
  await postgres.stop();
  rmSync(dir, { recursive: true, force: true });

  const out = path.resolve(import.meta.dirname, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

await main();
