import { MAX_MINOR_UNITS } from './amount.ts';
import { exponentOf } from './currency.ts';

/**
 * Formats minor units as the decimal string PayPal and Authorize.Net take, with exactly the
 * currency's ISO 4217 exponent of decimals: `toDecimalString(251n, 'USD')` → `"2.51"`,
 * `(500n, 'JPY')` → `"500"`, `(1234n, 'KWD')` → `"1.234"`.
 * @throws RangeError for a negative amount or an unknown currency
 */
export function toDecimalString(amount: bigint, currency: string): string {
  if (amount < 0n) throw new RangeError(`negative amount ${amount}`);
  const exponent = exponentOf(currency);
  if (exponent === 0) return amount.toString();
  const digits = amount.toString().padStart(exponent + 1, '0');
  return `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

/**
 * Parses a gateway's decimal string into minor units, exactly (no float on the way):
 * `("2.51", 'USD')` → `251n`, `("7", 'EUR')` → `700n`, `("1.5", 'USD')` → `150n`.
 * @throws RangeError when the text is not a non-negative decimal, has more decimals than the
 * currency's exponent (`"2.515"` USD), or exceeds 10^15 minor units
 */
export function fromDecimalString(text: string, currency: string): bigint {
  const exponent = exponentOf(currency);
  const match = /^(\d{1,16})(?:\.(\d+))?$/.exec(text.trim());
  if (!match) throw new RangeError(`not a decimal amount: ${JSON.stringify(text)}`);
  const [, whole = '0', fraction = ''] = match;
  if (fraction.replace(/0+$/, '').length > exponent) {
    throw new RangeError(`${text} has more decimals than ${currency} allows (${exponent})`);
  }
  const amount = BigInt(whole + fraction.padEnd(exponent, '0').slice(0, exponent));
  if (amount > MAX_MINOR_UNITS) throw new RangeError(`amount ${text} ${currency} is too large`);
  return amount;
}
