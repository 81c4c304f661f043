import { AmountNotRepresentable } from '../money/gateway-amount.ts';
import type { ChargeOutcome, ReportedCharge } from './types.ts';

/**
 * The money a gateway's answer names, as each adapter reads it: the currency as the gateway writes
 * it, and its amount read through the gateway's currency table (`fromGateway`).
 */
export interface AnsweredMoney {
  /**
   * The answer's currency code; absent or blank when the answer names none, and then the currency
   * sent is assumed (eWAY's query answers before API version 40, SecurePay's default AUD).
   */
  currency?: string | null;
  /**
   * The answer's amount in billhook minor units of `currency` (upper case), through the gateway's
   * table (`fromGateway`).
   * @throws AmountNotRepresentable when the answer's amount cannot be read (absent, not the
   * gateway's amount format, finer than the currency's minor unit, a currency it does not take)
   */
  amount: (currency: string) => bigint;
}

/**
 * What a gateway answered about a charge or refund, held against what was sent.
 * @param sent the request's amount (minor units) and currency (ISO 4217)
 * @returns undefined when the answer names the amount and currency sent; otherwise what it names
 * (`amount` null when it cannot be read)
 */
export function differenceFrom(
  sent: { amount: bigint; currency: string },
  answered: AnsweredMoney,
): ReportedCharge | undefined {
  const currency = (answered.currency?.trim() || sent.currency).toUpperCase();
  let amount: bigint | null;
  try {
    amount = answered.amount(currency);
  } catch (error) {
    if (!(error instanceof AmountNotRepresentable)) throw error;
    amount = null;
  }
  return currency === sent.currency.toUpperCase() && amount === sent.amount
    ? undefined
    : { amount, currency };
}

/** `reported` in words: `5000 AUD`, or `an unreadable amount in AUD`. */
export function describeReported(reported: ReportedCharge): string {
  return reported.amount === null
    ? `an unreadable amount in ${reported.currency}`
    : `${reported.amount} ${reported.currency}`;
}

/**
 * A status check's answer about a charge the gateway says moved or is moving (`succeeded`,
 * `pending`), held against the charge asked about: the outcome itself when the answer names the
 * charge's amount and currency; otherwise `unknown` with what the gateway reports (`reported`): a
 * success for another amount (eWAY's A2010 "Approved For Partial Amount") or currency is not the
 * charge billhook made, and is for a person to look at (PRODUCT.md §11), never booked as the amount
 * asked. Declines and unknown outcomes are returned unchanged.
 * @param gateway the gateway's name as people know it (`eWAY`), for the message
 * @param charge the charge asked about: amount in minor units, ISO 4217 currency
 */
export function heldAgainstCharge(
  gateway: string,
  outcome: ChargeOutcome,
  charge: { amount: bigint; currency: string },
  answered: AnsweredMoney,
): ChargeOutcome {
  if (outcome.status !== 'succeeded' && outcome.status !== 'pending') return outcome;
  const reported = differenceFrom(charge, answered);
  if (!reported) return outcome;
  return {
    status: 'unknown',
    message:
      `${gateway} reports transaction ${outcome.gatewayTransactionId} ${outcome.status} for ${describeReported(reported)}, ` +
      `not the ${charge.amount} ${charge.currency.toUpperCase()} charged (minor units)`,
    reported,
  };
}
