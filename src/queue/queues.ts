import { z } from 'zod';

/**
 * pg-boss queue names (stored in the database: a deployed queue keeps its name). Each has a
 * dead-letter queue named `<name>.dead`; each is worked by one row of workers/workers.ts.
 */
export const QUEUES = {
  webhookProcess: 'webhook.process',
  transactionPoll: 'transaction.poll',
  inboxSweep: 'inbox.sweep',
  subscriptionRenew: 'subscription.renew',
  invoiceCharge: 'invoice.charge',
  invoiceRefund: 'invoice.refund',
  refundRecover: 'refund.recover',
  settlementSync: 'settlement.sync',
  webhookEndpointDispatch: 'webhook-endpoint.dispatch',
  webhookEndpointDeliver: 'webhook-endpoint.deliver',
} as const;

/** A queue of billhook's: one of {@link QUEUES}. */
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** The dead-letter queue of `queue`: `<queue>.dead`, where a job goes after its last retry. */
export const deadQueueOf = (queue: QueueName): `${QueueName}.dead` => `${queue}.dead`;

/** Each of billhook's queues with its dead-letter queue, as the queue counts (metrics/reads.ts) take them. */
export const QUEUES_AND_DEAD_LETTERS = Object.values(QUEUES).map((name) => ({
  name,
  dead: deadQueueOf(name),
}));

/**
 * Job data of `webhook.process`: the inbox rows one receiving transaction stored (group commit: one
 * job per batch), and how many times billhook already retried them because their payment was not
 * known yet (the backoff of those retries is billhook's own, per row: workers/process-webhooks.ts;
 * pg-boss retries the job when processing throws).
 */
export const WebhookProcessJob = z.object({
  inboxIds: z.array(z.string().startsWith('evt_')).min(1).max(1000),
  attempt: z.number().int().min(0).default(0),
});
export type WebhookProcessJob = z.input<typeof WebhookProcessJob>;
