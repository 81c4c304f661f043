import type { DashboardHandler } from '@pg-boss/dashboard/handler';
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { AccountAdapters } from '../accounts/adapters.ts';
import type { RenewalPolicy } from '../billing/renewal.ts';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import type { GatewayRegistry } from '../gateways/registry.ts';
import type { Inbox } from '../inbox/receive.ts';
import type { Metrics } from '../metrics/metrics.ts';

/** What the HTTP layer needs from the running process. */
export interface AppDeps {
  config: Config;
  db: Db;
  boss: PgBoss;
  registry: GatewayRegistry;
  /** The gateway accounts' adapters, and the keys their credentials are encrypted with. */
  accounts: AccountAdapters;
  metrics: Metrics;
  /** Where verified webhooks are stored (group commit). */
  inbox: Inbox;
  log: Logger;
  /** pg-boss's queue dashboard, mounted at `/admin/queues` (http/admin/queues.ts); closed by the runtime's stop. */
  queueDashboard: DashboardHandler;
  /** True once webhooks can be stored: database reachable and migrations current. */
  ready(): Promise<boolean>;
}

/**
 * Whether SUSPENDED subscriptions are still invoiced (`BILL_SUSPENDED_SUBSCRIPTIONS`), as the renewal
 * sweep reads it: for the requests that renew, reactivate or reinstate (a payment) a subscription.
 */
export function policyOf(deps: Pick<AppDeps, 'config'>): RenewalPolicy {
  return { billSuspended: deps.config.BILL_SUSPENDED_SUBSCRIPTIONS };
}
