import { z } from 'zod';

/**
 * How hard the suite's load, fuzz and property tests push, from the environment's `TEST_DEPTH`:
 * - `quick` (the default, `npm test`): about a sixth of the fuzz cases, a third of the property
 *   cases and a quarter to a half of the load
 *   (the race and scale tests, the suite's costliest, a quarter to a third), with the same
 *   properties, scenarios, seeds and assertions, so the whole suite stays within 3 minutes on the
 *   idle 2-core reference machine (issue #23);
 * - `deep` (`npm run test:deep`, which CI runs after `npm test`): the full counts, in only the files
 *   that use this module (vitest.config.ts picks them), since the others do the same at any depth.
 * @throws ZodError at import when `TEST_DEPTH` is set to anything else
 */
export const TEST_DEPTH = z
  .enum(['quick', 'deep'], { error: 'TEST_DEPTH must be quick or deep' })
  .default('quick')
  .parse(process.env.TEST_DEPTH || undefined);

/**
 * The count for the run's depth: `quick` in `npm test`, `deep` in `npm run test:deep`. Both are
 * written at each use, so a reader sees what each run does.
 */
export function byDepth(quick: number, deep: number): number {
  return TEST_DEPTH === 'deep' ? deep : quick;
}
