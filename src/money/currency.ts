/**
 * ISO 4217 currencies and their minor-unit exponents.
 *
 * Source: ISO 4217 list one (SIX Group, "Current currency & funds code list"). Every currency not
 * listed in `EXPONENTS` has exponent 2. A code is valid when the runtime's ICU list
 * (`Intl.supportedValuesOf('currency')`, which follows the same standard) or `EXPONENTS` has it (ICU
 * leaves out the funds codes CLF, UYI and UYW).
 */
const EXPONENTS: Readonly<Record<string, number>> = {
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  ISK: 0,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  PYG: 0,
  RWF: 0,
  UGX: 0,
  UYI: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
  CLF: 4,
  UYW: 4,
};

const KNOWN = new Set(Intl.supportedValuesOf('currency'));

/** An upper-case ISO 4217 alphabetic code such as `USD`. */
export type CurrencyCode = string;

/** True when `code` is an upper-case ISO 4217 code known to the runtime. */
export function isCurrency(code: string): boolean {
  return /^[A-Z]{3}$/.test(code) && (KNOWN.has(code) || Object.hasOwn(EXPONENTS, code));
}

/**
 * Number of digits after the decimal point in the currency's minor unit (JPY 0, USD 2, KWD 3).
 * @throws RangeError for a code that is not ISO 4217
 */
export function exponentOf(code: CurrencyCode): number {
  if (!isCurrency(code)) throw new RangeError(`unknown ISO 4217 currency: ${code}`);
  return EXPONENTS[code] ?? 2;
}

/** Every ISO 4217 code `isCurrency` accepts (the runtime's ICU list and the funds codes above), sorted. */
export function currencyCodes(): CurrencyCode[] {
  return [...new Set([...KNOWN, ...Object.keys(EXPONENTS)])].filter(isCurrency).sort();
}
