import { chargeDueInvoices } from '../payments/collection.ts';
import type { JobHandler } from './context.ts';

/**
 * `invoice.charge` (every minute while BILLING_SWEEPS is on): charges every OPEN invoice whose
 * `charge_at` has come (scheduled payments, instalments, renewals, dunning retries;
 * payments/collection.ts).
 */
export const collectInvoices: JobHandler = async (
  _jobs,
  { db, registry, accounts, config, log, actor, stopping },
) => {
  await chargeDueInvoices(db, actor, { registry, accounts }, config, new Date(), { log, stopping });
};
