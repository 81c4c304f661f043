import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QUEUES } from '../src/queue/queues.ts';

/**
 * ARCHITECTURE.md's layer table is the rule this test enforces: a module in `src/` may import its
 * own folder and any lower layer, nothing in its own layer's other folders and nothing above. The
 * table is read from the document itself, so the two cannot drift apart.
 */
const root = resolve(import.meta.dirname, '..');
const architecture = readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8');

/** `units` (a top-level folder `name/` or file `name.ts` of src/) → layer number, from the table. */
function layerTable(): Map<string, number> {
  const section = architecture.split(/^## /m).find((part) => part.startsWith('Layers'));
  if (!section) throw new Error('ARCHITECTURE.md has no "## Layers" section');
  const layers = new Map<string, number>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const layer = /^(\d+)\b/.exec(cells[1] ?? '');
    if (!layer) continue;
    for (const [, unit] of (cells[2] ?? '').matchAll(/`([a-z-]+(?:\/|\.ts))`/g))
      layers.set(unit!, Number(layer[1]));
  }
  return layers;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The unit of `path` (absolute, inside src/): `folder/` or `file.ts`. */
function unitOf(path: string): string {
  const [first, ...rest] = relative(join(root, 'src'), path).split('/');
  return rest.length > 0 ? `${first}/` : first!;
}

/**
 * A module specifier in `import … from '…'`, `export … from '…'`, `import '…'` or `import('…')`
 * (sources are formatted by Biome, so each `from` and its quote are on one line).
 */
const IMPORT = /(?:\bfrom|^import|\bimport\()\s*'([^']+)'/gm;

/** A write to a table: Kysely's insertInto/updateTable/deleteFrom, or INSERT/UPDATE/DELETE in SQL. */
const WRITE =
  /(?:insertInto|updateTable|deleteFrom|mergeInto)\('([a-z_]+)'\)|(?:INSERT INTO|UPDATE|DELETE FROM) ([a-z_]+)\b/g;

/** Every import between two different units of src/, static, type-only or dynamic. */
function edges(): { from: string; to: string; file: string; target: string }[] {
  return sources(join(root, 'src')).flatMap((file) => {
    const specifiers = [...readFileSync(file, 'utf8').matchAll(IMPORT)].map(([, specifier]) => specifier!);
    return specifiers
      .filter((specifier) => specifier.startsWith('.'))
      .map((specifier) => resolve(dirname(file), specifier))
      .filter((target) => unitOf(target) !== unitOf(file))
      .map((target) => ({
        from: unitOf(file),
        to: unitOf(target),
        file: relative(root, file),
        target: relative(root, target),
      }));
  });
}

describe('ARCHITECTURE.md', () => {
  const layers = layerTable();

  it('places every folder and top-level file of src/ in exactly one layer', () => {
    const units = readdirSync(join(root, 'src'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory() || entry.name.endsWith('.ts'))
      .map((entry) => (entry.isDirectory() ? `${entry.name}/` : entry.name))
      .sort();
    expect([...layers.keys()].sort()).toEqual(units);
  });

  it('has no import from a module to a higher layer or to another folder of its own layer', () => {
    const forbidden = edges()
      .filter(({ from, to }) => (layers.get(to) ?? Number.POSITIVE_INFINITY) >= (layers.get(from) ?? -1))
      .map(
        ({ file, target, from, to }) => `${file} → ${target} (layer ${layers.get(from)} → ${layers.get(to)})`,
      );
    expect(forbidden).toEqual([]);
  });

  it('has no cycle between folders', () => {
    const next = new Map<string, Set<string>>();
    for (const { from, to } of edges()) next.set(from, (next.get(from) ?? new Set()).add(to));
    const cycles: string[] = [];
    for (const start of next.keys()) {
      // A path back to `start` through other units is a cycle; each is reported from its smallest unit.
      const stack: string[][] = [[start]];
      const seen = new Set<string>();
      while (stack.length > 0) {
        const path = stack.pop()!;
        for (const to of next.get(path.at(-1)!) ?? []) {
          if (to === start && path.every((unit) => unit >= start)) cycles.push([...path, to].join(' → '));
          else if (!seen.has(to) && to > start) {
            seen.add(to);
            stack.push([...path, to]);
          }
        }
      }
    }
    expect(cycles).toEqual([]);
  });

  it('gives each table one owner: only its folder writes it', () => {
    const section = architecture.split(/^## /m).find((part) => part.startsWith('Tables')) ?? '';
    const owner = new Map<string, string>();
    for (const line of section.split('\n')) {
      const [, tables, folder] = line.split('|').map((cell) => cell.trim());
      if (!folder?.startsWith('`')) continue;
      for (const [, table] of tables!.matchAll(/`([a-z_]+)`/g)) owner.set(table!, folder.replaceAll('`', ''));
    }
    const schema = readFileSync(join(root, 'src/db/schema.ts'), 'utf8');
    const tables = [...schema.matchAll(/^ {2}([a-z_]+): \w+Table;$/gm)].map(([, table]) => table!);
    expect([...owner.keys()].sort()).toEqual(tables.sort());
    const strays = sources(join(root, 'src')).flatMap((file) => {
      const code = readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line))
        .join('\n');
      return [...code.matchAll(WRITE)]
        .map(([, quoted, raw]) => (quoted ?? raw)!)
        .filter((table) => owner.has(table) && owner.get(table) !== unitOf(file))
        .map((table) => `${relative(root, file)} writes ${table} (owner ${owner.get(table)})`);
    });
    expect(strays).toEqual([]);
  });

  it('posts to the ledger only what a movement of src/ledger/movements.ts returns', () => {
    const movements = new Set(
      [
        ...readFileSync(join(root, 'src/ledger/movements.ts'), 'utf8').matchAll(/^export function (\w+)/gm),
      ].map(([, name]) => name!),
    );
    const files = [...sources(join(root, 'src')), ...sources(join(root, 'migrations'))].filter(
      (file) => !file.includes('/src/ledger/'),
    );
    const posts = files.flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/\bpostEntry\(\s*\w+,\s*(\w+)/g)].map(([, argument]) => ({
        file: relative(root, file),
        argument: argument!,
      })),
    );
    expect(posts.length).toBeGreaterThan(15);
    expect(posts.filter(({ argument }) => !movements.has(argument))).toEqual([]);
  });

  it('names only files that exist', () => {
    const named = [...architecture.matchAll(/`((?:src|test|migrations|bench)\/[\w./-]+)`/g)].map(
      ([, p]) => p!,
    );
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((path) => !existsSync(join(root, path)))).toEqual([]);
  });

  it('describes every queue', () => {
    const queuesSection = architecture.split(/^## /m).find((part) => part.startsWith('Queues')) ?? '';
    expect(Object.values(QUEUES).filter((queue) => !queuesSection.includes(`\`${queue}\``))).toEqual([]);
  });
});
