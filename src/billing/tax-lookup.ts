import type { TaxShare } from '../money/taxes.ts';

/**
 * Which named tax rates apply to a customer: a pure function of the rates and the customer's tax
 * location, so it is tested as a table (test/billing/tax-lookup.test.ts).
 */

/** Where a customer is taxed: its billing address's country (ISO 3166-1 alpha-2) and state, and exemption. */
export interface TaxLocation {
  country: string | null;
  state: string | null;
  taxExempt: boolean;
}

/** A named tax rate (`txr_…`) as lines carry it: its id and name for the invoice, and its share. */
export interface AppliedTaxRate extends TaxShare {
  id: string;
  displayName: string;
}

/** A tax rate as the lookup reads it: where it applies and whether it is in use. */
export interface LocatedTaxRate extends AppliedTaxRate {
  country: string;
  /** Null: the whole country. */
  state: string | null;
  active: boolean;
}

/**
 * The rates that apply at `location`, in the order they are computed: none for a tax-exempt
 * customer or one without a country; else every active rate of the customer's country that is
 * country-wide or of the customer's state (states compared case-insensitively), the simple rates
 * before the compound ones (a compound rate is applied on top of the taxes before it), country-wide
 * before state rates, then by id (creation order).
 */
export function applicableTaxRates(
  rates: readonly LocatedTaxRate[],
  location: TaxLocation,
): AppliedTaxRate[] {
  if (location.taxExempt || location.country === null) return [];
  const country = location.country.toUpperCase();
  const state = location.state?.toUpperCase() ?? null;
  return rates
    .filter(
      (rate) =>
        rate.active &&
        rate.country === country &&
        (rate.state === null || (state !== null && rate.state.toUpperCase() === state)),
    )
    .sort(
      (a, b) =>
        Number(a.compound) - Number(b.compound) ||
        Number(a.state !== null) - Number(b.state !== null) ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    )
    .map(({ id, displayName, ppm, inclusive, compound }) => ({ id, displayName, ppm, inclusive, compound }));
}
