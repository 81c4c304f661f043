/** A gateway's HTTP answer, read in full. */
export interface GatewayResponse {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * Raised when a gateway call got no HTTP answer: connection refused or reset, DNS failure, or the
 * timeout. Whether the gateway acted is unknown, so callers turn it into an `unknown` outcome.
 */
export class GatewayUnreachable extends Error {
  override name = 'GatewayUnreachable';
}

/** A request to a gateway; `body` is sent as given (JSON or form text). */
export interface GatewayRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /** Milliseconds before the call is abandoned (GATEWAY_TIMEOUT_MS). */
  timeoutMs: number;
}

/**
 * Sends one HTTP request to a gateway with a timeout and reads the whole answer. Any HTTP status is
 * returned (the adapter decides what a 4xx or 5xx means for money); only a missing answer throws.
 * @throws GatewayUnreachable on a network error or timeout
 */
export async function gatewayRequest(request: GatewayRequest): Promise<GatewayResponse> {
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  } catch (error) {
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new GatewayUnreachable(`${request.method} ${new URL(request.url).pathname}: ${reason}`);
  }
}

/** Parses a gateway's JSON answer; an answer that is not JSON yields `undefined`. */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
