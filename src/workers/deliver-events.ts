import { keyring } from '../accounts/cipher.ts';
import { attemptDelivery, DeliverJob } from '../outbound/deliver.ts';
import type { JobHandler } from './context.ts';

/**
 * `webhook-endpoint.deliver` (a job per delivery): POSTs the event, signed, to its endpoint
 * (outbound/deliver.ts). An answer other than 2xx, a timeout or a connection error throws, so
 * pg-boss retries the job with backoff for about three days (queue/boss.ts); the last try's failure
 * marks the delivery `failed` and the job goes to `webhook-endpoint.deliver.dead`.
 * @throws ZodError on job data that is not `{ deliveryId }`; Error while the endpoint does not take it
 */
export const deliverOutboundEvents: JobHandler = async ([job], { db, config }) => {
  if (!job) return;
  const { deliveryId } = DeliverJob.parse(job.data);
  const outcome = await attemptDelivery(
    db,
    keyring(config.BILLHOOK_SECRET_KEY, config.BILLHOOK_SECRET_KEY_PREVIOUS),
    deliveryId,
    job.retryCount >= job.retryLimit,
  );
  if (outcome === 'retry') throw new Error(`delivery ${deliveryId}: the endpoint did not answer 2xx`);
};
