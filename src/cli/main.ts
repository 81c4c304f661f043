// The `billhook` command as a process: `bin/billhook.js`, `npm start` and `npm run cli` run this file.
// The program itself is in program.ts, which tests run in their own process.
import { enableCompileCache } from 'node:module';

// Node keeps the compiled modules (the stripped TypeScript included) in its compile cache
// (NODE_COMPILE_CACHE, else a directory under the system's temporary directory), so a restart or a
// CLI command starts in about a third less CPU. Enabled before the program is imported, which is
// why that import is dynamic. A cache that cannot be written is skipped, never an error.
enableCompileCache();
const { runCli } = await import('./program.ts');

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  exit: (status) => process.exit(status),
});
// A command that failed ends the process at once (a server it started, or a pool, would keep it
// alive); one that succeeded leaves it to end by itself, or to serve until a signal stops it.
if (code !== 0) process.exit(code);
