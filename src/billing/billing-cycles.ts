import type { Kysely } from 'kysely';
import type { Database, InvoiceStatus } from '../db/schema.ts';
import { periodAt } from './periods.ts';
import { getPlan } from './plans.ts';
import { cadenceOf } from './renewal.ts';
import { getSubscription } from './subscriptions.ts';

/** One billing period of a subscription and its invoice (null for a period never invoiced, e.g. suspended). */
export interface BillingCycle {
  index: number;
  start: Date;
  end: Date;
  invoiceId: string | null;
  status: InvoiceStatus | null;
  currency: string;
  /** Minor units; 0 when not invoiced. */
  total: bigint;
  amountPaid: bigint;
}

/**
 * The billing cycles of subscription `id` from period 0 up to the current (or last invoiced) one,
 * in index order: at most `limit` after index `startingAfter`, plus whether more exist.
 * @throws NotFoundError when there is no such subscription
 */
export async function billingCycles(
  db: Kysely<Database>,
  id: string,
  limit: number,
  startingAfter = -1,
): Promise<{ cycles: BillingCycle[]; hasMore: boolean }> {
  const subscription = await getSubscription(db, id);
  const plan = await getPlan(db, subscription.plan_id);
  const invoices = await db
    .selectFrom('invoices')
    .select(['id', 'period_index', 'status', 'total', 'amount_paid', 'currency'])
    .where('subscription_id', '=', id)
    .where('period_index', 'is not', null)
    .execute();
  const byIndex = new Map(invoices.map((i) => [i.period_index!, i]));
  const last = Math.max(subscription.current_period_index ?? -1, ...invoices.map((i) => i.period_index!));
  const cadence = cadenceOf(subscription, plan);
  const cycles: BillingCycle[] = [];
  for (let index = startingAfter + 1; index <= last && cycles.length < limit; index++) {
    const period = periodAt(cadence, index);
    const invoice = byIndex.get(index);
    cycles.push({
      index,
      start: period.start,
      end: period.end,
      invoiceId: invoice?.id ?? null,
      status: invoice?.status ?? null,
      currency: plan.currency,
      total: invoice?.total ?? 0n,
      amountPaid: invoice?.amount_paid ?? 0n,
    });
  }
  const next = (cycles.at(-1)?.index ?? startingAfter) + 1;
  return { cycles, hasMore: next <= last };
}
