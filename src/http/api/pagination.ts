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
