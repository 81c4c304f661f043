import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as listener, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { type EmbeddedDatabase, freePort, startEmbeddedPostgres } from '../../src/db/embedded.ts';

/**
 * A free port found, released, and taken by another process before the embedded PostgreSQL binds it
 * (a busy CI machine): the start failed ("did not start"), failing `billhook start` and the test
 * run's setup. Now a start whose port is taken tries another one.
 */
describe('embedded PostgreSQL whose free port is taken before it binds it', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'billhook-embedded-port-'));
  let holder: Server | undefined;
  let database: EmbeddedDatabase | undefined;
  afterAll(async () => {
    await database?.stop();
    holder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts on another port, logs it, and takes connections', async () => {
    const taken = listener();
    holder = taken;
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    // The port a start picks first is one another process holds, as if it had bound the free port
    // found before the server did; the next ones are free.
    const race = { port: (taken.address() as { port: number }).port, handedOut: 0 };
    const pickPort = async () => (race.handedOut++ === 0 ? race.port : freePort());
    const warnings: { fields: object; message: string }[] = [];
    database = await startEmbeddedPostgres(path.join(dir, 'pg'), {
      log: { warn: (fields, message) => warnings.push({ fields, message }), error: () => undefined },
      pickPort,
    });
    expect(race.handedOut).toBe(2);
    const port = Number(new URL(database.url).port);
    expect(port).not.toBe(race.port);
    expect(warnings).toEqual([
      {
        fields: { dir: path.join(dir, 'pg'), port: race.port },
        message: 'embedded PostgreSQL port taken meanwhile: trying another',
      },
    ]);
    const client = new pg.Client(database.url);
    await client.connect();
    try {
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.end();
    }
  }, 180_000);
});
