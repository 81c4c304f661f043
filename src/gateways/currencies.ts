import { assertRepresentable, type GatewayCurrencyTable } from '../money/gateway-amount.ts';
import { AUTHORIZENET_CURRENCIES } from './authorizenet/currencies.ts';
import { EWAY_CURRENCIES } from './eway/currencies.ts';
import { PAYPAL_CURRENCIES } from './paypal/currencies.ts';
import { SECUREPAY_CURRENCIES } from './securepay/currencies.ts';
import { STRIPE_CURRENCIES } from './stripe/currencies.ts';
import type { GatewayName } from './types.ts';

/** Each gateway's currency rules (README "Currency rules per gateway"). */
export const CURRENCY_TABLES: Readonly<Record<GatewayName, GatewayCurrencyTable>> = {
  stripe: STRIPE_CURRENCIES,
  paypal: PAYPAL_CURRENCIES,
  authorizenet: AUTHORIZENET_CURRENCIES,
  eway: EWAY_CURRENCIES,
  securepay: SECUREPAY_CURRENCIES,
};

/**
 * Refuses, before anything is created or sent, a charge or refund of `amount` minor units of
 * `currency` that `gateway` cannot take exactly (billhook refuses rather than rounds).
 * @throws AmountNotRepresentable (HTTP 422 `amount_not_representable`) naming the gateway and the rule
 */
export function assertGatewayCanTake(gateway: GatewayName, amount: bigint, currency: string): void {
  assertRepresentable(CURRENCY_TABLES[gateway], amount, currency);
}
