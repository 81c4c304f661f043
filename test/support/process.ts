import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

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
