import { z } from 'zod';
import { isCountry } from '../../billing/countries.ts';
import { createTaxRate, getTaxRate, updateTaxRate } from '../../billing/tax-rates.ts';
import type { TaxRateRow } from '../../db/schema.ts';
import { ppmToPercent } from '../../money/rates.ts';
import { actorOf } from '../actor.ts';
import { asText, listRoute } from './pagination.ts';
import { listOf, TaxRate } from './responses.ts';
import { type ApiRoute, route, type Tag } from './route.ts';
import { immutable, ListQuery, Metadata, Percent, QueryBoolean } from './schemas.ts';

/** An ISO 3166-1 alpha-2 country code's shape, upper case (`AU`, `GB`, `US`): the list's filter. */
const CountryShape = z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code, e.g. AU');
/** An assigned one: a rate for an unassigned code could never match a customer's address. */
const Country = CountryShape.refine(
  isCountry,
  'must be an assigned ISO 3166-1 alpha-2 country code, e.g. AU',
);
const DisplayName = z.string().trim().min(1).max(100);
const Description = z.string().trim().min(1).max(500);
const Immutable = immutable(
  "a tax rate's percentage, country, state, inclusive and compound flags never change: archive it (active: false) and create another",
);

/**
 * `POST /v1/tax-rates`: `display_name` (shown on invoice lines), `country` (ISO 3166-1 alpha-2) and
 * optional `state` (the whole country without), `percent` (percentage text or number, at most 4
 * decimals, above 0), `inclusive` (prices include it; default false), `compound` (applied on top of
 * the taxes before it; default false).
 */
export const CreateTaxRate = z.strictObject({
  display_name: DisplayName,
  description: Description.optional(),
  country: Country,
  state: z.string().trim().min(1).max(50).optional(),
  percent: Percent.refine((ppm) => ppm > 0, 'must be greater than 0'),
  inclusive: z.boolean().optional(),
  compound: z.boolean().optional(),
  metadata: Metadata.optional(),
});

/** `POST /v1/tax-rates/:id`: display fields, and `active` (false archives the rate). */
export const UpdateTaxRate = z.strictObject({
  display_name: DisplayName.optional(),
  description: Description.nullable().optional(),
  active: z.boolean().optional(),
  metadata: Metadata.optional(),
  country: Immutable,
  state: Immutable,
  percent: Immutable,
  inclusive: Immutable,
  compound: Immutable,
});

/** `GET /v1/tax-rates`: the list query, filtered by `country` and `active`. */
export const TaxRateListQuery = ListQuery.extend({
  country: CountryShape.optional(),
  active: QueryBoolean.optional(),
});

/** A tax rate as the API shows it: the percentage as text (`"8.875"`). */
export function serializeTaxRate(t: TaxRateRow) {
  return {
    id: t.id,
    object: 'tax_rate',
    display_name: t.display_name,
    description: t.description,
    country: t.country,
    state: t.state,
    percent: ppmToPercent(t.percent_ppm),
    inclusive: t.inclusive,
    compound: t.compound,
    active: t.active,
    metadata: t.metadata,
    created_at: t.created_at,
    updated_at: t.updated_at,
  };
}

const tag: Tag = 'Tax rates';

/**
 * /v1/tax-rates: create, list (by country, active), read, update the display fields, archive
 * (`active: false`). Invoices apply the rates of the customer's address (billing/tax-rates.ts).
 */
export const taxRateRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/tax-rates',
    operationId: 'createTaxRate',
    tag,
    scope: 'write',
    summary: 'Create a named tax rate for a country or state (inclusive or exclusive, compound or not)',
    body: CreateTaxRate,
    responses: { 201: TaxRate },
    handler: async (req, res, { deps, body }) => {
      const rate = await createTaxRate(deps.db, actorOf(req), {
        displayName: body.display_name,
        description: body.description,
        country: body.country,
        state: body.state,
        percentPpm: body.percent,
        inclusive: body.inclusive,
        compound: body.compound,
        metadata: body.metadata,
      });
      res.status(201).json(serializeTaxRate(rate));
    },
  }),
  listRoute({
    path: '/v1/tax-rates',
    operationId: 'listTaxRates',
    tag,
    summary: 'List tax rates',
    query: TaxRateListQuery,
    responses: { 200: listOf(TaxRate, 'TaxRateList') },
    list: {
      table: 'tax_rates',
      equals: (query) => ({
        country: query.country,
        active: asText(query.active),
      }),
      map: serializeTaxRate,
    },
  }),
  route({
    method: 'get',
    path: '/v1/tax-rates/{id}',
    operationId: 'getTaxRate',
    tag,
    scope: 'read',
    summary: 'Read a tax rate',
    responses: { 200: TaxRate },
    handler: async (req, res, { deps }) => {
      res.json(serializeTaxRate(await getTaxRate(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/tax-rates/{id}',
    operationId: 'updateTaxRate',
    tag,
    scope: 'write',
    summary: "Update a tax rate's display fields, or archive it (active: false)",
    body: UpdateTaxRate,
    responses: { 200: TaxRate },
    handler: async (req, res, { deps, body }) => {
      const rate = await updateTaxRate(deps.db, actorOf(req), req.params.id, {
        display_name: body.display_name,
        description: body.description,
        active: body.active,
        metadata: body.metadata,
      });
      res.json(serializeTaxRate(rate));
    },
  }),
];
