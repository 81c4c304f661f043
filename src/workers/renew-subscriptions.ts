import { renewDueSubscriptions } from '../billing/renewal.ts';
import type { JobHandler } from './context.ts';

/**
 * `subscription.renew` (every minute while BILLING_SWEEPS is on): invoices every subscription period
 * that has started, each once (billing/renewal.ts), SUSPENDED ones too when BILL_SUSPENDED_SUBSCRIPTIONS
 * is on; the renewals that failed are logged at error.
 */
export const renewSubscriptions: JobHandler = async (_jobs, { db, log, actor, config, stopping }) => {
  const sweep = await renewDueSubscriptions(db, actor, new Date(), {
    billSuspended: config.BILL_SUSPENDED_SUBSCRIPTIONS,
    stopping,
  });
  if (sweep.failures.length)
    log.error({ failures: sweep.failures }, 'subscription.renew could not renew some');
};
