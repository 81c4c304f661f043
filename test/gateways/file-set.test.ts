import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GATEWAYS } from '../../src/config/gateways.ts';

/** The files every gateway folder has (src/gateways/README.md). */
const COMMON = [
  'capabilities.ts',
  'client.ts',
  'conventions.ts',
  'currencies.ts',
  'index.ts',
  'schemas.ts',
  'settlement.ts',
  'status.ts',
  'test-events.ts',
  'webhook.ts',
];

describe('gateway folders', () => {
  it.each(GATEWAYS)('%s has the common file set', (gateway) => {
    const files = readdirSync(path.resolve(import.meta.dirname, '../../src/gateways', gateway));
    expect(files).toEqual(expect.arrayContaining(COMMON));
  });
});
