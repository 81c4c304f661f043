import { z } from 'zod';
import { GATEWAYS, type GatewayName } from './gateways.ts';

/**
 * A fee billhook expects a gateway to take on a charge in one currency (PRODUCT.md §13): a percentage
 * in basis points (`bps`, 290 = 2.9%) of the gross plus a fixed part in minor units. A charge's fee that
 * differs from `expectedFee` by more than the tolerance is an `unexpected_fee` exception.
 */
export interface FeeExpectation {
  gateway: GatewayName;
  currency: string;
  bps: bigint;
  fixed: bigint;
}

const EXPECTATION = /^(\w+):([A-Z]{3})=(\d{1,2}(?:\.\d{1,2})?)%\+(\d+)$/;

/**
 * `SETTLEMENT_FEE_EXPECTATIONS`: a comma-separated list of `<gateway>:<CURRENCY>=<percent>%+<fixed
 * minor units>`, e.g. `stripe:USD=2.9%+30,paypal:AUD=2.6%+30`; the percent has at most 2 decimals
 * (parsed exactly to basis points). Empty: no fee is checked.
 */
export const feeExpectations = z
  .string()
  .trim()
  .default('')
  .transform((value, ctx): FeeExpectation[] => {
    const entries = value === '' ? [] : value.split(',').map((entry) => entry.trim());
    const parsed: FeeExpectation[] = [];
    for (const entry of entries) {
      const match = EXPECTATION.exec(entry);
      const gateway = match?.[1] as GatewayName | undefined;
      if (!match || !gateway || !GATEWAYS.includes(gateway)) {
        ctx.addIssue({
          code: 'custom',
          message: `"${entry}" is not <gateway>:<CURRENCY>=<percent>%+<fixed minor units>, e.g. stripe:USD=2.9%+30`,
        });
        return z.NEVER;
      }
      const [whole, decimals = ''] = match[3]!.split('.');
      parsed.push({
        gateway,
        currency: match[2]!,
        bps: BigInt(whole!) * 100n + BigInt(decimals.padEnd(2, '0')),
        fixed: BigInt(match[4]!),
      });
    }
    return parsed;
  });

/**
 * The fee `expectation` predicts on a charge of `gross` minor units: gross × bps / 10,000 rounded half
 * up, plus the fixed part (minor units). A comparison only: what is booked is the fee the gateway
 * reports.
 */
export function expectedFee(expectation: FeeExpectation, gross: bigint): bigint {
  return (gross * expectation.bps + 5_000n) / 10_000n + expectation.fixed;
}

/**
 * Days after a charge by which each gateway normally pays it out, the default of
 * `SETTLEMENT_PAYOUT_DELAY_DAYS`:
 * - Stripe: the standard payout schedule is 2 business days in the US, longer elsewhere
 *   (https://docs.stripe.com/payouts#standard-payout-timing);
 * - Authorize.Net: transactions settle in the nightly batch (https://support.authorize.net/knowledgebase/Knowledgearticle/?code=000001380);
 * - eWAY and SecurePay: settled the next business day (their merchant settlement terms);
 * - PayPal: 0 = not checked — money stays in the PayPal balance until withdrawn, and withdrawals
 *   are lump sums without lines.
 * A charge still in no payout after its delay plus `SETTLEMENT_MARGIN_DAYS` is an exception.
 */
export const DEFAULT_PAYOUT_DELAY_DAYS: Readonly<Record<GatewayName, number>> = {
  stripe: 2,
  paypal: 0,
  authorizenet: 1,
  eway: 1,
  securepay: 1,
};

/**
 * `SETTLEMENT_PAYOUT_DELAY_DAYS`: overrides of {@link DEFAULT_PAYOUT_DELAY_DAYS}, a comma-separated
 * list of `<gateway>=<days>` (0 turns the check off for that gateway), e.g. `stripe=7`.
 */
export const payoutDelays = z
  .string()
  .trim()
  .default('')
  .transform((value, ctx): Record<GatewayName, number> => {
    const delays = { ...DEFAULT_PAYOUT_DELAY_DAYS };
    for (const entry of value === '' ? [] : value.split(',')) {
      const [gateway, days] = entry.trim().split('=');
      if (!GATEWAYS.includes(gateway as GatewayName) || !/^\d{1,3}$/.test(days ?? '')) {
        ctx.addIssue({ code: 'custom', message: `"${entry}" is not <gateway>=<whole days>, e.g. stripe=7` });
        return z.NEVER;
      }
      delays[gateway as GatewayName] = Number(days);
    }
    return delays;
  });
