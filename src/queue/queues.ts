import { z } from 'zod';

/** pg-boss queue names. Each has a dead-letter queue named `<name>.dead`. */
export const QUEUES = {
  webhookProcess: 'webhook.process',
  transactionPoll: 'transaction.poll',
} as const;

/** Job data of `webhook.process`: the inbox row to process. */
export const WebhookProcessJob = z.object({ inboxId: z.string().startsWith('evt_') });
export type WebhookProcessJob = z.infer<typeof WebhookProcessJob>;
