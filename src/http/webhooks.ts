import { isUtf8 } from 'node:buffer';
import express, {
  type ErrorRequestHandler,
  type Express,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import {
  GATEWAYS,
  type GatewayName,
  MAX_EVENT_ID_LENGTH,
  WebhookPayloadError,
  WebhookVerificationError,
  type WebhookVerifier,
} from '../gateways/types.ts';
import { InboxBusy } from '../inbox/receive.ts';
import type { AccountLabel, RejectReason } from '../metrics/metrics.ts';
import type { AppDeps } from './deps.ts';
import { sendError } from './errors.ts';
import { rateLimitPerAddress } from './rate-limit.ts';
import { requestId } from './request-id.ts';
import { bindRequestLog } from './request-log.ts';

/** Largest webhook body accepted; larger ones get 413. */
export const WEBHOOK_BODY_LIMIT = '256kb';

/**
 * Largest body accepted on an unsigned route (`/webhooks/eway`, `/webhooks/securepay`): a hint is a
 * few fields (an eWAY redirect's `AccessCode=…` is ~130 characters); larger ones get 413
 * `body_too_large`, nothing stored.
 */
export const UNSIGNED_WEBHOOK_BODY_LIMIT = '8kb';

function rejectReason(error: unknown): RejectReason {
  if (error instanceof WebhookVerificationError) return 'signature';
  if (error instanceof WebhookPayloadError) return 'payload';
  if (error instanceof InboxBusy) return 'busy';
  if ((error as { type?: string }).type === 'entity.too.large') return 'too_large';
  return 'unavailable';
}

const ACK = Buffer.from('{"received":true}');

/** `200 {"received":true}`, written directly: the hot path needs no ETag or JSON serialisation. */
function acknowledge(res: Response): void {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': ACK.length });
  res.end(ACK);
}

/** The raw body `express.raw` read (empty when there was none). */
function rawBodyOf(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function isGateway(name: string): name is GatewayName {
  return (GATEWAYS as readonly string[]).includes(name);
}

/**
 * The metrics' `account` label of a delivery: `default`, the id of the existing account its route
 * resolved to, or `unknown` before (or without) one — never the URL's segment as sent.
 */
function accountLabel(req: Request): AccountLabel {
  if (req.gatewayAccount === null) return 'default';
  return req.gatewayAccount === undefined ? 'unknown' : (req.gatewayAccount as AccountLabel);
}

declare module 'express-serve-static-core' {
  interface Request {
    /** The verifier of the account a webhook route delivers to (set before the body is read). */
    webhookVerifier?: WebhookVerifier;
    /** The gateway account (`gwa_…`) of `/webhooks/:gateway/:account`; null for the default account. */
    gatewayAccount?: string | null;
  }
}

/**
 * Adds `POST /webhooks/:gateway` (PRODUCT.md §2) to the app itself, not through a mounted router (one
 * routing layer less for every delivery): raw body → verify on the raw bytes → inbox row and its
 * job in one transaction → `200 {"received":true}`. Nothing else happens on the request path.
 * 404 for a gateway that is not configured, 400 for a bad signature or body (`event_id_too_long` for
 * an event id or type over `MAX_EVENT_ID_LENGTH` characters), 413 over the limit, 503 when the
 * database cannot store it (the gateway retries). The unsigned routes (a verifier marked `unsigned`)
 * are rate-limited per source address (`UNSIGNED_WEBHOOK_RATE_LIMIT_PER_MINUTE`, 429 before the body
 * is read), take at most `UNSIGNED_WEBHOOK_BODY_LIMIT`, and store only the parsed hint.
 * `POST /webhooks/:gateway/:account` does the same for a gateway account (`gwa_…`; `default` is the
 * gateway's default account), verified with that account's secrets (PRODUCT.md §12): 404
 * `gateway_account_not_found` for an account that does not exist or is another gateway's. A disabled
 * account's deliveries are still verified and stored: it takes no new charges, refunds or voids, but
 * what it already moved (a refund pending when it was disabled, a dispute, a chargeback) must still
 * be booked.
 */
export function addWebhookRoutes(
  app: Express,
  { config, inbox, registry, accounts, metrics, log }: AppDeps,
): void {
  const notConfigured = (
    req: Request,
    res: Response,
    gateway: string,
    account: AccountLabel,
    code: string,
    message: string,
  ) => {
    metrics.webhooksRejected.inc({
      gateway: isGateway(gateway) ? gateway : 'unknown',
      account,
      reason: 'not_configured',
    });
    req.log.warn({ gateway, account: req.params.account, reason: 'not_configured' }, 'webhook rejected');
    sendError(res, 404, 'not_found', code, message);
  };
  // First on each route (no router-level middleware on the hot path): the request id (the caller's
  // X-Request-Id when it is a plain token) bound to `req.log` (see lazyRequestLogs: a child logger
  // with it, made only when something is logged); then 404 for a gateway that is not configured.
  const configured: RequestHandler = (req, res, next) => {
    bindRequestLog(req, requestId(req, res));
    const gateway = String(req.params.gateway);
    const verifier = isGateway(gateway) ? registry.get(gateway)?.webhook : undefined;
    if (!verifier)
      return notConfigured(
        req,
        res,
        gateway,
        'default',
        'gateway_not_configured',
        `no webhook endpoint for gateway ${gateway}`,
      );
    req.webhookVerifier = verifier;
    req.gatewayAccount = null;
    next();
  };
  // The same for a gateway account: its verifier, built from its credentials and cached; a disabled
  // account's too (money it already moved is still reported).
  const accountConfigured: RequestHandler = async (req, res, next) => {
    const account = String(req.params.account);
    if (account === 'default') return configured(req, res, next);
    bindRequestLog(req, requestId(req, res));
    const gateway = String(req.params.gateway);
    const verifier = isGateway(gateway)
      ? (await accounts.adapterOf(gateway, account, { includeDisabled: true }))?.webhook
      : undefined;
    if (!verifier)
      return notConfigured(
        req,
        res,
        gateway,
        'unknown',
        'gateway_account_not_found',
        `no webhook endpoint for ${gateway} account ${account}`,
      );
    req.webhookVerifier = verifier;
    req.gatewayAccount = account;
    next();
  };
  const verifierOf = (req: Request): WebhookVerifier | undefined => req.webhookVerifier;
  const signedBody = express.raw({ type: () => true, limit: WEBHOOK_BODY_LIMIT, inflate: false });
  const unsignedBody = express.raw({ type: () => true, limit: UNSIGNED_WEBHOOK_BODY_LIMIT, inflate: false });
  const rawBody: RequestHandler = (req, res, next) =>
    (verifierOf(req)?.unsigned ? unsignedBody : signedBody)(req, res, next);
  const perAddress = rateLimitPerAddress(config.UNSIGNED_WEBHOOK_RATE_LIMIT_PER_MINUTE, (req) => {
    const gateway = req.params.gateway as GatewayName;
    metrics.webhooksRejected.inc({ gateway, account: accountLabel(req), reason: 'rate_limited' });
    req.log.warn({ gateway, reason: 'rate_limited', ip: req.ip }, 'webhook rejected');
  });
  const limited: RequestHandler = (req, res, next) =>
    verifierOf(req)?.unsigned ? perAddress(req, res, next) : next();

  const receive: RequestHandler = async (req, res) => {
    const gateway = req.params.gateway as GatewayName;
    const account = accountLabel(req);
    const acknowledged = metrics.ackSeconds.startTimer({ gateway, account });
    const verifier = verifierOf(req);
    const body = rawBodyOf(req);
    const delivery = await verifier!.verify(body, req.headers);
    if (delivery.eventId.length > MAX_EVENT_ID_LENGTH || delivery.eventType.length > MAX_EVENT_ID_LENGTH) {
      throw new WebhookPayloadError(
        `the event id or type is longer than ${MAX_EVENT_ID_LENGTH} characters`,
        'event_id_too_long',
      );
    }
    if (!isUtf8(body)) throw new WebhookPayloadError('body is not valid UTF-8');
    const text = body.toString('utf8');
    // PostgreSQL stores no NUL character, and ids must compare as sent (no lone surrogates).
    for (const field of [text, delivery.eventId, delivery.eventType]) {
      if (field.includes('\u0000') || !field.isWellFormed()) {
        throw new WebhookPayloadError('the delivery contains a NUL character or an unpaired surrogate');
      }
    }
    const receipt = await inbox.receive({
      gateway,
      account: req.gatewayAccount ?? null,
      eventId: delivery.eventId,
      eventType: delivery.eventType,
      body: delivery.storedBody ?? text,
    });
    if (log.isLevelEnabled('info'))
      req.log.info(
        {
          gateway,
          account: req.gatewayAccount,
          eventId: delivery.eventId,
          inboxId: receipt.id,
          duplicate: receipt.duplicate,
        },
        'webhook received',
      );
    acknowledge(res);
    acknowledged();
    metrics.webhooksReceived.inc({ gateway, account, duplicate: String(receipt.duplicate) });
  };
  app.post('/webhooks/:gateway', configured, limited, rawBody, receive);
  app.post('/webhooks/:gateway/:account', accountConfigured, limited, rawBody, receive);

  // Count and log every refusal by reason, then let the error table answer it.
  app.use('/webhooks/:gateway', ((error, req, _res, next) => {
    const gateway = String(req.params.gateway);
    const reason = rejectReason(error);
    metrics.webhooksRejected.inc({
      gateway: isGateway(gateway) ? gateway : 'unknown',
      account: accountLabel(req),
      reason,
    });
    req.log.warn(
      { gateway, reason, detail: error instanceof Error ? error.message : String(error) },
      'webhook rejected',
    );
    next(error);
  }) as ErrorRequestHandler);

  if (config.BILLHOOK_BENCH_ROUTES) {
    // The benchmark's baseline: the same parsing and verification, no database.
    app.post('/bench/verify-only/:gateway', configured, rawBody, async (req, res) => {
      const body = rawBodyOf(req);
      await verifierOf(req)?.verify(body, req.headers);
      acknowledge(res);
    });
  }
}
