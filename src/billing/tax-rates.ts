import type { Kysely } from 'kysely';
import { recordActivity } from '../activities/activities.ts';
import type { Db } from '../db/database.ts';
import { newId } from '../db/ids.ts';
import type { CustomerRow, Database, TaxRateRow } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import { type Actor, inUnitOfWork } from '../ledger/unit-of-work.ts';
import { updateDisplayFields } from './display-fields.ts';
import type { NewLine } from './invoices.ts';
import { applicableTaxRates, type LocatedTaxRate, type TaxLocation } from './tax-lookup.ts';

/**
 * Named tax rates (`txr_…`, issue #28 item 5): a percentage (parts per million, like a plan's
 * `tax_percent`) for a country (ISO 3166-1 alpha-2) and optionally one of its states, inclusive (the
 * price includes it) or exclusive, compound (on top of the taxes before it) or simple. Invoices apply
 * the rates of the customer's billing address (`withCustomerTaxes`): they take precedence over a
 * bare percent (a plan's `tax_percent` or a manual line's), which applies only where no named rate
 * matches; a tax-exempt customer pays no tax at all. A rate's percentage, place, inclusive and
 * compound flags never change (issued invoices stay explained by it): archive it (`active: false`)
 * and create another.
 */

/** A new tax rate; `percentPpm` in parts per million (1% = 10000). */
export interface NewTaxRate {
  displayName: string;
  description?: string;
  country: string;
  state?: string;
  percentPpm: number;
  inclusive?: boolean;
  compound?: boolean;
  metadata?: Record<string, string>;
}

/** Creates an active tax rate and logs `tax_rate.created`. */
export async function createTaxRate(db: Db, actor: Actor, input: NewTaxRate): Promise<TaxRateRow> {
  return inUnitOfWork(db, { actor }, async (work) => {
    const row = await work.trx
      .insertInto('tax_rates')
      .values({
        id: newId('txr'),
        display_name: input.displayName,
        description: input.description ?? null,
        country: input.country,
        state: input.state ?? null,
        percent_ppm: input.percentPpm,
        inclusive: input.inclusive ?? false,
        compound: input.compound ?? false,
        metadata: JSON.stringify(input.metadata ?? {}),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordActivity(work, {
      resourceType: 'tax_rate',
      resourceId: row.id,
      action: 'tax_rate.created',
      data: { country: row.country, state: row.state, percent_ppm: row.percent_ppm },
    });
    return row;
  });
}

/** @throws NotFoundError when there is no tax rate `id` */
export async function getTaxRate(db: Kysely<Database>, id: string): Promise<TaxRateRow> {
  const row = await db.selectFrom('tax_rates').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('tax_rate', id);
  return row;
}

/** What may change on a tax rate: its display fields, and `active: false` archives it. */
export interface TaxRateUpdate {
  display_name?: string;
  description?: string | null;
  active?: boolean;
  metadata?: Record<string, string>;
}

/**
 * Updates a tax rate's display name, description (null clears it), metadata (replaced whole) or
 * active flag (false archives it: no new invoice line gets it; true restores it) and logs
 * `tax_rate.updated` with the changed fields; a body changing nothing changes and logs nothing.
 * @throws NotFoundError when there is no tax rate `id`
 */
export async function updateTaxRate(
  db: Db,
  actor: Actor,
  id: string,
  update: TaxRateUpdate,
): Promise<TaxRateRow> {
  return updateDisplayFields<TaxRateRow>(db, actor, 'tax_rates', id, update);
}

/**
 * Where customer `customerId` is taxed: its billing address's country and state and its exemption
 * (`customers.address_country`, `address_state`, `tax_exempt`).
 * @throws NotFoundError when there is no such customer
 */
export async function customerTaxLocation(db: Kysely<Database>, customerId: string): Promise<TaxLocation> {
  const row = await db
    .selectFrom('customers')
    .select(['address_country', 'address_state', 'tax_exempt'])
    .where('id', '=', customerId)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('customer', customerId);
  return taxLocationOf(row);
}

/** Where a customer row read already is taxed (as `customerTaxLocation`). */
export function taxLocationOf(
  customer: Pick<CustomerRow, 'address_country' | 'address_state' | 'tax_exempt'>,
): TaxLocation {
  return { country: customer.address_country, state: customer.address_state, taxExempt: customer.tax_exempt };
}

/** A stored rate as the lookup reads it. */
function locatedOf(row: TaxRateRow): LocatedTaxRate {
  return {
    id: row.id,
    displayName: row.display_name,
    ppm: row.percent_ppm,
    inclusive: row.inclusive,
    compound: row.compound,
    country: row.country,
    state: row.state,
    active: row.active,
  };
}

/**
 * `lines` taxed as customer `customerId` is (the rule in the module doc): a tax-exempt customer's
 * lines get no rates (`taxRates: []`); else, when active rates match its address
 * (`applicableTaxRates`), every line without named rates of its own gets them in place of its bare
 * percent; else the lines are returned as they are (their bare percent applies).
 * @throws NotFoundError when there is no such customer
 */
export async function withCustomerTaxes(
  db: Kysely<Database>,
  customerId: string,
  lines: readonly NewLine[],
): Promise<NewLine[]> {
  return withTaxesAt(db, await customerTaxLocation(db, customerId), lines);
}

/** `lines` taxed as a customer taxed at `location` is (`withCustomerTaxes` with the customer read already). */
export async function withTaxesAt(
  db: Kysely<Database>,
  location: TaxLocation,
  lines: readonly NewLine[],
): Promise<NewLine[]> {
  if (location.taxExempt) return lines.map((line) => ({ ...line, taxRates: [] }));
  if (location.country === null) return [...lines];
  const rows = await db
    .selectFrom('tax_rates')
    .selectAll()
    .where('country', '=', location.country.toUpperCase())
    .where('active', '=', true)
    .execute();
  const rates = applicableTaxRates(rows.map(locatedOf), location);
  if (rates.length === 0) return [...lines];
  return lines.map((line) => (line.taxRates ? line : { ...line, taxRates: rates }));
}
