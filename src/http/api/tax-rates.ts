import { Router } from 'express';
import { z } from 'zod';
import { createTaxRate, getTaxRate, updateTaxRate } from '../../billing/tax-rates.ts';
import type { TaxRateRow } from '../../db/schema.ts';
import { ppmToPercent } from '../../money/rates.ts';
import { actorOf } from '../actor.ts';
import type { AppDeps } from '../deps.ts';
import { listHandler } from './pagination.ts';
import { ListQuery, Metadata, Percent } from './schemas.ts';
import { parseInput } from './validate.ts';

/** An ISO 3166-1 alpha-2 country code, upper case (`AU`, `GB`, `US`). */
const Country = z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 country code, e.g. AU');
const DisplayName = z.string().trim().min(1).max(100);
const Description = z.string().trim().min(1).max(500);
const NEVER_CHANGES =
  "a tax rate's percentage, country, state, inclusive and compound flags never change: archive it (active: false) and create another";
const Immutable = z
  .unknown()
  .refine(() => false, NEVER_CHANGES)
  .optional()
  .describe(NEVER_CHANGES);

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
  country: Country.optional(),
  active: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
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

/**
 * /v1/tax-rates: create, list (by country, active), read, update the display fields, archive
 * (`active: false`). Invoices apply the rates of the customer's address (billing/tax-rates.ts).
 */
export function taxRateRoutes({ db }: AppDeps): Router {
  const router = Router();
  router.post('/tax-rates', async (req, res) => {
    const body = parseInput(CreateTaxRate, req.body);
    const rate = await createTaxRate(db, actorOf(req), {
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
  });
  router.get(
    '/tax-rates',
    listHandler(db, {
      table: 'tax_rates',
      query: TaxRateListQuery,
      equals: (query) => ({
        country: query.country,
        active: query.active === undefined ? undefined : String(query.active),
      }),
      map: serializeTaxRate,
    }),
  );
  router.get('/tax-rates/:id', async (req, res) => {
    res.json(serializeTaxRate(await getTaxRate(db, req.params.id)));
  });
  router.post('/tax-rates/:id', async (req, res) => {
    const body = parseInput(UpdateTaxRate, req.body);
    const rate = await updateTaxRate(db, actorOf(req), req.params.id, {
      display_name: body.display_name,
      description: body.description,
      active: body.active,
      metadata: body.metadata,
    });
    res.json(serializeTaxRate(rate));
  });
  return router;
}
