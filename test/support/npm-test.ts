/**
 * `npm test`: the type check (`tsc`) and the lint (`biome check --error-on-warnings .`: a warning
 * fails it too) run while the suite (`vitest run`) starts and runs, instead of before it; the
 * command fails when any of the three fails.
 *
 *   node test/support/npm-test.ts [vitest arguments…]
 *
 * The suite's output streams as it comes; the checks' output is held and printed after it, each
 * with its exit status, so the three never interleave. Ran one after the other, the checks (about
 * 7 s on two idle cores: tsc 5.6 s, Biome 1.4 s) came before the suite's first test; side by side,
 * they overlap its start (the PostgreSQL cluster and the template database, its workers' imports).
 * Exits with the first failing exit code in the order tsc, Biome, vitest (0 when all pass).
 *
 * tsc checks on one thread (`--singleThreaded`): beside the suite, which keeps both cores busy, its
 * default parallel checkers finish no sooner and each redoes part of the work (measured on the loaded
 * machine, 2026-12-07, two runs each: 21.7 and 23.3 CPU-seconds with the default checkers, 13.9 and
 * 12.6 on one thread, in the same wall time).
 */
import { spawn } from 'node:child_process';

/** A command run to completion: its exit code (1 for a signal) and, when held, its output. */
interface Finished {
  label: string;
  code: number;
  output: string;
}

/** Runs `command args` (from node_modules/.bin, which npm puts on the PATH); holds its output when `hold`. */
function run(label: string, command: string, args: string[], hold: boolean): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: hold ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    let output = '';
    child.stdout?.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      output += chunk;
    });
    child.on('error', (error) => resolve({ label, code: 1, output: `${output}${error.message}\n` }));
    child.on('close', (code) => resolve({ label, code: code ?? 1, output }));
  });
}

const checks = [
  run(
    'tsc -p tsconfig.json --noEmit --singleThreaded',
    'tsc',
    ['-p', 'tsconfig.json', '--noEmit', '--singleThreaded'],
    true,
  ),
  run('biome check --error-on-warnings .', 'biome', ['check', '--error-on-warnings', '.'], true),
];
const suite = run('vitest run', 'vitest', ['run', ...process.argv.slice(2)], false);
const finished = [...(await Promise.all(checks)), await suite];
for (const check of finished.slice(0, 2)) {
  process.stdout.write(`\n> ${check.label}: exit ${check.code}\n${check.output}`);
}
process.exitCode = finished.find((command) => command.code !== 0)?.code ?? 0;
