import {
  AmountNotRepresentable,
  assertRepresentable,
  currencySupport,
  type GatewayCurrencyTable,
} from '../money/gateway-amount.ts';
import { AUTHORIZENET_CURRENCIES } from './authorizenet/currencies.ts';
import { EWAY_CURRENCIES } from './eway/currencies.ts';
import { PAYPAL_CURRENCIES } from './paypal/currencies.ts';
import { SECUREPAY_CURRENCIES } from './securepay/currencies.ts';
import { STRIPE_CURRENCIES } from './stripe/currencies.ts';
import type { GatewayClient, GatewayName } from './types.ts';

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
 * What the gateway account whose `client` would send a charge or refund says it processes
 * (`accountCurrencies`: Authorize.Net's getMerchantDetails `currencies`, cached by the client after
 * its first answer). An HTTP call until an answer is cached (at most `GATEWAY_TIMEOUT_MS`): ask it
 * before locking anything (payments/charges.ts `startCharge`), then check with
 * `assertAccountCurrency` inside the unit of work.
 * @returns the account's currencies (ISO 4217, upper case); undefined when the gateway keeps no such
 * list (`accountCurrencies` absent) or the account cannot be asked (no answer, a timeout, HTTP 5xx, a
 * refusal, no ISO 4217 currency named): what it takes is then unknown, and an unknown is never a
 * refusal
 */
export async function accountCurrenciesOf(client: GatewayClient): Promise<readonly string[] | undefined> {
  if (!client.accountCurrencies) return undefined;
  try {
    const currencies = await client.accountCurrencies();
    return currencies.length === 0 ? undefined : currencies;
  } catch {
    return undefined;
  }
}

/**
 * Refuses, before anything is created or sent, a charge or refund in `currency` on a gateway account
 * that says it does not process it (`currencies`, from `accountCurrenciesOf`: a CAD 100.00 charge on
 * a USD-only Authorize.Net account would be declined with reason 39, and dunning would send it again
 * and again). Nothing is refused when `currencies` is undefined (not listed, or unknown): the charge
 * or refund goes ahead, and the gateway refuses it itself if it must.
 * @param account the gateway account (`gwa_…`), null for the gateway's default account; named in the
 * refusal
 * @param refundOf for a refund, the payment (`txn_…`) it would give back: a payment taken in a
 * currency the account processed then and no longer does (a CAD payment, the account USD-only now)
 * is refunded in its own currency, which the gateway would refuse; the refusal says so and that
 * nothing was refunded
 * @throws AmountNotRepresentable (HTTP 422 `amount_not_representable`, field `currency`) naming the
 * currency and the account's currencies; the collection sweep records it as an unsendable charge
 * (payments/charges.ts `recordUnsendableCharge`: one failed attempt, one exception, never sent again)
 */
export function assertAccountCurrency(
  currencies: readonly string[] | undefined,
  gateway: GatewayName,
  account: string | null,
  currency: string,
  refundOf?: string,
): void {
  const code = currency.toUpperCase();
  if (!currencies || currencies.length === 0 || currencies.includes(code)) return;
  const name = CURRENCY_TABLES[gateway].gateway;
  const which = account ? `${name} account ${account}` : `the ${name} account`;
  const processes = currencies.join(', ');
  if (refundOf !== undefined)
    throw new AmountNotRepresentable(
      `payment ${refundOf} was taken in ${code}, which ${which} no longer processes: it processes ${processes} (its merchant details), and ${name} refunds a payment only in its own currency, so it would refuse this refund. Nothing was refunded; give the money back to the customer outside ${name}`,
      {
        currency: `${code} is not a currency ${which} processes any more (it processes ${processes}): payment ${refundOf} cannot be refunded through it`,
      },
    );
  throw new AmountNotRepresentable(
    `${which} does not process ${code}: it processes ${processes} (its merchant details), and ${name} refuses a transaction in any other currency`,
    { currency: `${code} is not a currency ${which} processes; it processes ${processes}` },
  );
}

/**
 * What gateway accounts said they process, asked before a unit of work locks anything
 * (`accountCurrenciesOf`: an HTTP call until cached), by `accountKey`; a value undefined, or an account
 * not in the map (not asked: a payment of another account came meanwhile), is unknown: nothing refused.
 */
export type AskedCurrencies = ReadonlyMap<string, readonly string[] | undefined>;

/** The key of `AskedCurrencies` for `gateway`'s account `account` (null: its default account). */
export function accountKey(gateway: GatewayName, account: string | null): string {
  return `${gateway}:${account ?? ''}`;
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
