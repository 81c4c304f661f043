import { sql } from 'kysely';
import type { PgBoss, QueueResult } from 'pg-boss';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../db/database.ts';
import type { GatewayName } from '../gateways/types.ts';
import { GaugeExporterLease } from './exporter.ts';
import {
  billhookQueueCounts,
  openExceptionCount,
  type QueueCounts,
  type QueueNames,
  WAITING_INBOX_STATUSES,
  waitingInboxCounts,
} from './reads.ts';

/** Why a webhook was refused, as the `reason` label says it (each one's series starts at zero). */
export const REJECT_REASONS = [
  'signature',
  'payload',
  'too_large',
  'not_configured',
  'unavailable',
  'busy',
  'rate_limited',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/**
 * The `account` label of the webhook metrics: `default` for a gateway's default account, the id
 * (`gwa_…`) of a gateway account that exists (a disabled one's too: its route still receives),
 * `unknown` for anything else (an unknown or other gateway's account id from the URL never becomes a
 * label value: a few values, whatever is sent).
 */
export type AccountLabel = 'default' | 'unknown' | `gwa_${string}`;

/**
 * billhook's Prometheus metrics (prom-client), one registry per process. Counters and histograms are
 * updated where things happen; the gauges of jobs (through pg-boss's API), stored webhooks and
 * reconciliation exceptions are read from the database when /metrics is scraped, in one process.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly webhooksReceived = new Counter({
    name: 'billhook_webhooks_received_total',
    help: 'Verified webhooks stored (duplicates included), by gateway and gateway account',
    labelNames: ['gateway', 'account', 'duplicate'] as const,
    registers: [this.registry],
  });
  readonly webhooksRejected = new Counter({
    name: 'billhook_webhooks_rejected_total',
    help: 'Webhooks refused, by gateway, gateway account and reason',
    labelNames: ['gateway', 'account', 'reason'] as const,
    registers: [this.registry],
  });
  readonly ackSeconds = new Histogram({
    name: 'billhook_webhook_ack_seconds',
    help: 'Time from request to acknowledgement of a stored webhook, by gateway and gateway account, seconds',
    labelNames: ['gateway', 'account'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly jobFailures = new Counter({
    name: 'billhook_job_failures_total',
    help: 'Jobs that failed an attempt (they are retried), by queue',
    labelNames: ['queue'] as const,
    registers: [this.registry],
  });
  readonly gatewayCallSeconds = new Histogram({
    name: 'billhook_gateway_call_seconds',
    help: 'Outbound gateway calls by gateway, account, operation and outcome, seconds',
    labelNames: ['gateway', 'account', 'operation', 'outcome'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly apiRequestSeconds = new Histogram({
    name: 'billhook_api_request_seconds',
    help: 'Time to answer a /v1 request, by method, route pattern (`unmatched` when no route matched) and status code, seconds',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  /** Who exports the database-derived gauges; absent in processes without a database. */
  readonly #lease: GaugeExporterLease | undefined;

  /**
   * Every counter starts at zero for each configured gateway (its `default` account) and each queue,
   * so a series exists before its first event. The database-derived gauges are read when /metrics is
   * scraped, by one process at a time (GaugeExporterLease): the others export no sample of them
   * (an unlabelled gauge reads 0), so a sum across processes counts each job, row or exception once.
   * @param source absent in processes without a database (no database-derived gauges, no zeros)
   */
  constructor(source?: MetricsSource) {
    collectDefaultMetrics({ register: this.registry, prefix: 'billhook_' });
    if (!source) return;
    const { db, boss, queues } = source;
    this.#zeroInitialise(source.gateways, queues);
    const lease = new GaugeExporterLease(source.databaseUrl);
    this.#lease = lease;
    // Each read below is shared by the gauges collected in one scrape (the read in flight, if any).
    const exporting = sharedRead(() => lease.held());
    const counts = sharedRead(async () => ((await exporting()) ? boss.getQueues() : undefined));
    /** billhook's queues with their counts (`billhookQueueCounts`); none when not exporting. */
    const queueCounts = async (): Promise<QueueCounts[]> => {
      const all = (await counts()) ?? [];
      return all.length === 0 ? [] : billhookQueueCounts(all, queues);
    };
    new Gauge({
      name: 'billhook_database_gauges_exporter',
      help: '1 in the one process exporting the database-derived gauges, 0 in the others',
      registers: [this.registry],
      async collect() {
        this.set((await exporting()) ? 1 : 0);
      },
    });
    // billhook's queues only: a dead-letter queue's jobs are not waiting for a worker but for an
    // operator, so they count as the failed jobs of the queue they failed in (a `webhook.process`
    // job completes and leaves its dead letter, workers/process-webhooks.ts, so pg-boss's own failed
    // count of that queue stays 0).
    new Gauge({
      name: 'billhook_queue_depth',
      help: 'Jobs waiting for a worker (created or retry), by queue; dead letters are not counted',
      labelNames: ['queue'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const { name, waiting } of await queueCounts()) this.set({ queue: name }, waiting);
      },
    });
    // One count under two names: `billhook_jobs_failed` (the older one, scraped since before the
    // dead letters had their own) and `billhook_dead_letters`, both from the one `queueCounts` read.
    for (const [name, help] of DEAD_LETTER_GAUGES) {
      new Gauge({
        name,
        help,
        labelNames: ['queue'] as const,
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const { name, deadLetters } of await queueCounts()) this.set({ queue: name }, deadLetters);
        },
      });
    }
    new Gauge({
      name: 'billhook_jobs',
      help: 'Jobs by queue and state (ready, deferred, blocked, active, failed), from pg-boss queue counts refreshed every few seconds',
      labelNames: ['queue', 'state'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const queue of (await counts()) ?? []) {
          for (const [state, count] of JOB_STATE_COUNTS) this.set({ queue: queue.name, state }, queue[count]);
        }
      },
    });
    new Gauge({
      name: 'billhook_job_oldest_waiting_seconds',
      help: 'Age of the oldest job not started yet (created or retry), by queue, seconds (0 when none waits)',
      labelNames: ['queue'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        if (!(await exporting())) return;
        const now = Date.now();
        for (const { name } of queues) {
          // pg-boss's findJobs: queued jobs, oldest first (https://pgboss.io/api/jobs#findjobs-name-options).
          const [oldest] = await boss.findJobs(name, { queued: true, limit: 1 });
          this.set({ queue: name }, oldest ? Math.max(0, now - oldest.createdOn.getTime()) / 1000 : 0);
        }
      },
    });
    new Gauge({
      name: 'billhook_inbox_waiting',
      help: 'Stored webhooks not reconciled yet, by inbox status (received, retrying)',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        if (!(await exporting())) return;
        const waiting = await waitingInboxCounts(db);
        for (const status of WAITING_INBOX_STATUSES) this.set({ status }, waiting[status]);
      },
    });
    new Gauge({
      name: 'billhook_reconciliation_lag_seconds',
      help: 'Age of the oldest stored webhook not reconciled yet, seconds (0 when none waits)',
      registers: [this.registry],
      async collect() {
        this.reset();
        if (!(await exporting())) return;
        const row = await db
          .selectFrom('inbox')
          .select(sql<number>`coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8`.as('lag'))
          .where('status', 'in', WAITING_INBOX_STATUSES)
          .executeTakeFirstOrThrow();
        this.set(row.lag);
      },
    });
    new Gauge({
      name: 'billhook_reconciliation_exceptions_open',
      help: 'Reconciliation exceptions waiting for a person',
      registers: [this.registry],
      async collect() {
        this.reset();
        if (!(await exporting())) return;
        this.set(await openExceptionCount(db));
      },
    });
  }

  /** Releases the database gauges' lease (another process takes it over at its next scrape). */
  async close(): Promise<void> {
    await this.#lease?.close();
  }

  /** Sets each counter's series of the configured gateways' default accounts, and of each queue, to zero. */
  #zeroInitialise(gateways: readonly GatewayName[], queues: readonly QueueNames[]): void {
    const account: AccountLabel = 'default';
    for (const gateway of gateways) {
      for (const duplicate of ['false', 'true'])
        this.webhooksReceived.inc({ gateway, account, duplicate }, 0);
      for (const reason of REJECT_REASONS) this.webhooksRejected.inc({ gateway, account, reason }, 0);
      this.ackSeconds.zero({ gateway, account });
    }
    for (const { name } of queues) this.jobFailures.inc({ queue: name }, 0);
  }
}

/** What a process with a database gives its metrics. */
export interface MetricsSource {
  db: Db;
  boss: PgBoss;
  /** The database's URL, for the connection holding the database gauges' lease. */
  databaseUrl: string;
  /** The gateways configured with credentials (their counters start at zero). */
  gateways: readonly GatewayName[];
  /** billhook's queues (their counters start at zero; each one's oldest waiting job is read). */
  queues: readonly QueueNames[];
}

/**
 * The two names of a queue's dead letters (jobs past their retries in `<queue>.dead`, waiting for an
 * operator to retry or delete them), with their help texts. Not pg-boss's failed count of the queue
 * (`billhook_jobs{state="failed"}`: a `webhook.process` job completes and leaves its dead letter, and
 * a retried or deleted dead letter leaves that count as it was), nor failed attempts
 * (`billhook_job_failures_total`).
 */
const DEAD_LETTER_GAUGES = [
  [
    'billhook_jobs_failed',
    "Jobs past their retries waiting in the queue's dead letters (<queue>.dead) for an operator, by queue: the same count as billhook_dead_letters, under its older name",
  ],
  [
    'billhook_dead_letters',
    "Jobs past their retries waiting in the queue's dead letters (<queue>.dead) for an operator, by queue: the same count as billhook_jobs_failed",
  ],
] as const;

/** `billhook_jobs`' states and the pg-boss queue count each one reads. */
const JOB_STATE_COUNTS = [
  ['ready', 'readyCount'],
  ['deferred', 'deferredCount'],
  ['blocked', 'blockedCount'],
  ['active', 'activeCount'],
  ['failed', 'failedCount'],
] as const satisfies readonly (readonly [string, keyof QueueResult])[];

/**
 * `read`, shared by the callers that ask while it is in flight (the gauges collected in one scrape);
 * the next call after it settles reads again.
 */
function sharedRead<T>(read: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    inFlight ??= read().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}
