import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { waitFor } from './wait.ts';

/** The CLI's entry point, as `npm start` and `npm run cli` run it. */
export const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

/** The bin shim `npx billhook` runs (it imports MAIN). */
export const BIN = path.resolve(import.meta.dirname, '../../bin/billhook.js');

/** A `billhook …` child process with its output (stdout and stderr) so far. */
export interface Run {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (a signal: null) once the process has exited. */
  exited: Promise<number | null>;
}

/**
 * Starts `billhook <args>` on the suite's Node with `LOG_LEVEL=warn` and `env` over this process's
 * environment; `detached` gives it its own process group (so a test can signal the whole tree);
 * `entry` is the script run (MAIN, or BIN).
 */
export function billhook(
  args: string[],
  env: Record<string, string> = {},
  detached = false,
  entry = MAIN,
): Run {
  let output = '';
  const child = spawn(process.execPath, [entry, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    detached,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/**
 * The port a `billhook start|web` child started with `PORT=0` (any free port) listens on, read from
 * its start banner (`API:      http://localhost:<port>/v1`, on stderr whatever LOG_LEVEL), printed
 * once it is listening and started. A test learns the port the process itself bound, so no other
 * process can take it in between (as with a port picked free beforehand, released, then bound).
 * @param output the child's output so far (stdout and stderr), of this child only
 * @param exitCode the child's exit code so far (null: running)
 * @throws when the child exits first, or after `timeoutMs`, with its output
 */
export async function listeningPort(
  output: () => string,
  exitCode: () => number | null,
  timeoutMs = 60_000,
): Promise<number> {
  const port = await waitFor(
    'the start banner with the port listened on',
    async () => {
      const found = /API: +http:\/\/localhost:(\d+)\/v1/.exec(output())?.[1];
      if (found) return Number(found);
      if (exitCode() !== null) throw new Error(`billhook exited with ${exitCode()}`);
      return undefined;
    },
    timeoutMs,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; its output:\n${output()}`);
  });
  return port;
}
