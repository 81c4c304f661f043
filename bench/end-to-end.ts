/**
 * The bench's end-to-end run (PRODUCT.md §9): signed Stripe webhooks at a steady rate (half the
 * measured ingest rate), API charges of a stored payment method against the Stripe stub and
 * subscription renewals alongside, for a minute; reports each webhook's lag from its 2xx to the
 * commit of its journal entry, the web and worker processes' RSS each second, and throughput.
 */
import type pg from 'pg';
import { createBoss } from '../src/queue/boss.ts';
import { QUEUES } from '../src/queue/queues.ts';
import { sendPaced } from './paced.ts';
import { busyCpuSeconds, cpuTicks, processCpuSeconds, rssMb } from './proc.ts';
import { type LatencySummary, seriesShape, summarizeLatencies } from './stats.ts';

/** What the end-to-end run needs from the bench: the running processes and how to make webhooks. */
export interface EndToEndSetup {
  /** The web process's base URL. */
  base: string;
  /** The bench database's URL and a connection to it (the application's role). */
  url: string;
  db: pg.Client;
  webPid: number;
  workerPid: number;
  /** An API key (admin) for /v1. */
  apiKey: string;
  /** A signed payment_intent.succeeded delivery of event `eventId` for payment intent `paymentId`. */
  signedEvent: (eventId: string, paymentId: string) => { body: string; signature: string };
  /** The existing customer with a default stored Stripe payment method (`pm_bench`). */
  customerId: string;
  paymentMethodId: string;
}

/** How hard the run drives billhook. */
export interface EndToEndLoad {
  webhooksPerSecond: number;
  chargesPerSecond: number;
  renewalsPerSecond: number;
  seconds: number;
  /** How long to wait after the run for the last webhooks to reach the ledger. */
  settleTimeoutSeconds: number;
  /** Seconds between the `subscription.renew` and `invoice.charge` sweeps the bench sends. */
  sweepEverySeconds: number;
}

const E2E = { invoice: 'inv_e2e_', transaction: 'txn_e2e_', intent: 'pi_e2e_', event: 'evt_e2e_' };

/**
 * Seeds what the run uses: one pending Stripe payment (open invoice, pending transaction
 * `pi_e2e_<n>`) per webhook to send, open invoices for the API charges, and ACTIVE daily
 * subscriptions whose next period starts at `renewalsPerSecond` a second through the run from
 * a start a few seconds after the seeding (period 0 already billed, so each renews into a
 * `subscription_cycle` invoice).
 * @returns when the run is to start
 */
async function seed(setup: EndToEndSetup, load: EndToEndLoad): Promise<Date> {
  const { db, base, apiKey } = setup;
  const webhooks = Math.round(load.webhooksPerSecond * load.seconds);
  const charges = Math.ceil(load.chargesPerSecond * load.seconds * 1.1);
  const renewals = Math.round(load.renewalsPerSecond * load.seconds);
  await db.query(
    `INSERT INTO invoices (id, customer_id, currency, status, total, amount_due)
       SELECT '${E2E.invoice}' || i, $1, 'USD', 'OPEN', 1000, 1000 FROM generate_series(0, $2::int - 1) i`,
    [setup.customerId, webhooks],
  );
  await db.query(
    `INSERT INTO transactions (id, invoice_id, customer_id, payment_method_id, gateway, gateway_transaction_id, amount, currency, status)
       SELECT '${E2E.transaction}' || i, '${E2E.invoice}' || i, $1, $2, 'stripe', '${E2E.intent}' || i, 1000, 'USD', 'pending'
       FROM generate_series(0, $3::int - 1) i`,
    [setup.customerId, setup.paymentMethodId, webhooks],
  );
  await db.query(
    `INSERT INTO invoices (id, customer_id, currency, status, total, amount_due)
       SELECT 'inv_e2e_charge_' || i, $1, 'USD', 'OPEN', 1000, 1000 FROM generate_series(0, $2::int - 1) i`,
    [setup.customerId, charges],
  );
  const post = async (path: string, body: object): Promise<{ id: string }> => {
    const response = await fetch(`${base}/v1${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`POST /v1${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as { id: string };
  };
  const product = await post('/products', { name: 'Bench renewals' });
  const plan = await post('/plans', {
    product: product.id,
    name: 'Bench daily',
    currency: 'USD',
    interval: 'DAY',
    price: { model: 'FLAT_FEE', amount: 1000 },
  });
  // The seeded rows are planned with statistics, and vacuumed now rather than by autovacuum mid-run.
  for (const table of ['invoices', 'transactions', 'inbox', 'pgboss.job'])
    await db.query(`VACUUM ANALYZE ${table}`);
  const startAt = new Date(Date.now() + 3000);
  await db.query(
    `INSERT INTO subscriptions (id, customer_id, plan_id, payment_method_id, status, quantity, billing_anchor,
         start_at, current_period_index, current_period_start, current_period_end, next_renewal_at, usage_billed_until)
       SELECT 'sub_e2e_' || i, $1, $2, $3, 'ACTIVE', 1, t - interval '1 day', t - interval '1 day', 0,
         t - interval '1 day', t, t, t
       FROM (SELECT i, $4::timestamptz + i * ($5::float8 * interval '1 millisecond') AS t
             FROM generate_series(0, $6::int - 1) i) due`,
    [
      setup.customerId,
      plan.id,
      setup.paymentMethodId,
      startAt,
      renewals > 0 ? (load.seconds * 1000) / renewals : 0,
      renewals,
    ],
  );
  await db.query('ANALYZE subscriptions');
  return startAt;
}

/** Each process's RSS (MB) each second of the run, and its shape (start, max, end, growth). */
type RssReport = Record<'web' | 'worker', ReturnType<typeof seriesShape> & { each_second: number[] }>;

/** The end-to-end run's result, as the bench's JSON reports it. */
export interface EndToEndResult {
  planned_seconds: number;
  /** From the first request to the last answer: longer than planned when the answers fall behind. */
  run_seconds: number;
  load: { webhooks_per_s: number; charges_per_s: number; renewals_per_s: number };
  webhooks: {
    sent: number;
    acknowledged: number;
    non2xx: number;
    errors: number;
    statuses: Record<string, number>;
    acknowledged_per_s: number;
    ack_latency_ms: LatencySummary;
    /** The most webhooks due but not sent because 256 were unanswered (0: the rate was kept). */
    max_behind: number;
  };
  /** Milliseconds from each webhook's 2xx (read by the bench) to the commit of its journal entry. */
  webhook_to_ledger_lag_ms: LatencySummary;
  reconciled: {
    in_ledger: number;
    not_in_ledger_after_wait: number;
    per_s_during_run: number;
    /** Seconds from the run's last answer (all requests answered) until the last entry's commit. */
    last_entry_after_run_s: number;
  };
  charges: {
    sent: number;
    succeeded: number;
    non2xx: number;
    /** Answers by HTTP status (`0`: failed without one). */
    statuses: Record<string, number>;
    per_s: number;
    latency_ms: LatencySummary;
  };
  renewals: { due: number; invoiced: number; paid: number };
  /**
   * CPU seconds used during the run by the web and worker processes, by the bench's own process
   * (the load generators and the Stripe stub), and by the whole machine (PostgreSQL and any other work
   * on it): who the cores went to.
   */
  cpu_seconds: { web: number | null; worker: number | null; bench: number; machine: number };
  rss_mb: RssReport;
}

/**
 * Runs the end-to-end load (see the module doc) against running web and worker processes, then waits
 * up to `settleTimeoutSeconds` for the webhook.process queue to empty and measures. Lags come from
 * the database: each journal entry's commit time (`pg_xact_commit_timestamp`, which needs
 * `track_commit_timestamp = on`) less the time the bench read the webhook's 2xx, on the same clock.
 * The bench sends `subscription.renew` and `invoice.charge` jobs every `sweepEverySeconds` (besides
 * their schedule, one a minute) so renewals are invoiced and charged through the run, not once.
 */
export async function runEndToEnd(setup: EndToEndSetup, load: EndToEndLoad): Promise<EndToEndResult> {
  const startAt = await seed(setup, load);
  await new Promise((r) => setTimeout(r, Math.max(0, startAt.getTime() - Date.now())));

  const total = Math.round(load.webhooksPerSecond * load.seconds);
  const ackedAt = new Float64Array(total).fill(Number.NaN);
  const rss = { web: [] as number[], worker: [] as number[] };
  const sample = () => {
    rss.web.push(rssMb(setup.webPid, 'VmRSS'));
    rss.worker.push(rssMb(setup.workerPid, 'VmRSS'));
  };
  const boss = createBoss(setup.url, { maintenance: false });
  await boss.start();
  const sweep = () =>
    Promise.all([boss.send(QUEUES.subscriptionRenew, {}), boss.send(QUEUES.invoiceCharge, {})]).catch(
      (error: unknown) => process.stderr.write(`bench: could not send a sweep: ${String(error)}\n`),
    );
  sample();
  const rssTimer = setInterval(sample, 1000);
  const sweepTimer = setInterval(sweep, load.sweepEverySeconds * 1000);
  const cpuBefore = { web: processCpuSeconds(setup.webPid), worker: processCpuSeconds(setup.workerPid) };
  const benchBefore = process.cpuUsage();
  const ticksBefore = cpuTicks();
  const runStart = Date.now();
  const [webhooks, charges] = await Promise.all([
    sendPaced({
      base: setup.base,
      ratePerSecond: load.webhooksPerSecond,
      seconds: load.seconds,
      maxInFlight: 256,
      make: (n) => {
        const { body, signature } = setup.signedEvent(`${E2E.event}${n}`, `${E2E.intent}${n}`);
        return {
          path: '/webhooks/stripe',
          headers: { 'content-type': 'application/json', 'stripe-signature': signature },
          body,
        };
      },
      onAnswer: (n, status, atMs) => {
        if (status >= 200 && status < 300) ackedAt[n] = atMs;
      },
    }),
    sendPaced({
      base: setup.base,
      ratePerSecond: load.chargesPerSecond,
      seconds: load.seconds,
      maxInFlight: 64,
      make: (n) => ({
        path: `/v1/invoices/inv_e2e_charge_${n}/charge`,
        headers: { authorization: `Bearer ${setup.apiKey}`, 'content-type': 'application/json' },
        body: '{}',
      }),
    }),
  ]);
  const runEnd = Date.now();
  const benchCpu = process.cpuUsage(benchBefore);
  const used = (pid: number, before: number | undefined) => {
    const after = processCpuSeconds(pid);
    return after === undefined || before === undefined ? null : Number((after - before).toFixed(1));
  };
  const cpuSeconds = {
    web: used(setup.webPid, cpuBefore.web),
    worker: used(setup.workerPid, cpuBefore.worker),
    bench: Number(((benchCpu.user + benchCpu.system) / 1e6).toFixed(1)),
    machine: Number((busyCpuSeconds(ticksBefore, cpuTicks()) ?? 0).toFixed(1)),
  };
  clearInterval(rssTimer);
  clearInterval(sweepTimer);
  sample();
  await boss.stop({ graceful: true });

  // The last webhooks' jobs run; then every e2e payment should be in the ledger.
  const deadline = Date.now() + load.settleTimeoutSeconds * 1000;
  for (;;) {
    const { rows } = await setup.db.query(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry', 'active')`,
      [QUEUES.webhookProcess],
    );
    if (rows[0].n === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const { rows: entries } = await setup.db.query<{ source_id: string; ms: number }>(
    `SELECT source_id, min(extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000)::float8 AS ms
       FROM journal_entries WHERE source_type = 'transaction' AND source_id LIKE '${E2E.transaction}%'
      GROUP BY source_id`,
  );
  const lags: number[] = [];
  let lastCommit = runStart;
  let duringRun = 0;
  for (const { source_id, ms } of entries) {
    const acked = ackedAt[Number(source_id.slice(E2E.transaction.length))];
    if (acked !== undefined && !Number.isNaN(acked)) lags.push(ms - acked);
    lastCommit = Math.max(lastCommit, ms);
    if (ms <= runEnd) duringRun++;
  }
  const { rows: renewed } = await setup.db.query(
    `SELECT count(*)::int AS invoiced, count(*) FILTER (WHERE status = 'PAID')::int AS paid
       FROM invoices WHERE subscription_id LIKE 'sub_e2e_%' AND billing_reason = 'subscription_cycle'`,
  );
  const seconds = (runEnd - runStart) / 1000;
  return {
    planned_seconds: load.seconds,
    run_seconds: Number(seconds.toFixed(1)),
    load: {
      webhooks_per_s: load.webhooksPerSecond,
      charges_per_s: load.chargesPerSecond,
      renewals_per_s: load.renewalsPerSecond,
    },
    webhooks: {
      sent: webhooks.sent,
      acknowledged: webhooks.ok,
      non2xx: webhooks.non2xx,
      errors: webhooks.errors,
      statuses: webhooks.statuses,
      acknowledged_per_s: Math.round(webhooks.ok / seconds),
      ack_latency_ms: summarizeLatencies(webhooks.latenciesMs, 1),
      max_behind: webhooks.maxBehind,
    },
    webhook_to_ledger_lag_ms: summarizeLatencies(lags),
    reconciled: {
      in_ledger: entries.length,
      not_in_ledger_after_wait: webhooks.ok - lags.length,
      per_s_during_run: Math.round(duringRun / seconds),
      last_entry_after_run_s: Number(Math.max(0, (lastCommit - runEnd) / 1000).toFixed(2)),
    },
    charges: {
      sent: charges.sent,
      succeeded: charges.ok,
      non2xx: charges.non2xx + charges.errors,
      statuses: charges.statuses,
      per_s: Math.round(charges.ok / seconds),
      latency_ms: summarizeLatencies(charges.latenciesMs, 1),
    },
    renewals: {
      due: Math.round(load.renewalsPerSecond * load.seconds),
      invoiced: renewed[0].invoiced,
      paid: renewed[0].paid,
    },
    cpu_seconds: cpuSeconds,
    rss_mb: {
      web: { ...seriesShape(rss.web), each_second: rss.web },
      worker: { ...seriesShape(rss.worker), each_second: rss.worker },
    },
  };
}
