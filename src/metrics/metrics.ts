import { sql } from 'kysely';
import type { PgBoss } from 'pg-boss';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../db/database.ts';

/** Why a webhook was refused, as the `reason` label says it. */
export type RejectReason =
  | 'signature'
  | 'payload'
  | 'too_large'
  | 'not_configured'
  | 'unavailable'
  | 'busy'
  | 'rate_limited';

/**
 * The `account` label of the webhook metrics: `default` for a gateway's default account, the id
 * (`gwa_…`) of a gateway account that exists, `unknown` for anything else (an unknown, disabled or
 * other gateway's account id from the URL never becomes a label value: a few values, whatever is sent).
 */
export type AccountLabel = 'default' | 'unknown' | `gwa_${string}`;

/**
 * billhook's Prometheus metrics (prom-client), one registry per process. Counters and histograms are
 * updated where things happen; queue depth, reconciliation lag and open exceptions are read from
 * the database when /metrics is scraped.
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

  /**
   * @param source where the scrape-time gauges read from; absent in processes without a database
   */
  constructor(source?: { db: Db; boss: PgBoss }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'billhook_' });
    if (!source) return;
    const { db, boss } = source;
    // The two queue gauges are collected together on each scrape: they share one read of pg-boss's
    // queue counts (the read in flight, if any).
    let queuesRead: ReturnType<PgBoss['getQueues']> | undefined;
    const queues = () => {
      queuesRead ??= boss.getQueues().finally(() => {
        queuesRead = undefined;
      });
      return queuesRead;
    };
    const queueGauges = [
      ['billhook_queue_depth', 'Jobs waiting (created or retry), by queue', 'queuedCount'],
      [
        'billhook_jobs_failed',
        'Jobs that exhausted their retries and are still retained by pg-boss (any process), by queue',
        'failedCount',
      ],
    ] as const;
    for (const [name, help, count] of queueGauges) {
      new Gauge({
        name,
        help,
        labelNames: ['queue'] as const,
        registers: [this.registry],
        async collect() {
          for (const queue of await queues()) this.set({ queue: queue.name }, queue[count]);
        },
      });
    }
    new Gauge({
      name: 'billhook_reconciliation_lag_seconds',
      help: 'Age of the oldest stored webhook not reconciled yet, seconds (0 when none waits)',
      registers: [this.registry],
      async collect() {
        const row = await db
          .selectFrom('inbox')
          .select(sql<number>`coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8`.as('lag'))
          .where('status', 'in', ['received', 'retrying'])
          .executeTakeFirstOrThrow();
        this.set(row.lag);
      },
    });
    new Gauge({
      name: 'billhook_reconciliation_exceptions_open',
      help: 'Reconciliation exceptions waiting for a person',
      registers: [this.registry],
      async collect() {
        const row = await db
          .selectFrom('reconciliation_exceptions')
          .select(sql<number>`count(*)::int`.as('open'))
          .where('status', '=', 'open')
          .executeTakeFirstOrThrow();
        this.set(row.open);
      },
    });
  }
}
