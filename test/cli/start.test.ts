import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded.ts';
import { waitFor } from '../support/wait.ts';

const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

/** `billhook start` as `npm start` runs it: embedded PostgreSQL in its own data directory. */
function start(
  dataDir: string,
  port: number,
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, [MAIN, 'start'], {
    env: {
      ...process.env,
      DATABASE_URL: '',
      EMBEDDED_PG_DIR: dataDir,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      ...env,
    },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  return { child, output: () => output };
}

async function ready(port: number, output: () => string) {
  await waitFor(
    `billhook on :${port} to be ready`,
    async () => {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return response?.status === 200;
    },
    60_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; its output:\n${output()}`);
  });
}

describe('npm start with the embedded PostgreSQL', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'billhook-start-'));
  const dataDir = path.join(dir, 'pg');
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) {
      if (child.pid && child.exitCode === null && child.signalCode === null)
        process.kill(-child.pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts, prints the URL, endpoints and a first admin key, survives SIGKILL of the whole tree and restarts on the same data', async () => {
    const port = await freePort();
    const first = start(dataDir, port);
    children.push(first.child);
    await ready(port, first.output);
    await waitFor('the start banner', async () => first.output().includes('Admin API key'));
    expect(first.output()).toContain(`http://localhost:${port}/v1`);
    const key = /Admin API key \(shown once, store it now\): (bh_\S+)/.exec(first.output())?.[1];
    expect(key).toBeDefined();

    // Kill billhook and its PostgreSQL at once, leaving a stale postmaster.pid behind.
    process.kill(-(first.child.pid ?? 0), 'SIGKILL');
    await waitFor(
      'the process tree to die',
      async () => first.child.exitCode !== null || first.child.signalCode !== null,
    );
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(true);

    const second = start(dataDir, port);
    children.push(second.child);
    await ready(port, second.output);
    // Same database: the key from the first start still works, and no new key is printed.
    const response = await fetch(`http://127.0.0.1:${port}/v1/events`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(response.status).toBe(200);
    expect(second.output()).not.toContain('Admin API key');

    // SIGTERM: a graceful stop.
    second.child.kill('SIGTERM');
    await waitFor('a graceful exit', async () => second.child.exitCode !== null);
    expect(second.child.exitCode, second.output()).toBe(0);
  }, 120_000);

  it('runs only the workers with BILLHOOK_ROLE=worker: no HTTP server', async () => {
    const port = await freePort();
    const worker = start(dataDir, port, { BILLHOOK_ROLE: 'worker' });
    children.push(worker.child);
    await waitFor(
      'the worker banner',
      async () => worker.output().includes('billhook worker running'),
      60_000,
    );
    expect(worker.output()).not.toContain('API:');
    expect(await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => 'refused')).toBe('refused');
    worker.child.kill('SIGTERM');
    await waitFor('a graceful exit', async () => worker.child.exitCode !== null);
    expect(worker.child.exitCode, worker.output()).toBe(0);
  }, 120_000);
});
