import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/**
 * Creates a fresh, empty database on the test run's embedded PostgreSQL, owned by the application's
 * role (not a superuser, as billhook runs), with `settings` (e.g. `{ deadlock_timeout: '10s' }`,
 * set by the superuser: some settings are the superuser's only).
 * @returns its `postgres://` URL, as the application's role
 */
export async function createTestDatabase(settings: Record<string, string> = {}): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client(inject('postgresAdminUrl'));
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name} OWNER ${inject('postgresAppRole')}`);
    for (const [setting, value] of Object.entries(settings))
      await client.query(`ALTER DATABASE ${name} SET ${setting} = ${client.escapeLiteral(value)}`);
  } finally {
    await client.end();
  }
  const url = new URL(inject('postgresAppUrl'));
  url.pathname = `/${name}`;
  return url.toString();
}
