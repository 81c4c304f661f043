import { addOnRoutes } from './add-ons.ts';
import { archivalRoutes } from './archival.ts';
import { catalogRoutes } from './catalog.ts';
import { couponRoutes } from './coupons.ts';
import { currencyRoutes } from './currencies.ts';
import { customerRoutes } from './customers.ts';
import { gatewayAccountRoutes } from './gateway-accounts.ts';
import { invoiceRoutes } from './invoices.ts';
import { readRoutes } from './reads.ts';
import type { ApiRoute } from './route.ts';
import { settlementRoutes } from './settlement.ts';
import { settlementImportRoutes } from './settlement-import.ts';
import { signupRoutes } from './signups.ts';
import { subscriptionRoutes } from './subscriptions.ts';
import { taxRateRoutes } from './tax-rates.ts';
import { transactionRoutes } from './transactions.ts';
import { usageRoutes } from './usage.ts';
import { webhookEndpointRoutes } from './webhook-endpoints.ts';

/**
 * The route table of /v1: every resource's routes (route.ts), in the order Express tries them.
 * `createApp` mounts them (`mountRoutes`, with strict queries) and `/openapi.json` documents them.
 * A new resource file adds its table here.
 */
export const API_ROUTES: readonly ApiRoute[] = [
  ...customerRoutes,
  ...archivalRoutes,
  ...signupRoutes,
  ...invoiceRoutes,
  ...transactionRoutes,
  ...currencyRoutes,
  ...subscriptionRoutes,
  ...couponRoutes,
  ...readRoutes,
  ...catalogRoutes,
  ...usageRoutes,
  ...gatewayAccountRoutes,
  ...settlementImportRoutes,
  ...settlementRoutes,
  ...webhookEndpointRoutes,
  ...taxRateRoutes,
  ...addOnRoutes,
];
