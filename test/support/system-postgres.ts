import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { type EmbeddedDatabase, freePort } from '../../src/db/embedded.ts';
import { waitFor } from './wait.ts';

/**
 * A PostgreSQL server as an operator runs one (a distribution's packages, not billhook's embedded
 * one), for the test run: `url` reaches it directly or through PgBouncer in session mode.
 */
export interface SystemDatabase extends EmbeddedDatabase {
  /**
   * What `url` reaches, e.g. `PostgreSQL 15.18 (Debian 15.18-0+deb12u1) through PgBouncer 1.18.0 in
   * session mode`.
   */
  description: string;
  /** How many client connections PgBouncer has accepted so far (its log's logins); 0 without it. */
  pooledConnections(): number;
}

/** The application's role, as on the embedded server: LOGIN, owner of each test database, no superuser. */
const APP_ROLE = 'billhook_app';
/** The operating-system user that owns and runs the server (and PgBouncer) when the tests run as root. */
const SERVICE_USER = 'postgres';
/** Debian's `postgresql-<major>` packages install their programs in /usr/lib/postgresql/<major>/bin. */
const DEBIAN_POSTGRES_ROOT = '/usr/lib/postgresql';

/**
 * The directory of `initdb`, `pg_ctl` and `postgres`: `POSTGRES_BIN_DIR`, else the oldest major
 * version Debian's packages installed (the oldest one billhook supports is what CI must prove).
 * @throws when neither exists, saying what to install
 */
function postgresBinDir(): string {
  const chosen = process.env.POSTGRES_BIN_DIR;
  if (chosen) return chosen;
  const majors = existsSync(DEBIAN_POSTGRES_ROOT)
    ? readdirSync(DEBIAN_POSTGRES_ROOT)
        .filter(
          (name) => /^\d+$/.test(name) && existsSync(path.join(DEBIAN_POSTGRES_ROOT, name, 'bin/postgres')),
        )
        .sort((a, b) => Number(a) - Number(b))
    : [];
  if (!majors[0])
    throw new Error(
      `no PostgreSQL server found in ${DEBIAN_POSTGRES_ROOT}: install Debian's postgresql package (.ci/run does) or set POSTGRES_BIN_DIR`,
    );
  return path.join(DEBIAN_POSTGRES_ROOT, majors[0], 'bin');
}

/** The `pgbouncer` program: `PGBOUNCER`, else Debian's /usr/sbin/pgbouncer, else the PATH's. */
function pgbouncerProgram(): string {
  if (process.env.PGBOUNCER) return process.env.PGBOUNCER;
  if (existsSync('/usr/sbin/pgbouncer')) return '/usr/sbin/pgbouncer';
  return 'pgbouncer';
}

/**
 * Runs `program args` to completion, as the service user when this process is root (PostgreSQL and
 * PgBouncer refuse to run as root).
 * @returns its standard output
 * @throws with its output when it exits non-zero
 */
function run(program: string, args: string[]): string {
  const [file, argv] =
    process.getuid?.() === 0 ? ['runuser', ['-u', SERVICE_USER, '--', program, ...args]] : [program, args];
  try {
    return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${program} ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

/** How many ports a start of the server (or PgBouncer) tries, each found free then taken meanwhile. */
const PORT_ATTEMPTS = 5;

/** Whether `log` says, after its first `from` characters, that a port was in use when bound. */
function portTaken(log: string, from: number): boolean {
  return existsSync(log) && readFileSync(log, 'utf8').slice(from).includes('Address already in use');
}

/** Gives `dir` to the service user when this process is root (so the server can write in it). */
function handToServiceUser(dir: string): void {
  if (process.getuid?.() !== 0) return;
  const id = (flag: string) => Number(execFileSync('id', [flag, SERVICE_USER], { encoding: 'utf8' }).trim());
  chownSync(dir, id('-u'), id('-g'));
}

/**
 * Resolves once `url` takes a query (the server or pooler is up and accepts its credentials).
 * @throws after 20 s, with `log`'s content, or at once when `log` (after its first `from` characters)
 *   says its port was in use
 */
async function answering(url: string, what: string, log: string, from = 0): Promise<void> {
  await waitFor(
    `${what} to answer`,
    async () => {
      // Its port was taken: it exited (and what holds the port may never answer a login).
      if (portTaken(log, from)) throw new Error(`${what}'s port was in use`);
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    20_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; its log:\n${existsSync(log) ? readFileSync(log, 'utf8') : '(none)'}`);
  });
}

/**
 * Starts a PostgreSQL server of the machine's installation (`initdb` and `pg_ctl` of
 * `postgresBinDir()`) in `dir` (a fresh temporary directory), on a free port of 127.0.0.1 with
 * scram-sha-256 password authentication, provisioned as billhook's README asks of an operator: a
 * LOGIN role without superuser (`billhook_app`) that will own billhook's database. With `pgbouncer`,
 * `url` goes through PgBouncer in session mode (`pool_mode = session`, its default
 * `server_reset_query = DISCARD ALL` when a client leaves) on another free port, authenticating
 * clients with scram-sha-256 and the server with the same password; `adminUrl` stays direct (it
 * creates and alters databases). Runs the server and PgBouncer as the `postgres` user when root.
 * @throws when a program is missing or fails to start (with its log)
 */
export async function startSystemPostgres(
  dir: string,
  options: { pgbouncer: boolean },
): Promise<SystemDatabase> {
  const bin = postgresBinDir();
  handToServiceUser(dir);
  const data = path.join(dir, 'data');
  const superuserPassword = randomBytes(24).toString('base64url');
  const appPassword = randomBytes(24).toString('base64url');
  const passwordFile = path.join(dir, 'superuser-password');
  writeFileSync(passwordFile, superuserPassword, { mode: 0o600 });
  handToServiceUser(passwordFile);
  run(path.join(bin, 'initdb'), [
    `--pgdata=${data}`,
    '--username=postgres',
    `--pwfile=${passwordFile}`,
    '--auth=scram-sha-256',
    '--encoding=UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  const serverLog = path.join(dir, 'postgres.log');
  // A port found free is released before the server binds it: should another process take it
  // meanwhile (the server logs "Address already in use"), the server is started on another one.
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    const logged = existsSync(serverLog) ? readFileSync(serverLog, 'utf8').length : 0;
    try {
      run(path.join(bin, 'pg_ctl'), [
        `--pgdata=${data}`,
        `--log=${serverLog}`,
        '--wait',
        '--timeout=60',
        `--options=-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c max_connections=300`,
        'start',
      ]);
      break;
    } catch (error) {
      if (attempt < PORT_ATTEMPTS && portTaken(serverLog, logged)) continue;
      throw error;
    }
  }
  const stopServer = async () => {
    run(path.join(bin, 'pg_ctl'), [`--pgdata=${data}`, '--mode=fast', '--wait', 'stop']);
  };
  const adminUrl = `postgres://postgres:${superuserPassword}@127.0.0.1:${port}/postgres`;
  let version: string;
  const admin = new pg.Client(adminUrl);
  try {
    await admin.connect();
    version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    await admin.query(`CREATE ROLE ${APP_ROLE} LOGIN PASSWORD ${admin.escapeLiteral(appPassword)}`);
  } catch (error) {
    await stopServer();
    throw error;
  } finally {
    await admin.end();
  }
  if (!options.pgbouncer)
    return {
      url: `postgres://${APP_ROLE}:${appPassword}@127.0.0.1:${port}/postgres`,
      adminUrl,
      appRole: APP_ROLE,
      description: `PostgreSQL ${version}`,
      pooledConnections: () => 0,
      stop: stopServer,
    };

  const bouncer = path.join(dir, 'pgbouncer');
  mkdirSync(bouncer);
  handToServiceUser(bouncer);
  let bouncerPort = 0;
  const bouncerLog = path.join(bouncer, 'pgbouncer.log');
  const pidFile = path.join(bouncer, 'pgbouncer.pid');
  // PgBouncer keeps the password in plain text so it can answer the server's SCRAM challenge itself.
  writeFileSync(path.join(bouncer, 'userlist.txt'), `"${APP_ROLE}" "${appPassword}"\n`, { mode: 0o600 });
  handToServiceUser(path.join(bouncer, 'userlist.txt'));
  // Every database name is passed through (`*`): each test file makes its own database. In session
  // mode each client connection holds one server connection for its lifetime, so the pool must be as
  // large as the clients billhook opens (its processes' pools together), below max_connections; a
  // finished test file's idle server connections are closed after 10 s, not left to count against
  // the role's limit while later files run.
  const config = path.join(bouncer, 'pgbouncer.ini');
  const configure = () =>
    writeFileSync(
      config,
      [
        '[databases]',
        `* = host=127.0.0.1 port=${port}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${bouncerPort}`,
        'unix_socket_dir =',
        'auth_type = scram-sha-256',
        `auth_file = ${path.join(bouncer, 'userlist.txt')}`,
        'pool_mode = session',
        'max_client_conn = 1000',
        'default_pool_size = 250',
        'max_user_connections = 250',
        'server_idle_timeout = 10',
        `logfile = ${bouncerLog}`,
        `pidfile = ${pidFile}`,
        '',
      ].join('\n'),
    );
  let url = '';
  let pooler: string;
  try {
    pooler = run(pgbouncerProgram(), ['--version']).split('\n')[0]!.trim();
    // As the server's port: another one should a process take the port found free before PgBouncer
    // binds it (it logs "Address already in use" and exits).
    for (let attempt = 1; ; attempt++) {
      bouncerPort = await freePort();
      configure();
      handToServiceUser(config);
      url = `postgres://${APP_ROLE}:${appPassword}@127.0.0.1:${bouncerPort}/postgres`;
      const logged = existsSync(bouncerLog) ? readFileSync(bouncerLog, 'utf8').length : 0;
      try {
        run(pgbouncerProgram(), ['--daemon', config]);
        await answering(url, 'PgBouncer', bouncerLog, logged);
        break;
      } catch (error) {
        if (attempt < PORT_ATTEMPTS && portTaken(bouncerLog, logged)) continue;
        throw error;
      }
    }
  } catch (error) {
    await stopServer();
    throw error;
  }
  return {
    url,
    adminUrl,
    appRole: APP_ROLE,
    description: `PostgreSQL ${version} through ${pooler} in session mode`,
    pooledConnections: () => readFileSync(bouncerLog, 'utf8').split('login attempt').length - 1,
    async stop() {
      // SIGTERM: PgBouncer's immediate shutdown (the tests' clients are gone by now).
      if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGTERM');
      await stopServer();
    },
  };
}
