import { isDeepStrictEqual } from 'node:util';

/**
 * The fields of `update` whose value differs from `row`'s, each as `{from, to}` (deep equality, so key
 * order does not count), for an `<resource>.updated` activity.
 */
export function changedFields(
  row: Record<string, unknown>,
  update: Record<string, unknown>,
): Record<string, { from: unknown; to: unknown }> {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const [field, to] of Object.entries(update)) {
    if (to === undefined) continue;
    const from = row[field];
    if (!isDeepStrictEqual(from, to)) changes[field] = { from, to };
  }
  return changes;
}
