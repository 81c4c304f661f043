import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Raised when the port to listen on is taken (EADDRINUSE) or not allowed (EACCES). */
export class PortUnavailable extends Error {
  override name = 'PortUnavailable';
}

/**
 * How long, in ms, an idle keep-alive connection stays open (Node's default is 5 s). A client closes
 * an idle connection a little before the `Keep-Alive: timeout=` the server announces (undici: by its
 * keepAliveTimeoutThreshold, a second or two); a client running late (a busy machine) can send a
 * request on a connection the server is closing at that moment, and it fails ("other side closed").
 * A load balancer in front keeps idle connections to the server for about a minute (AWS ALB: 60 s):
 * above that, the balancer, not the server, closes them. The idle connections close at once when the
 * process stops (`drain`).
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/**
 * Serves `handler` (an Express app, say) on `port` of `host`, idle keep-alive connections open for
 * {@link KEEP_ALIVE_TIMEOUT_MS}; resolves once listening.
 * @param port TCP port, 0 for any free one
 * @returns the server and the port it listens on
 * @throws PortUnavailable "port 3000 is in use" (EADDRINUSE) or "port 80 is not allowed for this
 *   user" (EACCES); any other listen error as it is
 */
export function listenOn(
  handler: RequestListener,
  port: number,
  host: string,
): Promise<{ server: Server; port: number }> {
  const server = createServer({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }, handler);
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') reject(new PortUnavailable(`port ${port} is in use`));
      else if (error.code === 'EACCES')
        reject(new PortUnavailable(`port ${port} is not allowed for this user`));
      else reject(error);
    });
    server.listen(port, host, () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}
