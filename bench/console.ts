/**
 * `npm run bench:console`: the operators' console at scale (PRODUCT.md §15: "they stay fast with a
 * million inbox rows"). Starts its own embedded PostgreSQL and a billhook `web` process, seeds a
 * million inbox rows, 10,000 `webhook.process` dead letters and 10,000 reconciliation exceptions
 * with `INSERT … SELECT generate_series` (a minute or so), then times each console page
 * (`BENCH_CONSOLE_RUNS` requests each, default 7, after one warm-up) and prints one JSON document
 * with each page's median and worst time. Exits 1 when a page's median is 300 ms or more.
 * `BENCH_CONSOLE_ROWS` changes the number of inbox rows (default 1,000,000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { loadConfig } from '../src/config/env.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { createLogger } from '../src/logger.ts';
import { startRuntime } from '../src/runtime.ts';
import { summarizeLatencies } from './stats.ts';

const ADMIN_KEY = 'bh_bench_console_admin_key_0123456789';
const ROWS = Number(process.env.BENCH_CONSOLE_ROWS ?? 1_000_000);
const DEAD_LETTERS = 10_000;
const EXCEPTIONS = 10_000;
const RUNS = Number(process.env.BENCH_CONSOLE_RUNS ?? 7);
const LIMIT_MS = 300;

const dir = mkdtempSync(path.join(tmpdir(), 'billhook-console-bench-'));
const database = await startEmbeddedPostgres(path.join(dir, 'pg'));
const config = loadConfig({
  DATABASE_URL: database.url,
  PORT: '0',
  LOG_LEVEL: 'warn',
  BILLHOOK_ADMIN_KEY: ADMIN_KEY,
  BILLING_SWEEPS: '0',
});
const runtime = await startRuntime(config, 'web', createLogger('warn'));
const { db } = runtime;
try {
  const seeding = Date.now();
  // A million deliveries over 90 days, oldest first: mostly processed Stripe events, some of every
  // status, gateway and type; each with a body and its normalised event, as the worker leaves them.
  await sql`
    INSERT INTO inbox (id, gateway, gateway_event_id, event_type, body, status, outcome, last_error,
                       attempts, received_at, processed_at, events)
    SELECT 'evt_' || lpad(g::text, 10, '0') || 'bench0000000000000000',
      (ARRAY['stripe','stripe','stripe','paypal','authorizenet','eway','securepay'])[1 + g % 7],
      'evt_gw_' || g,
      CASE WHEN g % 1000 = 0 THEN 'charge.dispute.created' ELSE
        (ARRAY['payment_intent.succeeded','charge.refunded','payout.paid','PAYMENT.CAPTURE.COMPLETED',
               'net.authorize.payment.authcapture.created','eway.transaction','securepay.payment'])[1 + g % 7] END,
      '{"id":"evt_gw_' || g || '","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_' || g ||
        '","amount":2000,"currency":"usd","status":"succeeded","metadata":{"billhook_reference":"txn_' || g || '"}}}}',
      CASE WHEN g % 200 = 0 THEN 'exception' WHEN g % 211 = 0 THEN 'retrying' WHEN g % 50 = 0 THEN 'ignored'
           WHEN g > ${ROWS} - 20 THEN 'received' ELSE 'processed' END,
      CASE WHEN g % 200 = 0 THEN 'amount_mismatch' ELSE 'applied' END,
      CASE WHEN g % 211 = 0 THEN 'stripe did not answer' END,
      1,
      now() - make_interval(secs => (${ROWS} - g) * 7.776),
      now() - make_interval(secs => (${ROWS} - g) * 7.776),
      jsonb_build_array(jsonb_build_object('type', 'payment.succeeded', 'gatewayTransactionId', 'pi_' || g,
        'amount', '2000', 'currency', 'USD', 'occurredAt', '2026-12-01T00:00:00.000Z'))
    FROM generate_series(1, ${ROWS}) g`.execute(db);
  await sql`
    INSERT INTO reconciliation_exceptions (id, kind, gateway, inbox_id, message, status, created_at)
    SELECT 'rex_' || lpad(g::text, 10, '0') || 'bench0000000000000000', 'amount_mismatch', 'stripe',
      'evt_' || lpad((g * 200)::text, 10, '0') || 'bench0000000000000000',
      'the charge was for 2000 USD, the gateway says 1900 USD', CASE WHEN g % 3 = 0 THEN 'resolved' ELSE 'open' END,
      now() - make_interval(secs => (${EXCEPTIONS} - g) * 60)
    FROM generate_series(1, ${Math.min(EXCEPTIONS, Math.floor(ROWS / 200))}) g`.execute(db);
  // 10,000 dead letters of webhook.process as its worker leaves them (inbox ids and errors).
  await sql`
    INSERT INTO pgboss.job (id, name, data, state, created_on)
    SELECT gen_random_uuid(), 'webhook.process.dead',
      jsonb_build_object('inboxIds', jsonb_build_array('evt_' || lpad((g * 211)::text, 10, '0') || 'bench0000000000000000'),
        'errors', jsonb_build_array(jsonb_build_object('id', 'evt_' || lpad((g * 211)::text, 10, '0') || 'bench0000000000000000',
          'error', 'stripe did not answer'))),
      'created', now() - make_interval(secs => (${DEAD_LETTERS} - g))
    FROM generate_series(1, ${DEAD_LETTERS}) g`.execute(db);
  // A customer with 20 Stripe charges among them (the inbox's customer filter).
  await sql`INSERT INTO customers (id, email) VALUES ('cus_bench', 'bench@example.com')`.execute(db);
  await sql`
    INSERT INTO transactions (id, customer_id, gateway, gateway_transaction_id, amount, currency, status)
    SELECT 'txn_bench' || g, 'cus_bench', 'stripe', 'pi_' || (g * 7 * 1000), 2000, 'USD', 'succeeded'
    FROM generate_series(1, 20) g`.execute(db);
  // What autovacuum does after such a load: statistics, and the GIN index's pending list merged.
  await sql`VACUUM ANALYZE`.execute(db);
  const seededSeconds = (Date.now() - seeding) / 1000;

  const authorization = `Basic ${Buffer.from(`${ADMIN_KEY}:`).toString('base64')}`;
  const middle = `evt_${String(Math.floor(ROWS / 2)).padStart(10, '0')}bench0000000000000000`;
  const pages = {
    overview: '/admin',
    inbox: '/admin/inbox',
    'inbox, page 2': `/admin/inbox?starting_after=${middle}`,
    'inbox by status exception': '/admin/inbox?status=exception',
    'inbox by status retrying': '/admin/inbox?status=retrying',
    'inbox by gateway and type': '/admin/inbox?gateway=paypal&type=PAYMENT.CAPTURE.COMPLETED',
    'inbox by type': '/admin/inbox?type=payout.paid',
    'inbox by a rare type': '/admin/inbox?type=charge.dispute.created&gateway=stripe',
    'inbox by gateway event id': '/admin/inbox?gateway=stripe&event_id=evt_gw_700000',
    'inbox by account': '/admin/inbox?gateway_account=gwa_unknown',
    'inbox by time range': '/admin/inbox?received_from=2026-01-01T00:00&received_to=2026-01-02T00:00',
    'inbox by customer': '/admin/inbox?customer=cus_bench',
    'inbox by unknown customer': '/admin/inbox?customer=cus_unknown',
    'inbox event': `/admin/inbox/${middle}`,
    'replay all matching (count)': '/admin/inbox/replay?status=exception',
    exceptions: '/admin/exceptions',
    'exceptions, resolved': '/admin/exceptions?status=resolved',
    'exception detail': '/admin/exceptions/rex_0000000010bench0000000000000000',
    'dead letters': '/admin/dead-letters',
    'dead letters of webhook.process': '/admin/dead-letters?queue=webhook.process',
    'delete all (count)': '/admin/dead-letters/confirm?action=purge',
    payouts: '/admin/payouts',
    'settlement report': '/admin/settlement',
    'gateway accounts': '/admin/accounts',
    queues: '/admin/queues',
  };
  const results: Record<string, { status: number; median_ms: number; max_ms: number }> = {};
  for (const [name, page] of Object.entries(pages)) {
    const times: number[] = [];
    let status = 0;
    for (let run = 0; run <= RUNS; run++) {
      const started = performance.now();
      const response = await fetch(`${runtime.url}${page}`, { headers: { authorization } });
      await response.arrayBuffer();
      status = response.status;
      if (run > 0) times.push(performance.now() - started);
    }
    const { p50, max } = summarizeLatencies(times, 1);
    results[name] = { status, median_ms: p50, max_ms: max };
  }
  const slow = Object.entries(results).filter(([, r]) => r.median_ms >= LIMIT_MS || r.status !== 200);
  console.log(
    JSON.stringify(
      {
        inbox_rows: ROWS,
        dead_letters: DEAD_LETTERS,
        seeded_seconds: seededSeconds,
        runs: RUNS,
        pages: results,
        slow: slow.map(([n]) => n),
      },
      null,
      2,
    ),
  );
  process.exitCode = slow.length ? 1 : 0;
} finally {
  await runtime.stop();
  await database.stop();
  rmSync(dir, { recursive: true, force: true });
}
