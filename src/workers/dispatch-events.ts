import { dispatchEvents } from '../outbound/dispatch.ts';
import type { JobHandler } from './context.ts';

/**
 * `webhook-endpoint.dispatch` (every minute): turns the activities written since the last run into
 * billhook's own events and one `webhook-endpoint.deliver` job per delivery (outbound/dispatch.ts).
 */
export const dispatchOutboundEvents: JobHandler = async (_jobs, { db, boss, log }) => {
  const result = await dispatchEvents(db, boss);
  if (result.events > 0) log.info(result, 'outbound events dispatched');
  return undefined;
};
