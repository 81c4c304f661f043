import type { Kysely, RawBuilder } from 'kysely';
import type { z } from 'zod';
import { type ListFilter, listRows } from '../../db/list.ts';
import type { Database } from '../../db/schema.ts';
import { type ApiRoute, type RouteSpec, route } from './route.ts';
import type { ListQuery } from './schemas.ts';

/** A page of a list: at most `limit` items and whether more exist after them. */
export interface Page<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
}

/**
 * Builds a page from rows fetched with `limit + 1`: the extra row only tells that more exist.
 * @param map turns a row into its API shape
 */
export function toPage<R, T>(rows: R[], limit: number, map: (row: R) => T): Page<T> {
  return { object: 'list', data: rows.slice(0, limit).map(map), has_more: rows.length > limit };
}

/**
 * The database filter of a list query: paging, order, creation range on `createdColumn`, and the
 * column equalities given (each applied only when the query has a value for it).
 */
export function listFilter(
  query: ListQuery,
  createdColumn: string,
  equals: Record<string, string | null | undefined>,
): ListFilter {
  return {
    limit: query.limit,
    startingAfter: query.starting_after,
    order: query.sort === 'created' ? 'asc' : 'desc',
    equals,
    created: {
      column: createdColumn,
      from: query.created_gte ? new Date(query.created_gte) : undefined,
      to: query.created_lt ? new Date(query.created_lt) : undefined,
    },
  };
}

/** A boolean filter's value as its text column compares it (`'true'`/`'false'`), or undefined (no filter). */
export function asText(value: boolean | undefined): string | undefined {
  return value === undefined ? undefined : String(value);
}

/**
 * The `gateway_account` column's value a list query's `gateway_account` asks for: null for `default`
 * (the gateway's default account), the `gwa_…` id as given (an unknown one matches no row), or
 * undefined (no filter).
 */
export function accountFilter(value: string | undefined): string | null | undefined {
  return value === 'default' ? null : value;
}

/** A list endpoint over one table: its filters and API shape (the query is its route's). */
export interface ListEndpoint<Q extends ListQuerySchema, R> {
  table: keyof Database;
  /** The column equalities of a parsed query (each applied only when the query has a value for it). */
  equals: (query: z.output<Q>) => Record<string, string | null | undefined>;
  /** A row in its API shape. */
  map: (row: R) => unknown;
  /** The column of `created_gte` / `created_lt` (default `created_at`). */
  created?: string;
  /** Conditions beyond column equalities (`ListFilter.where`) of a parsed query. */
  where?: (query: z.output<Q>) => RawBuilder<boolean>[];
  /** Runs before the read, e.g. to answer 404 for a filter naming an unknown customer. */
  check?: (query: z.output<Q>, db: Kysely<Database>) => Promise<unknown>;
  /** The column it is ordered and paged by (`ListFilter.orderKey`; default `id`). */
  orderKey?: string;
}

/** `ListQuery` or an extension of it. */
export type ListQuerySchema = z.ZodObject & z.ZodType<ListQuery>;

/**
 * The route of `GET /v1/<resource>` (route.ts): its query (`ListQuery` or an extension; 422 with
 * field messages when it does not parse) reads one page of the table in creation order
 * (`listRows`, `listFilter`), answered as a `Page` (`toPage`).
 */
export function listRoute<Q extends ListQuerySchema, R>(
  spec: Omit<RouteSpec<Q, z.ZodType>, 'method' | 'handler' | 'query' | 'scope'> & {
    query: Q;
    list: ListEndpoint<Q, R>;
  },
): ApiRoute {
  const { list: endpoint, ...rest } = spec;
  return route<Q, z.ZodType>({
    ...rest,
    method: 'get',
    scope: 'read',
    handler: async (_req, res, { deps: { db }, query }) => {
      await endpoint.check?.(query, db);
      const rows = await listRows<R>(db, endpoint.table, {
        ...listFilter(query, endpoint.created ?? 'created_at', endpoint.equals(query)),
        where: endpoint.where?.(query),
        orderKey: endpoint.orderKey,
      });
      res.json(toPage(rows, query.limit, endpoint.map));
    },
  });
}
