import { assertRepresentable, currencySupport, type GatewayCurrencyTable } from '../money/gateway-amount.ts';
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

/**
 * The currencies (ISO 4217 codes, upper case) that some gateway takes only in steps of more than one
 * minor unit (`currencySupport`'s `step` > 1: PayPal HUF and TWD in whole units, step 100; Stripe
 * BHD, JOD, KWD, OMR, TND, step 10, and MGA in whole ariary, step 100). Only a currency listed in a
 * table's `rules` can have one, so only those are looked at. Invoices in other currencies are never
 * rounded at finalization (billing/invoice-rounding.ts reads nothing for them).
 */
export const COARSE_STEP_CURRENCIES: ReadonlySet<string> = new Set(
  Object.values(CURRENCY_TABLES).flatMap((table) =>
    Object.keys(table.rules).filter((code) => (currencySupport(table, code).step ?? 1n) > 1n),
  ),
);

/**
 * The smallest step of an amount of `currency` that `gateway` takes, as its currency table says
 * (`currencySupport`), with the rule in words (`rule`, null when the step is the gateway's unit
 * alone), and the gateway's name as people know it.
 * @returns `step` in minor units of `currency` (1n: any amount), or null when the gateway does not
 * take the currency at all (a charge would be refused as today)
 */
export function gatewayStep(
  gateway: GatewayName,
  currency: string,
): { step: bigint; rule: string | null; gatewayName: string } | null {
  const table = CURRENCY_TABLES[gateway];
  const support = currencySupport(table, currency);
  return support.step === null
    ? null
    : { step: support.step, rule: support.rule, gatewayName: table.gateway };
}
