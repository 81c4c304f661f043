import http from 'node:http';

/** One request the paced sender makes: its path, headers and body. */
export interface PacedRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** What a paced run did: requests sent, answered 2xx, answered otherwise, failed, and ack latencies. */
export interface PacedResult {
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** How many answers had each HTTP status (`0`: the request failed without one). */
  statuses: Record<string, number>;
  /** The most requests that were due but not yet sent because `maxInFlight` were unanswered. */
  maxBehind: number;
  /** Milliseconds from each 2xx request's write to its answer's end. */
  latenciesMs: number[];
  seconds: number;
}

/**
 * Sends POST requests to `base` at a steady `ratePerSecond` for `seconds` (open loop: the n-th
 * request is due at n / rate seconds, whatever the answers' latency, up to `maxInFlight` unanswered
 * on keep-alive connections). autocannon's rate limit sends each connection's quota of a second at
 * once at the start of the second, a burst every second; this spreads the requests over the second.
 * `make(n)` builds the n-th request (n from 0); `onAnswer(n, status, atMs)` is called with the
 * `Date.now()` at which its answer ended.
 */
export async function sendPaced(options: {
  base: string;
  ratePerSecond: number;
  seconds: number;
  maxInFlight: number;
  make: (n: number) => PacedRequest;
  onAnswer?: (n: number, status: number, atMs: number) => void;
}): Promise<PacedResult> {
  const { base, ratePerSecond, seconds, maxInFlight, make, onAnswer } = options;
  const url = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: maxInFlight });
  const result: PacedResult = {
    sent: 0,
    ok: 0,
    non2xx: 0,
    errors: 0,
    statuses: {},
    maxBehind: 0,
    latenciesMs: [],
    seconds,
  };
  const total = Math.round(ratePerSecond * seconds);
  let inFlight = 0;
  const started = performance.now();
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const send = (n: number) => {
    const request = make(n);
    const sentAt = performance.now();
    inFlight++;
    const done = (status: number) => {
      inFlight--;
      const atMs = Date.now();
      result.statuses[status] = (result.statuses[status] ?? 0) + 1;
      if (status >= 200 && status < 300) {
        result.ok++;
        result.latenciesMs.push(performance.now() - sentAt);
      } else if (status === 0) result.errors++;
      else result.non2xx++;
      onAnswer?.(n, status, atMs);
      pump();
    };
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: request.path,
        headers: { ...request.headers, 'content-length': Buffer.byteLength(request.body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode ?? 0));
      },
    );
    req.on('error', () => done(0));
    req.end(request.body);
  };

  const pump = () => {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * ratePerSecond));
    while (result.sent < due && inFlight < maxInFlight) send(result.sent++);
    result.maxBehind = Math.max(result.maxBehind, due - result.sent);
    if (result.sent === total && inFlight === 0) finish();
  };

  const timer = setInterval(pump, 2);
  await finished;
  clearInterval(timer);
  agent.destroy();
  result.seconds = (performance.now() - started) / 1000;
  return result;
}
