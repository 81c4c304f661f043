import { z } from 'zod';
import { gatewayRequest, parseJsonBody } from './http.ts';

const TokenResponse = z.object({ access_token: z.string().min(1), expires_in: z.coerce.number().positive() });

/** Where and how to get an OAuth 2.0 client-credentials token (RFC 6749 §4.4). */
export interface ClientCredentials {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** Extra form fields, e.g. `{ audience: … }` or `{ scope: … }`. */
  form?: Record<string, string>;
  timeoutMs: number;
}

/** Raised when the token endpoint refuses the credentials or answers nonsense. */
export class OAuthError extends Error {
  override name = 'OAuthError';
}

/**
 * A client-credentials access token, fetched on first use and cached until one minute before it
 * expires; concurrent callers share one fetch. Used by PayPal and SecurePay.
 */
export class TokenCache {
  readonly #credentials: ClientCredentials;
  readonly #now: () => number;
  #token: { value: string; expiresAt: number } | undefined;
  #inFlight: Promise<string> | undefined;

  /** @param now clock in milliseconds (tests pass their own) */
  constructor(credentials: ClientCredentials, now: () => number = Date.now) {
    this.#credentials = credentials;
    this.#now = now;
  }

  /**
   * The current token, fetched when missing or about to expire.
   * @throws OAuthError when the endpoint refuses; GatewayUnreachable when it does not answer
   */
  async get(): Promise<string> {
    if (this.#token && this.#token.expiresAt > this.#now()) return this.#token.value;
    this.#inFlight ??= this.#fetch().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /** Forgets the token (after a 401), so the next `get` fetches a new one. */
  invalidate(): void {
    this.#token = undefined;
  }

  async #fetch(): Promise<string> {
    const { tokenUrl, clientId, clientSecret, form, timeoutMs } = this.#credentials;
    const response = await gatewayRequest({
      method: 'POST',
      url: tokenUrl,
      headers: {
        authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...form }).toString(),
      timeoutMs,
    });
    const parsed = TokenResponse.safeParse(parseJsonBody(response.text));
    if (response.status !== 200 || !parsed.success) {
      throw new OAuthError(`token request to ${new URL(tokenUrl).host} failed with HTTP ${response.status}`);
    }
    this.#token = {
      value: parsed.data.access_token,
      expiresAt: this.#now() + Math.max(0, parsed.data.expires_in - 60) * 1000,
    };
    return parsed.data.access_token;
  }
}
