import { type KeyObject, X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { gatewayRequest } from '../http.ts';
import { WebhookVerificationError } from '../types.ts';

/**
 * PayPal's webhook signing certificates: which URLs may name one, fetching and caching them, and
 * the checks billhook can make offline before trusting the public key.
 *
 * What is checked (node:crypto `X509Certificate`):
 * - the `PAYPAL-CERT-URL` is https on a PayPal API host under `/v1/notifications/certs/`, before any
 *   fetch (so a delivery cannot make billhook fetch from, or trust, anywhere else);
 * - every certificate in the PEM is inside its validity window at the injected clock;
 * - the first (leaf) certificate is PayPal's: subject CN `messageverificationcerts.paypal.com`, and
 *   the same name passes `checkHost`;
 * - each link of the chain in the PEM: `checkIssued` and `verify` against the next certificate,
 *   which must be a CA;
 * - where the last certificate's issuer is one of Node's bundled roots (`tls.rootCertificates`),
 *   its signature against that root; a self-signed last certificate must itself be such a root.
 *
 * What cannot be checked offline: when the PEM stops at an intermediate that is neither in the PEM
 * nor a bundled root — PayPal's certificate of 2024 (issuer "DigiCert SHA2 Extended Validation
 * Server CA") is served alone — the chain cannot be completed to a root, and revocation (OCSP/CRL) is
 * never checked. Trust then rests on the URL check plus TLS: the certificate is only ever fetched
 * over https from PayPal's own API hosts.
 */

/** The hosts PayPal serves webhook signing certificates from (live and sandbox, old and `-m` names). */
export const PAYPAL_CERT_HOSTS: ReadonlySet<string> = new Set([
  'api.paypal.com',
  'api-m.paypal.com',
  'api.sandbox.paypal.com',
  'api-m.sandbox.paypal.com',
]);

/** The path under which PayPal serves them, e.g. `/v1/notifications/certs/CERT-360caa42-fca2a594-1a5f47cb`. */
export const CERT_PATH_PREFIX = '/v1/notifications/certs/';

/** The subject CN of PayPal's webhook signing certificate. */
export const PAYPAL_SIGNING_CN = 'messageverificationcerts.paypal.com';

/**
 * The one certificate URL served from `PAYPAL_TEST_CERT_FILE` instead of being fetched, in test
 * mode only (billhook's `send-test-webhook paypal` points deliveries at it).
 */
export const TEST_CERT_URL = 'https://api.sandbox.paypal.com/v1/notifications/certs/CERT-billhook-test';

const CERT_NAME = /^[A-Za-z0-9._-]+$/;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Checks a `PAYPAL-CERT-URL` header before anything is fetched: https, no credentials, no port, no
 * query or fragment, a host of `PAYPAL_CERT_HOSTS`, and a path of exactly one certificate name under
 * `/v1/notifications/certs/`.
 * @throws WebhookVerificationError naming what is wrong
 */
export function checkCertUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new WebhookVerificationError('PAYPAL-CERT-URL is not a URL');
  }
  const name = url.pathname.slice(CERT_PATH_PREFIX.length);
  if (
    url.protocol !== 'https:' ||
    url.username !== '' ||
    url.password !== '' ||
    url.port !== '' ||
    url.search !== '' ||
    url.hash !== '' ||
    !PAYPAL_CERT_HOSTS.has(url.hostname) ||
    !url.pathname.startsWith(CERT_PATH_PREFIX) ||
    !CERT_NAME.test(name)
  ) {
    throw new WebhookVerificationError(
      `PAYPAL-CERT-URL ${JSON.stringify(value)} is not a PayPal certificate URL (https://api[-m][.sandbox].paypal.com${CERT_PATH_PREFIX}…)`,
    );
  }
  return url;
}

/** Splits a PEM text into certificates, leaf first. @throws WebhookVerificationError when there are none */
export function parsePemChain(pem: string, what: string): X509Certificate[] {
  const blocks = pem.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new WebhookVerificationError(`${what} holds no PEM certificate`);
  try {
    return blocks.map((block) => new X509Certificate(block));
  } catch (error) {
    throw new WebhookVerificationError(`${what} is not a valid certificate: ${(error as Error).message}`);
  }
}

/** The value of the CN attribute of an X.509 subject as Node prints it (`C=US\n…\nCN=name`). */
function commonName(subject: string): string | undefined {
  return subject
    .split('\n')
    .find((line) => line.startsWith('CN='))
    ?.slice(3);
}

function checkValidity(cert: X509Certificate, now: Date, what: string): void {
  if (now < cert.validFromDate || now > cert.validToDate) {
    throw new WebhookVerificationError(
      `${what} is outside its validity (${cert.validFromDate.toISOString()} … ${cert.validToDate.toISOString()}) at ${now.toISOString()}`,
    );
  }
}

let roots: X509Certificate[] | undefined;
function bundledRoots(): X509Certificate[] {
  roots ??= rootCertificates.map((pem) => new X509Certificate(pem));
  return roots;
}

/** What the chain check found: whether the chain could be verified up to a bundled root. */
export interface ChainReport {
  leaf: X509Certificate;
  reachesRoot: boolean;
}

/**
 * Checks a certificate chain served by PayPal (leaf first) as described at the top of this module.
 * @throws WebhookVerificationError for an expired or not-yet-valid certificate, a leaf that is not
 * PayPal's signing certificate, a broken link, or a self-signed top that is not a bundled root
 */
export function checkPaypalChain(chain: readonly X509Certificate[], now: Date): ChainReport {
  const [leaf] = chain;
  if (!leaf) throw new WebhookVerificationError('empty certificate chain');
  chain.forEach((cert, i) => {
    checkValidity(cert, now, i === 0 ? 'PayPal signing certificate' : `certificate ${i} of the chain`);
  });
  if (commonName(leaf.subject) !== PAYPAL_SIGNING_CN || leaf.checkHost(PAYPAL_SIGNING_CN) === undefined) {
    throw new WebhookVerificationError(
      `certificate subject ${JSON.stringify(commonName(leaf.subject))} is not PayPal's ${PAYPAL_SIGNING_CN}`,
    );
  }
  for (let i = 0; i + 1 < chain.length; i++) {
    const [cert, issuer] = [chain[i]!, chain[i + 1]!];
    if (!issuer.ca || !cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      throw new WebhookVerificationError(
        `certificate ${i} of the chain is not signed by certificate ${i + 1}`,
      );
    }
  }
  const top = chain[chain.length - 1]!;
  const root = bundledRoots().find((r) => top.checkIssued(r) && top.verify(r.publicKey));
  if (!root && top.checkIssued(top)) {
    throw new WebhookVerificationError(
      'the certificate chain ends in a self-signed certificate that is not a trusted root',
    );
  }
  return { leaf, reachesRoot: root !== undefined };
}

/** Settings of the certificate source. */
export interface PaypalCertificatesOptions {
  /** Per-fetch timeout in milliseconds. */
  timeoutMs: number;
  /** The clock validity windows are checked against (tests pin it). */
  now: () => Date;
  /** Test mode only: a PEM trusted for `TEST_CERT_URL` instead of fetching (PAYPAL_TEST_CERT_FILE). */
  testCertificatePem?: string;
  /** How many certificate URLs are cached at most (oldest evicted first). Default 32. */
  maxCached?: number;
}

/**
 * Fetches PayPal signing certificates once per URL and caches the parsed chain (a failed fetch is
 * not cached); the chain and validity checks run on every use, so a cached certificate still stops
 * being trusted when it expires.
 */
export class PaypalCertificates {
  readonly #options: PaypalCertificatesOptions;
  readonly #cache = new Map<string, Promise<X509Certificate[]>>();
  readonly #test: X509Certificate[] | undefined;

  /** @throws WebhookVerificationError when the test certificate PEM does not parse */
  constructor(options: PaypalCertificatesOptions) {
    this.#options = options;
    this.#test =
      options.testCertificatePem === undefined
        ? undefined
        : parsePemChain(options.testCertificatePem, 'PAYPAL_TEST_CERT_FILE');
  }

  /**
   * The public key to verify a delivery signed with the certificate at `url` (already checked by
   * `checkCertUrl`).
   * @throws WebhookVerificationError when the certificate cannot be found or is not trusted
   * @throws GatewayUnreachable when PayPal did not answer the fetch (the delivery is answered 5xx and
   * PayPal retries it)
   */
  async publicKeyFor(url: URL): Promise<KeyObject> {
    const now = this.#options.now();
    if (this.#test && url.href === TEST_CERT_URL) {
      // Trusted explicitly by configuration: only its validity is checked.
      checkValidity(this.#test[0]!, now, 'test certificate (PAYPAL_TEST_CERT_FILE)');
      return this.#test[0]!.publicKey;
    }
    return checkPaypalChain(await this.#chain(url.href), now).leaf.publicKey;
  }

  #chain(href: string): Promise<X509Certificate[]> {
    let pending = this.#cache.get(href);
    if (!pending) {
      const max = this.#options.maxCached ?? 32;
      while (this.#cache.size >= max) this.#cache.delete(this.#cache.keys().next().value!);
      pending = this.#fetch(href);
      this.#cache.set(href, pending);
      pending.catch(() => this.#cache.delete(href));
    }
    return pending;
  }

  async #fetch(href: string): Promise<X509Certificate[]> {
    const response = await gatewayRequest({
      method: 'GET',
      url: href,
      headers: { accept: '*/*' },
      timeoutMs: this.#options.timeoutMs,
    });
    if (response.status !== 200) {
      throw new WebhookVerificationError(`PayPal certificate URL answered HTTP ${response.status}`);
    }
    return parsePemChain(response.text, 'the PayPal certificate');
  }
}
