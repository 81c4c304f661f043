import { abs } from './amount.ts';
import { type CurrencyCode, exponentOf } from './currency.ts';

/**
 * `amount` counted in units of 10^-`exponent` written as a decimal, exactly (bigint arithmetic, never a
 * float): `(1296n, 3)` → `1.296`, `(-5n, 2)` → `-0.05`, `(1500n, 0)` → `1500`.
 */
export function decimalString(amount: bigint, exponent: number): string {
  const sign = amount < 0n ? '-' : '';
  const digits = abs(amount).toString();
  if (exponent === 0) return `${sign}${digits}`;
  const padded = digits.padStart(exponent + 1, '0');
  return `${sign}${padded.slice(0, -exponent)}.${padded.slice(-exponent)}`;
}

/**
 * `amount` minor units of `currency` as people read it, with the currency's ISO 4217 exponent and
 * code: `(123456n, 'USD')` → `1234.56 USD`, `(1500n, 'JPY')` → `1500 JPY`, `(1296n, 'KWD')` →
 * `1.296 KWD`. What documents (invoice and receipt PDFs) print, so they show the API's numbers.
 * @throws RangeError for a code that is not ISO 4217
 */
export function formatAmount(amount: bigint, currency: CurrencyCode): string {
  return `${decimalString(amount, exponentOf(currency))} ${currency}`;
}
