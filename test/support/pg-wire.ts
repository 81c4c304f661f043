import net from 'node:net';

/** One client connection seen by a `WireProxy`. */
export interface WireConnection {
  /**
   * The queries the client has written that the server has not answered yet (no ReadyForQuery back),
   * oldest first, each named by its text (a simple query's, or the Parse message's) or, for a named
   * prepared statement bound again without Parse, by the statement's name.
   */
  pending: string[];
  /** Every query written on this connection, named as in `pending`. */
  written: string[];
  /** The most queries ever pending at once: 1 without pipelining, several with it. */
  maxPending: number;
}

/** A TCP proxy in front of PostgreSQL that reads the frontend/backend protocol passing through it. */
export interface WireProxy {
  /** `url` with the proxy's host and port. */
  url: string;
  connections: WireConnection[];
  close(): Promise<void>;
}

/** Reads whole protocol messages out of a byte stream: `[type, body]`, the first one untyped when `startup`. */
class MessageReader {
  #buffer = Buffer.alloc(0);
  #startup: boolean;
  constructor(startup: boolean) {
    this.#startup = startup;
  }
  *read(chunk: Buffer): Generator<[string, Buffer]> {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const header = this.#startup ? 4 : 5;
      if (this.#buffer.length < header) return;
      const length = this.#buffer.readInt32BE(header - 4);
      const end = header - 4 + length;
      if (this.#buffer.length < end) return;
      const type = this.#startup ? '' : String.fromCharCode(this.#buffer[0] as number);
      yield [type, this.#buffer.subarray(header, end)];
      this.#buffer = this.#buffer.subarray(end);
      this.#startup = false;
    }
  }
}

/** The NUL-terminated string at `offset` of `body` and the offset after it. */
function cString(body: Buffer, offset: number): [string, number] {
  const end = body.indexOf(0, offset);
  return [body.toString('utf8', offset, end), end + 1];
}

/**
 * Starts a proxy forwarding every connection to `url`'s host and port unchanged, recording per
 * connection which queries the client wrote before the server answered (protocol: PostgreSQL docs,
 * "Frontend/Backend Protocol", §55.2.2 Simple Query, §55.2.3 Extended Query — a query ends with
 * Query or Sync, and is answered when ReadyForQuery comes back). Assumes no TLS (the test servers').
 */
export async function startWireProxy(url: string): Promise<WireProxy> {
  const target = new URL(url);
  const connections: WireConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    const seen: WireConnection = { pending: [], written: [], maxPending: 0 };
    connections.push(seen);
    const fromClient = new MessageReader(true);
    const fromServer = new MessageReader(false);
    let name: string | undefined;
    let readyForQueries = false;
    const issue = (query: string) => {
      seen.written.push(query);
      seen.pending.push(query);
      seen.maxPending = Math.max(seen.maxPending, seen.pending.length);
    };
    client.on('data', (chunk: Buffer) => {
      for (const [type, body] of fromClient.read(chunk)) {
        if (type === 'Q') issue(cString(body, 0)[0]);
        else if (type === 'P') name ??= cString(body, cString(body, 0)[1])[0];
        else if (type === 'B') name ??= cString(body, cString(body, 0)[1])[0];
        else if (type === 'S') {
          issue(name ?? '');
          name = undefined;
        }
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      for (const [type] of fromServer.read(chunk)) {
        if (type !== 'Z') continue;
        // The first ReadyForQuery ends the start-up, not a query.
        if (readyForQueries) seen.pending.shift();
        readyForQueries = true;
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as net.AddressInfo).port);
  return {
    url: proxied.toString(),
    connections,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
