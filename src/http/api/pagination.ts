import type { ListFilter } from '../../db/list.ts';
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
  equals: Record<string, string | undefined>,
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
