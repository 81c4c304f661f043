import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { KEEP_ALIVE_TIMEOUT_MS, listenOn } from '../../src/listen.ts';

/**
 * An idle keep-alive connection stays open a minute, not Node's 5 s: with 5 s, a client reusing its
 * connection late (busy cores) met the server closing it ("fetch failed: other side closed" in
 * test/scale/two-web-two-worker.test.ts), and a load balancer keeping its idle connections about a
 * minute would meet the same. The client learns the timeout from the `Keep-Alive` header.
 */
describe('HTTP keep-alive', () => {
  it('announces and keeps idle connections for 65 s, above a load balancer’s 60 s', async () => {
    const { server, port } = await listenOn((_req, res) => res.end('ok'), 0, '127.0.0.1');
    try {
      expect(KEEP_ALIVE_TIMEOUT_MS).toBe(65_000);
      expect(server.keepAliveTimeout).toBe(KEEP_ALIVE_TIMEOUT_MS);
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = request({ port, host: '127.0.0.1', path: '/', headers: { connection: 'keep-alive' } });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve(res.headers));
        });
        req.on('error', reject);
        req.end();
      });
      expect(headers.connection).toBe('keep-alive');
      expect(headers['keep-alive']).toBe('timeout=65');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
