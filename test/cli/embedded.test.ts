import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.ts';
import { createDb } from '../../src/db/database.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { createBoss } from '../../src/queue/boss.ts';
import { startClusterOnFreePort } from '../support/ports.ts';
import { billhook, listeningPort, type Run } from '../support/process.ts';
import { waitFor } from '../support/wait.ts';

const CREDENTIALS = 'billhook-credentials.json';

const readyz = async (port: number) =>
  (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status;

/**
 * Resolves once `run` (started with PORT=0) answers /readyz 200, with the port it listens on (read
 * from its start banner).
 */
async function ready(run: Run, timeoutMs = 90_000): Promise<number> {
  const port = await listeningPort(run.output, () => run.child.exitCode, timeoutMs);
  await waitFor(
    `billhook on :${port} to be ready`,
    async () => (await readyz(port)) === 200,
    timeoutMs,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; its output:\n${run.output()}`);
  });
  return port;
}

/** The pid and port of the postmaster running on `dataDir` (its postmaster.pid). */
function postmaster(dataDir: string): { pid: number; port: number } {
  const [pid, , , port] = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  return { pid: Number(pid), port: Number(port) };
}

/** Connects as `user`/`password`; resolves with the client, or rejects with PostgreSQL's error. */
async function connect(user: string, password: string, port: number, database: string): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port, user, password, database });
  await client.connect();
  return client;
}

describe('`billhook start` (npm start) with its embedded PostgreSQL (issue #22 items 6, 10, 11)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'billhook-embedded-'));
  const dataDir = path.join(dir, 'pg');
  const runs: Run[] = [];
  let first: Run;
  let port: number;
  afterAll(() => {
    for (const run of runs) {
      if (run.child.pid && run.child.exitCode === null && run.child.signalCode === null)
        process.kill(-run.child.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes random passwords (kept in the data directory, mode 0600) and runs as a role that is not a superuser', async () => {
    first = billhook(['start'], { EMBEDDED_PG_DIR: dataDir, DATABASE_URL: '', PORT: '0' }, true);
    runs.push(first);
    port = await ready(first);
    await waitFor('the start banner', async () => first.output().includes('Admin API key'));

    const file = path.join(dataDir, CREDENTIALS);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const credentials = JSON.parse(readFileSync(file, 'utf8'));
    const pgPort = postmaster(dataDir).port;
    // The fixed password of earlier versions no longer logs in.
    await expect(connect('billhook', 'billhook', pgPort, 'postgres')).rejects.toMatchObject({
      code: '28P01',
    });

    const admin = await connect('billhook', credentials.superuserPassword, pgPort, 'postgres');
    const role = await admin.query(
      `SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = 'billhook_app'`,
    );
    const owner = await admin.query(
      `SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'billhook'`,
    );
    await admin.end();
    expect(role.rows).toEqual([
      { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolcanlogin: true },
    ]);
    expect(owner.rows).toEqual([{ owner: 'billhook_app' }]);

    // billhook's own connections use that role: it owns the tables, and may not run programs.
    const app = await connect('billhook_app', credentials.appPassword, pgPort, 'billhook');
    try {
      const keys = await app.query('SELECT count(*)::int AS n FROM api_keys');
      expect(keys.rows).toEqual([{ n: 1 }]);
      const busy = await app.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'billhook_app' AND datname = 'billhook'`,
      );
      expect(busy.rows[0]!.n).toBeGreaterThan(1);
      await expect(app.query(`COPY (SELECT 1) TO PROGRAM 'true'`)).rejects.toMatchObject({ code: '42501' });
    } finally {
      await app.end();
    }
  }, 150_000);

  it('refuses a second start on the same data directory, saying which process runs it; CLI commands still join it', async () => {
    const second = billhook(['start'], { EMBEDDED_PG_DIR: dataDir, DATABASE_URL: '', PORT: '0' }, true);
    runs.push(second);
    expect(await second.exited, second.output()).toBe(1);
    expect(second.output()).toContain(
      `billhook: the data directory ${dataDir} is in use: another billhook (pid ${first.child.pid}) runs its embedded PostgreSQL`,
    );
    const keys = billhook(['keys', 'list'], { EMBEDDED_PG_DIR: dataDir, DATABASE_URL: '' }, true);
    runs.push(keys);
    expect(await keys.exited, keys.output()).toBe(0);
    expect(keys.output()).toContain('first admin key');
    // The first one was not disturbed.
    expect(await readyz(port)).toBe(200);
  }, 180_000);

  it('restarts its PostgreSQL when it dies, logs it, and answers /readyz 200 again', async () => {
    const killed = postmaster(dataDir);
    process.kill(killed.pid, 'SIGKILL');
    await waitFor(
      'the restart to be logged',
      async () => first.output().includes('embedded PostgreSQL restarted'),
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; its output:\n${first.output()}`);
    });
    expect(first.output()).toContain('embedded PostgreSQL exited: restarting it');
    // Its HTTP server was not restarted: the same port.
    await waitFor('billhook to be ready again', async () => (await readyz(port)) === 200, 30_000).catch(
      (error: Error) => {
        throw new Error(`${error.message}; its output:\n${first.output()}`);
      },
    );
    const now = postmaster(dataDir);
    expect(now.pid).not.toBe(killed.pid);
    // Same port: the pools' connection strings stay valid.
    expect(now.port).toBe(killed.port);

    first.child.kill('SIGTERM');
    expect(await first.exited, first.output()).toBe(0);
  }, 120_000);

  it('prints the URL and a first admin key once; survives SIGKILL of the whole tree and restarts on the same data', async () => {
    expect(first.output()).toContain(`http://localhost:${port}/v1`);
    const key = /Admin API key \(shown once, store it now\): (bh_\S+)/.exec(first.output())?.[1];
    expect(key).toBeDefined();
    const env = { EMBEDDED_PG_DIR: dataDir, DATABASE_URL: '', PORT: '0' };
    const killed = billhook(['start'], env, true);
    runs.push(killed);
    await ready(killed);
    // Kill billhook and its PostgreSQL at once, leaving a stale postmaster.pid behind.
    process.kill(-(killed.child.pid ?? 0), 'SIGKILL');
    await killed.exited;
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(true);

    const restarted = billhook(['start'], env, true);
    runs.push(restarted);
    const restartedPort = await ready(restarted);
    // Same database: the key from the first start still works, and no new key is printed.
    const response = await fetch(`http://127.0.0.1:${restartedPort}/v1/events`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(response.status).toBe(200);
    expect(killed.output() + restarted.output()).not.toContain('Admin API key');
    restarted.child.kill('SIGTERM');
    expect(await restarted.exited, restarted.output()).toBe(0);
  }, 180_000);

  it('runs only the workers with BILLHOOK_ROLE=worker: no HTTP server', async () => {
    // PORT is a port the test holds (bound here, so no other process takes it) until the worker has
    // started: a worker that bound PORT would have failed ("port … is in use").
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const workerPort = (holder.address() as { port: number }).port;
    const worker = billhook(
      ['start'],
      { EMBEDDED_PG_DIR: dataDir, DATABASE_URL: '', PORT: String(workerPort), BILLHOOK_ROLE: 'worker' },
      true,
    );
    runs.push(worker);
    await waitFor(
      'the worker banner',
      async () => worker.output().includes('billhook worker running'),
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; its output:\n${worker.output()}`);
    });
    expect(worker.output()).not.toContain('API:');
    await new Promise((resolve) => holder.close(resolve));
    expect(await fetch(`http://127.0.0.1:${workerPort}/readyz`).catch(() => 'refused')).toBe('refused');
    worker.child.kill('SIGTERM');
    expect(await worker.exited, worker.output()).toBe(0);
  }, 120_000);

  it('converts a data directory of an earlier billhook (fixed password, tables in `postgres`) at its next start', async () => {
    const legacyDir = path.join(dir, 'legacy');
    // The test must know the port before the server starts: picked free, and another one picked
    // should another process take it before the server binds it.
    const { cluster: old, port: legacyPort } = await startClusterOnFreePort({
      databaseDir: legacyDir,
      user: 'billhook',
      password: 'billhook',
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      initdbFlags: ['--encoding=UTF8', '--no-sync'],
    });
    const oldUrl = `postgres://billhook:billhook@127.0.0.1:${legacyPort}/postgres`;
    const db = createDb(oldUrl, 2);
    await migrateToLatest(db);
    const key = 'bh_legacy_admin_key_0123456789abcdef';
    await createApiKey(db, 'legacy admin', 'admin', key);
    await db.destroy();
    const boss = createBoss(oldUrl, { maintenance: false });
    // As billhook's runtime does: a connection of its pool still closing when the old server stops
    // below reports the server's termination (57P01) as the boss's 'error', unhandled otherwise.
    boss.on('error', () => undefined);
    await boss.start();
    await boss.stop({ graceful: false });
    await old.stop();

    const upgraded = billhook(['start'], { EMBEDDED_PG_DIR: legacyDir, DATABASE_URL: '', PORT: '0' }, true);
    runs.push(upgraded);
    const appPort = await ready(upgraded);
    // Same data: the key made before works, and no new first key was made.
    const events = await fetch(`http://127.0.0.1:${appPort}/v1/events`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(events.status).toBe(200);
    expect(upgraded.output()).not.toContain('Admin API key');

    const pgPort = postmaster(legacyDir).port;
    await expect(connect('billhook', 'billhook', pgPort, 'postgres')).rejects.toMatchObject({
      code: '28P01',
    });
    const credentials = JSON.parse(readFileSync(path.join(legacyDir, CREDENTIALS), 'utf8'));
    const admin = await connect('billhook', credentials.superuserPassword, pgPort, 'billhook');
    const notOwned = await admin.query(
      `SELECT schemaname, tablename FROM pg_tables
       WHERE schemaname IN ('public', 'pgboss') AND tableowner <> 'billhook_app'`,
    );
    await admin.end();
    expect(notOwned.rows).toEqual([]);

    upgraded.child.kill('SIGTERM');
    expect(await upgraded.exited, upgraded.output()).toBe(0);
  }, 180_000);
});
