import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** Every .ts file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/** The npm package a bare import specifier names: `pg`, `@scope/name`; undefined for built-ins. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]!)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Issue #22 item 15: what `npm ci --omit=dev && npm start` installs must run billhook. */
describe('package.json', () => {
  it('installs the Node runtime the npm scripts run on (`node`) with the production dependencies', () => {
    expect(pkg.dependencies.node).toMatch(/^\^24\./);
    expect(pkg.devDependencies.node).toBeUndefined();
    // npm puts node_modules/.bin first on the PATH of a script: `node` there is the bundled one.
    expect(pkg.scripts.start).toMatch(/^node /);
  });

  it('lists every package the application imports as a production dependency', () => {
    const imported = new Set<string>();
    for (const file of [...sources(path.join(ROOT, 'src')), ...sources(path.join(ROOT, 'migrations'))]) {
      const text = readFileSync(file, 'utf8');
      // Type-only imports are erased when Node strips the types: they need nothing at run time. An
      // import or export statement holds no `;` or parentheses before its `from`: a declaration
      // (`export async function up(…)`) never runs on into a `from '…'` of SQL below it.
      for (const [, kind, specifier] of text.matchAll(
        /^(import|export)\s(?!type\s)[^'";()]*?from\s+'([^'.][^']*)'/gm,
      )) {
        if (!kind) continue;
        const name = packageOf(specifier!);
        if (name) imported.add(name);
      }
    }
    const missing = [...imported].filter((name) => !(name in pkg.dependencies));
    expect(imported.size).toBeGreaterThan(5);
    expect(missing).toEqual([]);
  });

  it('asks of the system Node what the README says: enough to run npm (Node 20+)', () => {
    expect(pkg.engines.node).toBe('>=20');
    expect(readme).toContain('Requirements: Node 20+ and npm');
    expect(readme).toMatch(/bundled Node 24/);
  });
});
