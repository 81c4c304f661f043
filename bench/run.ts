/**
 * `npm run bench`: billhook's performance on this machine (PRODUCT.md §9), as ratios measured in one
 * run. Starts its own embedded PostgreSQL and billhook's `web` and `worker` processes with
 * production defaults (it prints every setting it changes), drives signed Stripe webhooks over HTTP
 * with autocannon, measures reconciliation (a 10,000-webhook backlog from a standing start) and the
 * end-to-end run (webhooks at half the ingest rate with charges and renewals alongside), and writes
 * one JSON document to bench/results/latest.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { createDb } from '../src/db/database.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../src/db/embedded.ts';
import { newId } from '../src/db/ids.ts';
import { migrateToLatest } from '../src/db/migrate.ts';
import { startStripeStub } from '../src/gateways/stripe/stub.ts';
import { signStripePayload } from '../src/gateways/stripe/test-events.ts';
import { type ProfileSummary, summarizeProfile } from './cpu-profile.ts';
import { runEndToEnd } from './end-to-end.ts';
import { busyCpuSeconds, type CpuTicks, cpuTicks, processCpuSeconds, rssMb } from './proc.ts';

const SECRET = 'whsec_bench';
const ADMIN_KEY = 'bh_bench_admin_key_0123456789abcdef';
const MAIN = path.resolve(import.meta.dirname, '../src/cli/main.ts');
/** The bench's own knobs (environment), each printed with the result when set. */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const E2E_SECONDS = Number(process.env.BENCH_E2E_SECONDS ?? 60);
const E2E_CHARGES_PER_S = Number(process.env.BENCH_E2E_CHARGES_PER_S ?? 20);
const E2E_RENEWALS_PER_S = Number(process.env.BENCH_E2E_RENEWALS_PER_S ?? 20);
/**
 * The end-to-end run's webhook rate as a share of the 64-connection ingest rate: 0.5 by default (the
 * target of PRODUCT §9); a smaller share measures the lag where the two cores are not saturated.
 */
const E2E_SHARE_OF_INGEST = Number(process.env.BENCH_E2E_SHARE_OF_INGEST ?? 0.5);
/** BENCH_PROFILE=1: PostgreSQL records each statement's calls and time during the drain (pg_stat_statements). */
const PROFILE = process.env.BENCH_PROFILE === '1';
const BACKLOG = 10_000;
const SEEDED = 60_000;
/** Seconds between the sweeps the end-to-end run sends (their schedule is one a minute). */
const E2E_SWEEP_EVERY_SECONDS = 5;

/**
 * billhook settings the bench changes from their defaults, and why. Everything else is the default
 * (LOG_LEVEL info, each process's log written to a file as a log collector would read it), plus the
 * deployment's own values (database, port, Stripe keys and API base, admin key), which have none.
 */
const CHANGED_SETTINGS = {
  BILLHOOK_BENCH_ROUTES: ['1', 'serves POST /bench/verify-only/:gateway, the verify-only baseline'],
  API_RATE_LIMIT_PER_MINUTE: [
    '1000000',
    'default 600 a minute per API key: the charge runs are one key at up to hundreds a second',
  ],
} as const;

/** PostgreSQL settings the bench changes from the embedded cluster's (billhook's defaults), and why. */
const POSTGRES_SETTINGS: Record<string, readonly [string, string]> = {
  track_commit_timestamp: ['on', 'the end-to-end lag and the drain read each transaction’s commit time'],
  ...(PROFILE
    ? {
        shared_preload_libraries: ['pg_stat_statements', 'BENCH_PROFILE=1: statement counts and times'],
        'pg_stat_statements.track_planning': ['on', 'BENCH_PROFILE=1: planning time per statement'],
      }
    : {}),
};

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

/** The body of event `eventId`: payment intent `paymentId` (a seeded pending payment) succeeded. */
function stripeEventBody(eventId: string, paymentId: string): string {
  return `${head}"${eventId}"${middle}"${paymentId}"${tail}`;
}

let sequence = 0;
/** The body of a new event (unique event id) for one of the seeded payments. */
function eventBody(): string {
  const n = sequence++;
  return stripeEventBody(`evt_bench_${process.pid}_${n}`, `pi_bench_${n % SEEDED}`);
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

/**
 * Starts `billhook <command>` with `env` (and `nodeOptions` for node itself); its log (stdout, JSON
 * lines) goes to `logFile` as a production process's goes to its log collector.
 */
function startBillhook(
  command: string,
  env: Record<string, string>,
  logFile: string,
  nodeOptions: string[] = [],
): ChildProcess {
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...nodeOptions, MAIN, command], {
    env: { ...process.env, ...env },
    stdio: ['ignore', log, 'inherit'],
  });
  closeSync(log);
  return child;
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

/**
 * Starts the embedded PostgreSQL in `dir` with `POSTGRES_SETTINGS` (written with ALTER SYSTEM, then
 * the cluster restarted, since `track_commit_timestamp` takes effect only at a start).
 */
async function startPostgres(dir: string): Promise<EmbeddedDatabase> {
  const first = await startEmbeddedPostgres(dir);
  const admin = new pg.Client(first.adminUrl);
  await admin.connect();
  for (const [name, [value]] of Object.entries(POSTGRES_SETTINGS))
    await admin.query(`ALTER SYSTEM SET ${name} = '${value}'`);
  await admin.end();
  await first.stop();
  return startEmbeddedPostgres(dir);
}

/** The settings the bench changed and its own knobs, as printed at the start and in the result. */
function settingsReport() {
  const knobs = Object.fromEntries(
    [
      'BENCH_SECONDS',
      'BENCH_E2E_SECONDS',
      'BENCH_E2E_CHARGES_PER_S',
      'BENCH_E2E_RENEWALS_PER_S',
      'BENCH_E2E_SHARE_OF_INGEST',
      'BENCH_PROFILE',
    ].flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name]]])),
  );
  return {
    processes:
      'web and worker, separate (as the Procfile runs them), LOG_LEVEL info (default), logs to files',
    billhook_changed_from_defaults: Object.fromEntries(
      Object.entries(CHANGED_SETTINGS).map(([name, [value, why]]) => [name, `${value}: ${why}`]),
    ),
    postgresql_changed_from_defaults: Object.fromEntries(
      Object.entries(POSTGRES_SETTINGS).map(([name, [value, why]]) => [name, `${value}: ${why}`]),
    ),
    driver: [
      `end to end: subscription.renew and invoice.charge jobs sent every ${E2E_SWEEP_EVERY_SECONDS} s besides their one-a-minute schedule, so renewals are invoiced and charged through the run`,
    ],
    bench_overrides: knobs,
  };
}

/** The machine's load averages (1, 5 and 15 minutes), two decimals: other work sharing the cores. */
const loadAverages = () => loadavg().map((n) => Number(n.toFixed(2)));

async function main() {
  const loadAtStart = loadAverages();
  const settings = settingsReport();
  process.stderr.write(`bench: settings changed from the defaults: ${JSON.stringify(settings, null, 2)}\n`);
  const dir = mkdtempSync(path.join(tmpdir(), 'billhook-bench-'));
  const postgres = await startPostgres(path.join(dir, 'pg'));
  const admin = new pg.Client(postgres.adminUrl);
  await admin.connect();
  await admin.query(`CREATE DATABASE billhook_bench OWNER ${postgres.appRole}`);
  await admin.end();
  const url = postgres.url.replace(/\/billhook$/, '/billhook_bench');
  const benchAdmin = new pg.Client(postgres.adminUrl.replace(/\/postgres$/, '/billhook_bench'));
  await benchAdmin.connect();
  if (PROFILE) await benchAdmin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
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
    STRIPE_WEBHOOK_SECRET: SECRET,
    STRIPE_SECRET_KEY: 'sk_bench',
    STRIPE_API_BASE: `http://127.0.0.1:${freePort(stub)}`,
    BILLHOOK_ADMIN_KEY: ADMIN_KEY,
    ...Object.fromEntries(Object.entries(CHANGED_SETTINGS).map(([name, [value]]) => [name, value])),
  };
  const logs = { web: path.join(dir, 'web.log'), worker: path.join(dir, 'worker.log') };
  const base = `http://127.0.0.1:${port}`;
  const web = startBillhook('web', env, logs.web);
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

  // Reconcile: a fresh backlog of BACKLOG events for distinct pending charges, queued while no worker
  // runs, then drained by one worker process from a standing start.
  await seed.query(`DELETE FROM inbox; DELETE FROM pgboss.job WHERE name = 'webhook.process'`);
  // The ingest runs left ~100k dead rows: vacuum them now, so autovacuum does not run during the drain.
  await seed.query('VACUUM ANALYZE inbox');
  await seed.query('VACUUM ANALYZE pgboss.job');
  sequence = 0;
  await load(base, 64, 120, '/webhooks/stripe', BACKLOG);
  if (PROFILE) await benchAdmin.query('SELECT pg_stat_statements_reset()');
  const drainTicks = cpuTicks();
  const spawnedAt = Date.now();
  const profileDir = path.join(dir, 'cpu-profile');
  let worker = startBillhook(
    'worker',
    env,
    logs.worker,
    PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
  );
  // The CPU the worker and the machine have used when the worker is seen to fetch its first jobs: its
  // start-up (loading its modules, starting pg-boss) is not reconciliation.
  let firstSeen: { workerCpu: number | undefined; ticks: CpuTicks | undefined } | undefined;
  let pending = 1;
  while (pending > 0 && Date.now() - spawnedAt < 300_000) {
    // Until the worker has fetched its first jobs, every 100 ms whether any of the webhook.process
    // jobs (a few hundred rows) is no longer waiting; then every half second how many are still to
    // run. Counting or scanning the inbox instead (10k rows with their bodies) took 10-15 ms of
    // PostgreSQL a time, 3% of the database's CPU during the drain it measures. The drain time
    // itself comes from the database.
    await new Promise((r) => setTimeout(r, firstSeen ? 500 : 100));
    if (!firstSeen) {
      const { rows } = await seed.query(
        `SELECT 1 FROM pgboss.job WHERE name = 'webhook.process' AND state <> 'created' LIMIT 1`,
      );
      if (rows.length > 0) firstSeen = { workerCpu: processCpuSeconds(worker.pid), ticks: cpuTicks() };
      continue;
    }
    const { rows } = await seed.query(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'webhook.process' AND state IN ('created', 'retry', 'active')`,
    );
    pending = rows[0].n;
  }
  const drainEndTicks = cpuTicks();
  const workerCpuAfter = processCpuSeconds(worker.pid);
  recordSteal(steal, 'drain', drainTicks);
  // From the first batch's start (its transaction's now(), which processed_at takes) to the last
  // batch's commit; and from the worker's spawn to that commit.
  const { rows: drain } = await seed.query(`
    SELECT count(*) FILTER (WHERE status NOT IN ('received', 'retrying'))::int AS processed,
           (extract(epoch FROM min(processed_at)) * 1000)::float8 AS first_start_ms,
           (extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) * 1000)::float8 AS last_commit_ms,
           count(DISTINCT processed_at)::int AS batches
      FROM inbox WHERE processed_at IS NOT NULL`);
  const processed: number = drain[0].processed;
  const drainSeconds = Math.max((drain[0].last_commit_ms - drain[0].first_start_ms) / 1000, 0.001);
  const wallSeconds = (drain[0].last_commit_ms - spawnedAt) / 1000;
  const { rows: postings } = await seed.query(
    `SELECT count(*)::int AS n FROM journal_entries WHERE source_type = 'transaction'`,
  );
  const workerCpu =
    firstSeen?.workerCpu !== undefined && workerCpuAfter !== undefined
      ? workerCpuAfter - firstSeen.workerCpu
      : undefined;
  const machineCpu = busyCpuSeconds(firstSeen?.ticks, drainEndTicks);
  const perEventUs = (seconds: number | undefined) =>
    seconds === undefined ? null : Math.round((seconds * 1e6) / Math.max(processed, 1));
  const statements = PROFILE ? await statementProfile(benchAdmin) : undefined;
  let workerProfile: ProfileSummary | undefined;
  if (PROFILE) {
    // The worker's CPU profile of the drain (written as it exits); a fresh worker runs the rest.
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
    const [file] = readdirSync(profileDir);
    workerProfile = summarizeProfile(JSON.parse(readFileSync(path.join(profileDir, file!), 'utf8')));
    worker = startBillhook('worker', env, logs.worker);
  }

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

  // End to end: webhooks at half the measured ingest rate (64 connections; BENCH_E2E_SHARE_OF_INGEST),
  // charges and renewals alongside.
  const endToEnd = await measuringSteal(steal, 'end_to_end', () =>
    runEndToEnd(
      {
        base,
        url,
        db: seed,
        webPid: web.pid!,
        workerPid: worker.pid!,
        apiKey: ADMIN_KEY,
        customerId: 'cus_bench',
        paymentMethodId: 'pm_bench',
        signedEvent: (eventId, paymentId) => {
          const body = stripeEventBody(eventId, paymentId);
          return { body, signature: signStripePayload(body, SECRET) };
        },
      },
      {
        webhooksPerSecond: Math.max(1, Math.round(ingest[64]!.requestsPerSecond * E2E_SHARE_OF_INGEST)),
        chargesPerSecond: E2E_CHARGES_PER_S,
        renewalsPerSecond: E2E_RENEWALS_PER_S,
        seconds: E2E_SECONDS,
        settleTimeoutSeconds: 300,
        sweepEverySeconds: E2E_SWEEP_EVERY_SECONDS,
      },
    ),
  );

  const reconcileRate = Math.round(processed / drainSeconds);
  const result = {
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      // Other processes on the machine take cores from the bench: compare runs with a low load.
      load_average_1_5_15_min: { at_start: loadAtStart, at_end: loadAverages() },
    },
    settings,
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
      // Target (PRODUCT §9): < 5 s. From the first batch's start to the last batch's commit.
      backlog_drain_seconds: Number(drainSeconds.toFixed(2)),
      backlog_drain_seconds_with_worker_start: Number(wallSeconds.toFixed(2)),
      events_per_s: reconcileRate,
      // Target (PRODUCT §9): ≥ 0.75 × the raw single-row INSERT rate into the inbox, same run.
      reconcile_over_raw_insert: Number((reconcileRate / rawInsert).toFixed(2)),
      reconcile_over_raw_insert_bare_table: Number((reconcileRate / rawInsertBare).toFixed(2)),
      payments_posted: postings[0].n,
      batches: drain[0].batches,
      events_per_batch: Number((processed / Math.max(drain[0].batches, 1)).toFixed(1)),
      // CPU per event from the first jobs' fetch on: the worker's own, and the rest of the machine's
      // (PostgreSQL, with the idle web process and the bench's polling).
      worker_cpu_us_per_event: perEventUs(workerCpu),
      rest_of_machine_cpu_us_per_event:
        machineCpu === undefined || workerCpu === undefined ? null : perEventUs(machineCpu - workerCpu),
      ...(statements ? { statements_during_drain: statements } : {}),
      ...(workerProfile ? { worker_cpu_profile_of_drain_and_start: workerProfile } : {}),
    },
    charge: {
      invoices_charged_per_s: Math.round(charge['2xx'] / (charge.duration || SECONDS)),
      non2xx: charge.non2xx,
    },
    end_to_end: endToEnd,
    // Per run, the share of the machine's CPU time the hypervisor took (steal): compare runs with little.
    cpu_steal_pct: steal,
    peak_rss_mb: { web: rssMb(web.pid), worker: rssMb(worker.pid) },
    web_rss_mb_each_second_at_64_connections: sustained.mb,
    logs: {} as Record<string, ReturnType<typeof logSummary>>,
  };

  web.kill('SIGTERM');
  worker.kill('SIGTERM');
  await Promise.all([web, worker].map((c) => new Promise((r) => c.once('exit', r))));
  result.logs = { web: logSummary(logs.web), worker: logSummary(logs.worker) };
  await seed.end();
  await benchAdmin.end();
  await db.destroy();
  stub.close();
  await postgres.stop();
  rmSync(dir, { recursive: true, force: true });

  const out = path.resolve(import.meta.dirname, 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/**
 * What a process logged over the bench (LOG_LEVEL info): bytes, lines, the lines of its most
 * frequent messages (`level message`), and the first line of each warning or error message (level
 * 40 and up, the bench's own processes: no secret of anyone's), to see what went wrong.
 */
function logSummary(file: string) {
  const counts = new Map<string, number>();
  const firstWarnings: Record<string, unknown> = {};
  let lines = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    lines++;
    let key = 'not JSON';
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string };
      key = `${entry.level} ${entry.msg}`;
      if ((entry.level ?? 0) >= 40 && !(key in firstWarnings)) firstWarnings[key] = entry;
    } catch {}
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
  return {
    bytes: statSync(file).size,
    lines,
    most_frequent: Object.fromEntries(top),
    first_of_each_warning: firstWarnings,
  };
}

/**
 * BENCH_PROFILE=1: the statements PostgreSQL ran during the drain (pg_stat_statements), the costliest
 * first: calls, rows, and milliseconds executing and planning in all.
 */
async function statementProfile(admin: pg.Client) {
  const { rows } = await admin.query(`
    SELECT calls::int, rows::int, round(total_exec_time::numeric, 1)::float8 AS exec_ms,
           round(total_plan_time::numeric, 1)::float8 AS plan_ms,
           left(regexp_replace(query, '\\s+', ' ', 'g'), 200) AS query
      FROM pg_stat_statements
     WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
     ORDER BY total_exec_time + total_plan_time DESC LIMIT 25`);
  return rows;
}

await main();
