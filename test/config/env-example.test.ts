import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/env.ts';

const example = readFileSync(path.resolve(import.meta.dirname, '../../.env.example'), 'utf8');

describe('.env.example', () => {
  it('lists every variable the configuration reads, and parses as it stands', () => {
    const listed = [...example.matchAll(/^([A-Z_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(listed.map(([name]) => name).sort()).toEqual([...CONFIG_VARIABLES].sort());
    expect(() => loadConfig(Object.fromEntries(listed))).not.toThrow();
  });
});
