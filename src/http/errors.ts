import type { ErrorRequestHandler, Response } from 'express';
import { AppError } from '../errors.ts';
import { GatewayUnreachable } from '../gateways/http.ts';
import { WebhookPayloadError, WebhookVerificationError } from '../gateways/types.ts';
import { InboxBusy } from '../inbox/receive.ts';
import { noteErrorCode } from './request-log.ts';

/**
 * The API's error envelope (PRODUCT.md §6): `fields` names each invalid input field with its
 * message, and is `{}` when the error is not about a field.
 */
export interface ErrorBody {
  error: { type: string; code: string; message: string; fields: Record<string, string> };
}

/** Sends an error envelope; its `code` goes on the request's access line too (`errorCode`). */
export function sendError(
  res: Response,
  status: number,
  type: string,
  code: string,
  message: string,
  fields?: Record<string, string>,
): void {
  const body: ErrorBody = { error: { type, code, message, fields: fields ?? {} } };
  noteErrorCode(res, code);
  res.status(status).json(body);
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '08006',
  '08001',
  '08003',
]);

/**
 * True for errors that mean the database cannot be reached right now (refused, reset, shutting
 * down, too many connections, pool timeout), which the API answers with 503.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: string }).code;
  if (code && UNAVAILABLE_CODES.has(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|Client has encountered a connection error/i.test(
    error.message,
  );
}

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  expose?: boolean;
}

/**
 * The one table mapping errors to HTTP: AppError → its status; webhook verification → 400; body too
 * large → 413; malformed JSON → 400; database unreachable → 503 with Retry-After; anything else → 500.
 */
export function errorHandler(): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (res.headersSent) return;
    if (error instanceof AppError)
      return sendError(res, error.status, error.type, error.code, error.message, error.fields);
    if (error instanceof WebhookVerificationError) {
      return sendError(res, 400, 'invalid_signature', 'signature_verification_failed', error.message);
    }
    if (error instanceof WebhookPayloadError) {
      return sendError(res, 400, 'invalid_request', error.code, error.message);
    }
    const parserError = error as BodyParserError;
    if (parserError.type === 'entity.too.large') {
      // Let the client finish sending so it can read the answer instead of seeing a reset.
      res.setHeader('Connection', 'close');
      if (!req.complete) {
        req.resume();
        req.once('end', () => sendError(res, 413, 'invalid_request', 'body_too_large', parserError.message));
        return;
      }
      return sendError(res, 413, 'invalid_request', 'body_too_large', parserError.message);
    }
    if (parserError.type === 'entity.parse.failed') {
      return sendError(res, 400, 'invalid_request', 'invalid_json', 'the body is not valid JSON');
    }
    // Other client errors of the parser and the router (e.g. a path that does not decode), exposed or not.
    if (parserError.status && parserError.status >= 400 && parserError.status < 500) {
      return sendError(
        res,
        parserError.status,
        'invalid_request',
        parserError.type ?? 'bad_request',
        parserError.message,
      );
    }
    if (error instanceof GatewayUnreachable) {
      // e.g. PayPal's signing certificate could not be fetched: the gateway retries the delivery.
      req.log.warn({ path: req.path, reason: error.message }, 'gateway unreachable');
      res.setHeader('Retry-After', '30');
      return sendError(
        res,
        503,
        'unavailable',
        'gateway_unreachable',
        'the gateway could not be reached; retry later',
      );
    }
    if (error instanceof InboxBusy) {
      res.setHeader('Retry-After', '1');
      return sendError(
        res,
        503,
        'unavailable',
        'busy',
        'too many webhooks are waiting to be stored; retry later',
      );
    }
    if (isDatabaseUnavailable(error)) {
      req.log.error({ err: error, path: req.path }, 'database unavailable');
      res.setHeader('Retry-After', '5');
      return sendError(
        res,
        503,
        'unavailable',
        'database_unavailable',
        'the database is unavailable; retry later',
      );
    }
    req.log.error({ err: error, path: req.path }, 'unhandled error');
    return sendError(res, 500, 'internal', 'internal_error', 'internal error');
  };
}
