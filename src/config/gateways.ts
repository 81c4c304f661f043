/**
 * The gateways billhook speaks to: the one list, at the base layer so that storage (the `gateway`
 * columns of db/schema.ts), the adapters (gateways/types.ts re-exports it) and the HTTP schemas all
 * derive their type from it. Adding a gateway starts here.
 */
export const GATEWAYS = ['stripe', 'paypal', 'authorizenet', 'eway', 'securepay'] as const;

/** One of `GATEWAYS`: a gateway's name as configured, stored and sent in URLs (`/webhooks/:gateway`). */
export type GatewayName = (typeof GATEWAYS)[number];
