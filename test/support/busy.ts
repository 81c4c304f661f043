/**
 * Runs a command while other processes keep every core busy, to show that no test depends on an
 * idle machine (issue #22, item 14):
 *
 *   node test/support/busy.ts npx vitest run test/gateways
 *
 * Starts one busy-looping Node process per core (`os.availableParallelism()`, or `BUSY_PROCESSES`),
 * at the same priority as the command, runs the command with its output passed through, stops the
 * loops, prints the wall time and exits with the command's exit code.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

const command = process.argv.slice(2);
if (command.length === 0) {
  process.stderr.write('usage: node test/support/busy.ts <command> [args…]\n');
  process.exit(2);
}

const count = Number(process.env.BUSY_PROCESSES ?? availableParallelism());
const loops: ChildProcess[] = Array.from({ length: count }, () =>
  spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
);
const stopLoops = () => {
  for (const loop of loops) loop.kill('SIGKILL');
};
process.on('exit', stopLoops);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

const started = Date.now();
const run = spawn(command[0] ?? '', command.slice(1), { stdio: 'inherit' });
run.on('exit', (code, signal) => {
  stopLoops();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(
    `busy.ts: ${count} busy processes; "${command.join(' ')}" took ${seconds} s, exit ${code ?? signal}\n`,
  );
  process.exit(code ?? 1);
});
