import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import { FileMigrationProvider, Migrator } from 'kysely/migration';

const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../migrations');

function migrator(db: Kysely<unknown>): Migrator {
  return new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }),
  });
}

/** The migrations in `migrations/` by name: file names without `.ts`, as Kysely's provider reads them. */
async function migrationNames(): Promise<string[]> {
  return (await fs.readdir(MIGRATIONS_DIR))
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .map((file) => file.slice(0, -'.ts'.length));
}

/**
 * The names of the migrations applied to this database (Kysely's `kysely_migration` table), or
 * undefined when it has none yet (a database never migrated).
 */
async function appliedNames<T>(db: Kysely<T>): Promise<Set<string> | undefined> {
  const { rows } = await sql<{ table: string | null }>`
    SELECT to_regclass('kysely_migration')::text AS table
  `.execute(db);
  if (!rows[0]?.table) return undefined;
  const applied = await sql<{ name: string }>`SELECT name FROM kysely_migration`.execute(db);
  return new Set(applied.rows.map((row) => row.name));
}

/**
 * True when the database has applied exactly the migrations in `migrations/`: every one of them and
 * none this code does not know (a database a newer billhook migrated is not current for this one).
 * Two reads (the table's existence and its names), without Kysely's introspection of the catalog.
 */
export async function migrationsCurrent<T>(db: Kysely<T>): Promise<boolean> {
  const [names, applied] = await Promise.all([migrationNames(), appliedNames(db)]);
  return applied !== undefined && applied.size === names.length && names.every((n) => applied.has(n));
}

/**
 * Runs every pending migration in `migrations/` (Kysely's Migrator, one transaction per migration,
 * guarded by its advisory lock so concurrent `release` runs are safe). A database already current
 * (`migrationsCurrent`) is left without taking the lock or reading the catalog: every process's start
 * makes this call, and Kysely's Migrator introspects every table of the database before it finds
 * nothing to do. A database with a migration this code does not know still goes to the Migrator,
 * which refuses it.
 * @returns the names of the migrations applied now
 * @throws the first migration error, with nothing after it applied
 */
export async function migrateToLatest<T>(db: Kysely<T>): Promise<string[]> {
  if (await migrationsCurrent(db)) return [];
  const { error, results } = await migrator(db as Kysely<unknown>).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
