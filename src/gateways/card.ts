import type { CardDetails } from './types.ts';

/**
 * Reading the card details gateways put in their charge answers (`CardDetails`): the helpers the
 * per-gateway readers share (`<gateway>/card.ts`).
 */

/** The last four digits of a masked card number (`XXXX1111`, `444433XXXXXX1111`), null when they are not digits. */
export function lastFour(masked: string | undefined | null): string | null {
  const tail = masked?.slice(-4);
  return tail && /^[0-9]{4}$/.test(tail) ? tail : null;
}

/** A month 1–12 from a number or numeric text (`9`, `"09"`), null otherwise. */
export function month(value: string | number | undefined | null): number | null {
  const n = typeof value === 'string' && /^[0-9]{1,2}$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 12 ? n : null;
}

/**
 * A four-digit year from a number or numeric text; a two-digit year (eWAY's `"15"`) is read in this
 * century (2015), as card expiries are. Null otherwise.
 */
export function year(value: string | number | undefined | null): number | null {
  const n = typeof value === 'string' && /^[0-9]{2}([0-9]{2})?$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) return null;
  if (n >= 0 && n <= 99) return 2000 + n;
  return n >= 1970 && n <= 9999 ? n : null;
}

/** The details, or undefined when the answer said nothing about the card at all. */
export function cardOrNothing(card: CardDetails): CardDetails | undefined {
  return Object.values(card).every((v) => v === null) ? undefined : card;
}
