import { AppError } from '../errors.ts';
import { MAX_MINOR_UNITS } from './amount.ts';
import { exponentOf } from './currency.ts';
import { decimalString } from './format.ts';

/**
 * The one conversion engine between billhook's amounts (bigint ISO 4217 minor units) and what each
 * gateway writes on the wire. Every gateway states its rules in a `GatewayCurrencyTable`
 * (src/gateways/<gateway>/currencies.ts); nothing else in billhook converts an amount for a gateway.
 * An amount a gateway cannot represent exactly is refused (`AmountNotRepresentable`), never rounded.
 */

/** How a gateway reads amounts of one currency, where it differs from the ISO 4217 minor unit. */
export interface CurrencyRule {
  /**
   * Digits after the decimal point in the unit the gateway counts in: Stripe reads MGA as 0 (whole
   * ariary) although ISO 4217 gives it 2, and ISK as 2 although ISO 4217 gives it 0.
   */
  exponent: number;
  /** The smallest step the gateway accepts, in billhook minor units (Stripe KWD: 10n, last digit 0). */
  granularity?: bigint;
  /** The rule in words, quoted in refusals: `the last digit must be 0 (a multiple of 10)`. */
  rule: string;
}

/**
 * The largest value a gateway takes in one amount field, counted in the gateway's own unit (the value
 * on the wire: Stripe ISK 500 ISK is `50000`), with the rule in words, quoted in refusals.
 */
export interface AmountLimit {
  /** The largest value, in the gateway's unit of the currency (Stripe: `99999999`, eight digits). */
  units: bigint;
  /** Currencies with another largest value (Stripe IDR: `999999999999`, twelve digits). */
  perCurrency?: Readonly<Record<string, bigint>>;
  /** The rule in words: `Stripe takes amounts of up to eight digits (twelve for IDR)`. */
  rule: string;
}

/**
 * One gateway's currency rules: how amounts are written, which currencies it takes, the largest
 * amount it takes, and the currencies whose unit or step differs from ISO 4217. A currency it takes without an entry in
 * `rules` is read with its ISO 4217 exponent and a step of one minor unit.
 */
export interface GatewayCurrencyTable {
  /** The gateway's name as people know it, quoted in refusals (`Stripe`, `PayPal`). */
  gateway: string;
  /** `integer`: a JSON integer counted in the gateway's unit; `decimal`: a decimal string (`"2.51"`). */
  format: 'integer' | 'decimal';
  /** The only currencies the gateway takes, when it publishes such a list. */
  supported?: ReadonlySet<string>;
  /** The only ISO 4217 exponents the gateway's amount format is documented for (SecurePay: cents). */
  isoExponents?: readonly number[];
  /** Currencies refused with the reason (Stripe: no documented format for IQD, LYD…). */
  refused?: Readonly<Record<string, string>>;
  /** Currencies whose unit or step differs from ISO 4217. */
  rules: Readonly<Record<string, CurrencyRule>>;
  /**
   * The largest amount the gateway takes, when it documents one: a larger amount sent is refused
   * (never sent to be refused there); one read back is what the gateway reports, and is not bounded.
   */
  max?: AmountLimit;
  /** Where the facts come from (a documentation page). */
  source: string;
}

/** A table whose amounts are JSON integers (Stripe, eWAY, SecurePay). */
export type IntegerAmounts = GatewayCurrencyTable & { format: 'integer' };
/** A table whose amounts are decimal strings (PayPal, Authorize.Net). */
export type DecimalAmounts = GatewayCurrencyTable & { format: 'decimal' };

/**
 * Raised when an amount or currency cannot cross to or from a gateway exactly, or the gateway account
 * does not process the currency (gateways/currencies.ts `assertAccountCurrency`): the API answers
 * 422 (`amount_not_representable`) naming the gateway and the rule, with `fields` when a field-level
 * message is known (`currency`); a webhook with such an amount is a payload error. Nothing is sent
 * and nothing is created.
 */
export class AmountNotRepresentable extends AppError {
  override name = 'AmountNotRepresentable';
  constructor(message: string, fields?: Record<string, string>) {
    super(422, 'invalid_request', 'amount_not_representable', message, fields);
  }
}

/** How `currency` crosses to `table`'s gateway: its unit's exponent, step, and rule in words. */
interface Resolved {
  iso: number;
  exponent: number;
  granularity: bigint;
  rule: string | undefined;
}

/**
 * The rule `table` applies to `currency`.
 * @throws AmountNotRepresentable when the gateway does not take the currency
 */
function resolve(table: GatewayCurrencyTable, currency: string): Resolved {
  const code = currency.toUpperCase();
  let iso: number;
  try {
    iso = exponentOf(code);
  } catch {
    throw new AmountNotRepresentable(`${code} is not an ISO 4217 currency`);
  }
  const refusal = table.refused?.[code];
  if (refusal)
    throw new AmountNotRepresentable(`${table.gateway} does not take ${code}: ${refusal} (${table.source})`);
  if (table.supported && !table.supported.has(code)) {
    throw new AmountNotRepresentable(
      `${table.gateway} does not take ${code}: it is not in ${table.gateway}'s list of currencies (${table.source})`,
    );
  }
  if (table.isoExponents && !table.isoExponents.includes(iso)) {
    throw new AmountNotRepresentable(
      `${table.gateway} does not take ${code}: its amounts are documented for currencies with ${table.isoExponents.join(' or ')} decimals only, ${code} has ${iso} (${table.source})`,
    );
  }
  const entry = table.rules[code];
  return { iso, exponent: entry?.exponent ?? iso, granularity: entry?.granularity ?? 1n, rule: entry?.rule };
}

const pow10 = (n: number): bigint => 10n ** BigInt(n);

/**
 * How `table`'s gateway takes `currency`, from the table's facts alone (its source documents them):
 * `accepted` and, when it is, the exponent of the unit the gateway counts in and the smallest step of
 * an amount in billhook minor units (Stripe MGA: exponent 0, step 100; Stripe KWD: 3, step 10), with
 * the rule in words; when it is not, `refusal` says why (the message a charge would be refused with).
 */
export interface CurrencySupport {
  accepted: boolean;
  exponent: number | null;
  /** Minor units of the currency: every amount sent must be a multiple of it. */
  step: bigint | null;
  rule: string | null;
  refusal: string | null;
}

/** `table`'s `CurrencySupport` of `currency` (an ISO 4217 code). */
export function currencySupport(table: GatewayCurrencyTable, currency: string): CurrencySupport {
  let resolved: Resolved;
  try {
    resolved = resolve(table, currency);
  } catch (error) {
    if (!(error instanceof AmountNotRepresentable)) throw error;
    return { accepted: false, exponent: null, step: null, rule: null, refusal: error.message };
  }
  const { iso, exponent, granularity, rule } = resolved;
  const unit = exponent < iso ? pow10(iso - exponent) : 1n;
  // Both are powers of ten, so the larger is a multiple of the smaller.
  const step = unit > granularity ? unit : granularity;
  return { accepted: true, exponent, step, rule: rule ?? null, refusal: null };
}

/** `amount` minor units of `currency` written as a decimal in major units: `(1296n, 3)` → `1.296`. */
const major = decimalString;

/**
 * `amount` (billhook minor units) counted in the gateway's unit, refusing what the gateway cannot
 * take exactly.
 * @throws AmountNotRepresentable for a negative or too large amount (beyond billhook's bound, or the
 * gateway's `max`: Stripe USD 100000000n, nine digits), a currency the gateway does not take, an
 * amount finer than the gateway's unit (Stripe MGA 150n) or off its step (Stripe KWD 1296n: its
 * message names the nearest amounts the gateway takes, 1290 and 1300)
 */
function toUnits(
  table: GatewayCurrencyTable,
  amount: bigint,
  currency: string,
): { units: bigint; exponent: number } {
  const code = currency.toUpperCase();
  if (amount < 0n || amount > MAX_MINOR_UNITS) {
    throw new AmountNotRepresentable(
      `${amount} is not an amount billhook sends (0 to ${MAX_MINOR_UNITS} minor units)`,
    );
  }
  const { iso, exponent, granularity, rule } = resolve(table, code);
  const step = exponent < iso ? pow10(iso - exponent) : 1n;
  for (const [divisor, why] of [
    [step, `${table.gateway} counts ${code} in units of ${major(step, iso)} ${code}`],
    [granularity, `${table.gateway} takes ${code} only in steps of ${major(granularity, iso)} ${code}`],
  ] as const) {
    if (amount % divisor !== 0n) {
      const below = amount - (amount % divisor);
      const above = below + divisor;
      const nearest = (value: bigint) => `${major(value, iso)} ${code} (${value})`;
      throw new AmountNotRepresentable(
        `${table.gateway} cannot take ${major(amount, iso)} ${code} (${amount} minor units) exactly: ${why}` +
          `${rule ? ` (${rule})` : ''}; the nearest it takes: ${nearest(below)} and ${nearest(above)}; see ${table.source}`,
      );
    }
  }
  const units = exponent >= iso ? amount * pow10(exponent - iso) : amount / step;
  const limit = table.max;
  const most = limit ? (limit.perCurrency?.[code] ?? limit.units) : undefined;
  if (limit && most !== undefined && units > most) {
    // The largest value in billhook minor units (Stripe ISK: 99999999 → 999999 ISK, whole krónur).
    const largest = exponent >= iso ? most / pow10(exponent - iso) : most * step;
    throw new AmountNotRepresentable(
      `${table.gateway} cannot take ${major(amount, iso)} ${code} (${amount} minor units): ` +
        `${table.gateway} takes at most ${major(largest, iso)} ${code} (a value of ${most}; ${limit.rule}); see ${table.source}`,
    );
  }
  return { units, exponent };
}

/**
 * Checks that `table`'s gateway can take `amount` of `currency` exactly, before anything is sent or
 * created (a charge or refund the gateway would refuse or misread never starts).
 * @param amount billhook minor units of `currency`
 * @throws AmountNotRepresentable naming the gateway and the rule
 */
export function assertRepresentable(table: GatewayCurrencyTable, amount: bigint, currency: string): void {
  toUnits(table, amount, currency);
}

/**
 * Converts billhook minor units to the gateway's wire value: a JSON integer for an integer table
 * (Stripe ISK `5n` → `500`, MGA `100000n` → `1000`), a decimal string for a decimal table (PayPal
 * HUF `100000n` → `"1000"`, USD `251n` → `"2.51"`).
 * @throws AmountNotRepresentable (see `assertRepresentable`), also for an integer beyond 2^53
 */
export function toGateway(table: IntegerAmounts, amount: bigint, currency: string): number;
export function toGateway(table: DecimalAmounts, amount: bigint, currency: string): string;
export function toGateway(table: GatewayCurrencyTable, amount: bigint, currency: string): number | string {
  const { units, exponent } = toUnits(table, amount, currency);
  if (table.format === 'decimal') return major(units, exponent);
  if (units > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new AmountNotRepresentable(`${units} is beyond the integers JSON carries exactly`);
  }
  return Number(units);
}

/** `units` of the gateway's unit (exponent `exponent`) as billhook minor units, or a refusal. */
function fromUnits(
  table: GatewayCurrencyTable,
  units: bigint,
  exponent: number,
  code: string,
  shown: string,
): bigint {
  const { iso, rule } = resolve(table, code);
  let amount = units;
  if (exponent > iso) {
    const step = pow10(exponent - iso);
    if (units % step !== 0n) {
      throw new AmountNotRepresentable(
        `${table.gateway} reported ${shown} ${code}, finer than ${code}'s ISO 4217 minor unit` +
          `${rule ? ` (${rule})` : ''}; see ${table.source}`,
      );
    }
    amount = units / step;
  } else if (exponent < iso) {
    amount = units * pow10(iso - exponent);
  }
  if (amount > MAX_MINOR_UNITS)
    throw new AmountNotRepresentable(`${table.gateway} amount ${shown} ${code} is too large`);
  return amount;
}

/**
 * Reads a gateway's wire amount back into billhook minor units, exactly: an integer table's JSON
 * number (Stripe ISK `50000` → `500n`; `50050` is refused, since Stripe's ISK decimals are always
 * 00), a decimal table's string (`"2.51"` USD → `251n`, `"1000"` HUF → `100000n`, `"7"` EUR → `700n`).
 * What the gateway reports is what moved: the step a gateway requires of amounts sent to it is not
 * asked of amounts read back, only that they fit the currency's minor unit.
 * @throws AmountNotRepresentable for a value that is not a non-negative integer (integer tables) or
 * decimal (decimal tables), finer than the currency's minor unit, beyond 10^15 minor units, or in a
 * currency the gateway does not take
 */
export function fromGateway(table: IntegerAmounts, value: unknown, currency: string): bigint;
export function fromGateway(table: DecimalAmounts, value: string, currency: string): bigint;
export function fromGateway(table: GatewayCurrencyTable, value: unknown, currency: string): bigint {
  const code = currency.toUpperCase();
  if (table.format === 'integer') {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new AmountNotRepresentable(
        `${table.gateway} amount ${JSON.stringify(value)} is not a non-negative integer (a float never becomes money)`,
      );
    }
    return fromUnits(table, BigInt(value), resolve(table, code).exponent, code, String(value));
  }
  const text = typeof value === 'string' ? value.trim() : '';
  const match = /^(\d{1,16})(?:\.(\d{1,16}))?$/.exec(text);
  if (!match)
    throw new AmountNotRepresentable(
      `${table.gateway} amount ${JSON.stringify(value)} is not a decimal amount`,
    );
  const [, whole = '0', fraction = ''] = match;
  const digits = fraction.replace(/0+$/, '');
  return fromUnits(table, BigInt(whole + digits), digits.length, code, text);
}
