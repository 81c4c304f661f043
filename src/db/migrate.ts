import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { FileMigrationProvider, Migrator } from 'kysely/migration';

const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../migrations');

function migrator(db: Kysely<unknown>): Migrator {
  return new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }),
  });
}

/**
 * Runs every pending migration in `migrations/` (Kysely's Migrator, one transaction per migration,
 * guarded by its advisory lock so concurrent `release` runs are safe).
 * @returns the names of the migrations applied now
 * @throws the first migration error, with nothing after it applied
 */
export async function migrateToLatest<T>(db: Kysely<T>): Promise<string[]> {
  const { error, results } = await migrator(db as Kysely<unknown>).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** True when every migration in `migrations/` has been applied to this database. */
export async function migrationsCurrent<T>(db: Kysely<T>): Promise<boolean> {
  const migrations = await migrator(db as Kysely<unknown>).getMigrations();
  return migrations.every((m) => m.executedAt !== undefined);
}
