import { describe, expect, it } from 'vitest';
import { applicableTaxRates, type LocatedTaxRate, type TaxLocation } from '../../src/billing/tax-lookup.ts';

const rate = (id: string, o: Partial<LocatedTaxRate> = {}): LocatedTaxRate => ({
  id,
  displayName: id,
  ppm: 100_000,
  inclusive: false,
  compound: false,
  country: 'CA',
  state: null,
  active: true,
  ...o,
});

const RATES: LocatedTaxRate[] = [
  rate('txr_4', { state: 'QC', compound: true, displayName: 'QST' }),
  rate('txr_1', { displayName: 'GST', ppm: 50_000 }),
  rate('txr_2', { state: 'ON', displayName: 'HST ON' }),
  rate('txr_3', { state: 'QC', displayName: 'QC levy' }),
  rate('txr_5', { country: 'AU', displayName: 'GST AU' }),
  rate('txr_6', { country: 'AU', displayName: 'old', active: false }),
  rate('txr_7', { country: 'GB', displayName: 'VAT', inclusive: true, ppm: 200_000 }),
];

const at = (country: string | null, state: string | null = null, taxExempt = false): TaxLocation => ({
  country,
  state,
  taxExempt,
});

describe('applicableTaxRates (rates + address → the rates that apply, in computing order)', () => {
  it.each([
    { name: 'country-wide rate only, no state given', location: at('CA'), ids: ['txr_1'] },
    { name: 'country-wide then the state rate', location: at('CA', 'ON'), ids: ['txr_1', 'txr_2'] },
    {
      name: 'simple rates before the compound one, whatever the creation order',
      location: at('CA', 'QC'),
      ids: ['txr_1', 'txr_3', 'txr_4'],
    },
    { name: 'states compare case-insensitively', location: at('CA', 'qc'), ids: ['txr_1', 'txr_3', 'txr_4'] },
    { name: 'a lower-case country matches', location: at('ca', 'ON'), ids: ['txr_1', 'txr_2'] },
    { name: 'a state with no rate of its own', location: at('CA', 'BC'), ids: ['txr_1'] },
    { name: 'archived rates never apply', location: at('AU'), ids: ['txr_5'] },
    { name: 'an inclusive rate applies like any other', location: at('GB'), ids: ['txr_7'] },
    { name: 'a country without rates', location: at('NZ'), ids: [] },
    { name: 'no address: none', location: at(null), ids: [] },
    { name: 'a tax-exempt customer: none', location: at('CA', 'QC', true), ids: [] },
  ])('$name', ({ location, ids }) => {
    expect(applicableTaxRates(RATES, location).map((r) => r.id)).toEqual(ids);
  });

  it('answers each rate as lines carry it (no place, no active flag)', () => {
    expect(applicableTaxRates(RATES, at('GB'))).toEqual([
      { id: 'txr_7', displayName: 'VAT', ppm: 200_000, inclusive: true, compound: false },
    ]);
  });
});
