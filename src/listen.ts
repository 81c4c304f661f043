import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Raised when the port to listen on is taken (EADDRINUSE) or not allowed (EACCES). */
export class PortUnavailable extends Error {
  override name = 'PortUnavailable';
}

/**
 * Serves `handler` (an Express app, say) on `port` of `host`; resolves once listening.
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
  const server = createServer(handler);
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
