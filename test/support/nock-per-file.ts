import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';

/**
 * Whether `file` imports nock, itself or through the test modules it imports (relative imports).
 * Importing nock activates its interceptor, which then sits in the path of every fetch and HTTP
 * request of the worker until `nock.restore()`.
 */
function importsNock(file: string, seen = new Set<string>()): boolean {
  if (seen.has(file)) return false;
  seen.add(file);
  for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)) {
    if (spec === 'nock') return true;
    if (spec?.startsWith('.') && importsNock(path.resolve(path.dirname(file), spec), seen)) return true;
  }
  return false;
}

// The suite's files share their worker's modules (vitest.config.ts `isolate: false`), nock's
// included: its interceptor is on only for the files that use it. A file that imports nock gets it
// active (its first import in the worker activates it; a later file's `beforeAll` activates it
// again), and its `afterAll` takes the interceptor out again (`nock.restore()`), with every fake
// cleared and outgoing HTTP allowed, so the next file of the worker, one sending raw (even
// malformed) bodies to billhook's own server say, runs without it.
let usesNock = false;

beforeAll(async () => {
  usesNock = importsNock(expect.getState().testPath ?? '');
  if (!usesNock) return;
  const { default: nock } = await import('nock');
  if (!nock.isActive()) nock.activate();
});

afterAll(async () => {
  if (!usesNock) return;
  const { default: nock } = await import('nock');
  nock.cleanAll();
  nock.enableNetConnect();
  nock.restore();
});
