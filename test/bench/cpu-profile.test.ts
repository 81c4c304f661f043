import { describe, expect, it } from 'vitest';
import { sourceOf, summarizeProfile } from '../../bench/cpu-profile.ts';

describe('sourceOf', () => {
  it.each([
    ['file:///work/app/node_modules/pg/lib/client.js', 'query', 'node_modules/pg'],
    ['file:///work/app/node_modules/@types/x/index.js', 'f', 'node_modules/@types/x'],
    ['file:///work/app/src/reconcile/apply.ts', 'applyEvent', 'src/reconcile/apply.ts'],
    ['node:internal/streams/readable', 'read', 'node:internal/streams/readable'],
    ['', '(garbage collector)', '(garbage collector)'],
    ['', 'JSONParse', '(native)'],
  ])('%s is %s', (url, name, source) => {
    expect(sourceOf(url, name)).toBe(source);
  });
});

describe('summarizeProfile', () => {
  it('sums self time per source and per function, largest first, in ms', () => {
    const frame = (functionName: string, url: string, lineNumber = 0) => ({ functionName, url, lineNumber });
    const summary = summarizeProfile({
      nodes: [
        { id: 1, callFrame: frame('(root)', '') },
        { id: 2, callFrame: frame('query', 'file:///a/node_modules/pg/lib/client.js', 9) },
        { id: 3, callFrame: frame('applyEvent', 'file:///a/src/reconcile/apply.ts', 41) },
        { id: 4, callFrame: frame('(garbage collector)', '') },
      ],
      samples: [2, 3, 2, 4, 2],
      timeDeltas: [1000, 3000, 2000, 500, 1500],
    });
    expect(summary.total_ms).toBe(8);
    expect(summary.by_source_ms).toEqual({
      'node_modules/pg': 5,
      'src/reconcile/apply.ts': 3,
      '(garbage collector)': 1,
    });
    expect(Object.keys(summary.top_functions_ms)[0]).toBe('query node_modules/pg:10');
  });
});
