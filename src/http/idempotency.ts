import { createHash } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Db } from '../db/database.ts';
import { type Effects, watchEffects } from '../effects.ts';
import {
  claimIdempotencyKey,
  findIdempotencyKey,
  keepIdempotencyKeyHeld,
  releaseIdempotencyKey,
  restartIdempotencyKey,
  type StoredIdempotencyKey,
  saveIdempotentAnswer,
  takeOverExpiredIdempotencyKey,
} from '../idempotency/keys.ts';
import { exactJsonIntegers } from '../money/amount.ts';
import { sendError } from './errors.ts';

const KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * A claimed key whose request stored no answer, and has not shown for this long that it still runs
 * (`holdKey`), is taken as abandoned (its process died): a request with it then runs.
 */
const ABANDONED_AFTER_MS = 60_000;

/** How often a request still running shows it holds its key: well inside {@link ABANDONED_AFTER_MS}. */
const HOLD_EVERY_MS = 10_000;

/**
 * How long a request may hold its key by showing it still runs: one running longer is taken as
 * stuck, and its key as abandoned {@link ABANDONED_AFTER_MS} later.
 */
const HOLD_AT_MOST_MS = 15 * 60_000;

/**
 * Keeps `key` held while its request runs: every {@link HOLD_EVERY_MS} it shows the request still
 * runs (`keepIdempotencyKeyHeld`), so a retry with the key a minute later — the client gave up
 * waiting for a slow gateway — gets 409 instead of running a second refund beside the first. It
 * stops when the answer goes out or after {@link HOLD_AT_MOST_MS}; a process that dies stops it too,
 * and its key is taken over {@link ABANDONED_AFTER_MS} later.
 * @returns what stops it
 */
function holdKey(db: Db, res: Response, apiKeyId: string, key: string): () => void {
  const started = Date.now();
  const timer = setInterval(() => {
    if (Date.now() - started > HOLD_AT_MOST_MS) return stop();
    keepIdempotencyKeyHeld(db, apiKeyId, key).catch(() => undefined);
  }, HOLD_EVERY_MS);
  timer.unref();
  const stop = () => clearInterval(timer);
  res.once('finish', stop);
  return stop;
}

/**
 * Stores the answer of a claimed key when the handler sends it, then lets the answer go out. A 4xx
 * means billhook refused the request before changing anything (validation 400/422, unknown id 404,
 * a state that does not allow it 409): its key is freed, so a corrected request with it runs. Every
 * other answer is kept, a 5xx too: the request ran and failed part way, possibly after a gateway
 * took money (a refund Stripe made before its recording failed), so running it again could refund
 * or pay twice; the same key replays the failure, and the client reads what the request left and
 * sends a new key if something is still to do — as Stripe, which saves a result once the endpoint
 * started executing, "including 500 errors" (https://docs.stripe.com/api/idempotent_requests). A 5xx
 * of a request that changed nothing (`effects`: no unit of work asked to commit, no gateway client
 * taken for a call, which every charge, refund and void takes) frees
 * its key too: a 503 `database_unavailable` before anything was written is retried with its key as
 * its Retry-After says, and runs.
 */
function recordAnswer(
  db: Db,
  res: Response,
  apiKeyId: string,
  key: string,
  effects: Effects,
  fail: (error: unknown) => void,
): void {
  const stopHolding = holdKey(db, res, apiKeyId, key);
  res.json = (body: unknown) => {
    stopHolding();
    const status = res.statusCode;
    const text = JSON.stringify(body, exactJsonIntegers);
    const settle =
      status >= 400 && (status < 500 || !effects.changed)
        ? releaseIdempotencyKey(db, apiKeyId, key)
        : saveIdempotentAnswer(db, apiKeyId, key, status, text);
    settle.then(
      () => sendJsonText(res, text),
      async (error: unknown) => {
        // The answer could not be stored: free the key (best effort) and answer anyway.
        await releaseIdempotencyKey(db, apiKeyId, key).catch(() => undefined);
        if (status >= 500) fail(error);
        else sendJsonText(res, text);
      },
    );
    return res;
  };
}

/**
 * Sends `text`, JSON already written, as `res.json` sends what it writes (`application/json`
 * unless a type is set): the answer a key stores goes out, and is replayed, byte for byte.
 */
function sendJsonText(res: Response, text: string): void {
  if (!res.get('Content-Type')) res.type('json');
  res.send(text);
}

/**
 * `Idempotency-Key` on every POST (PRODUCT.md §6), scoped to the API key: the first request with a
 * key runs and its answer is stored; the same key with the same method, path and body (the same
 * fields and values, in any order: `canonicalJson`) gets the stored answer (with `Idempotent-Replayed: true`); the same key with another request is 422; while the
 * first is still running, 409 (it shows it runs every 10 s: `holdKey`; a minute after it stopped
 * showing it, without an answer, its process died and the new request runs). Answers of 4xx are not
 * kept (see recordAnswer), so the request can be corrected with the same key; a 5xx is kept and
 * replayed when the request may have moved money (a commit asked for or a gateway called), else not
 * kept either. A key is remembered `ttlHours` (Stripe: 24) after its first
 * use; then it is free again, and `pruneIdempotencyKeys` (idempotency/keys.ts) deletes it.
 */
export function idempotency(db: Db, ttlHours: number): RequestHandler {
  return async (req, res, next) => {
    const key = req.header('idempotency-key');
    if (req.method !== 'POST' || key === undefined || !req.apiKey) return next();
    if (!KEY.test(key)) {
      return sendError(
        res,
        400,
        'invalid_request',
        'invalid_idempotency_key',
        'Idempotency-Key must be 1–255 printable ASCII characters',
        {
          'Idempotency-Key': 'invalid',
        },
      );
    }
    const hash = requestHash(req.method, req.originalUrl, canonicalJson(req.body ?? null));
    // The hash before bodies were canonical (a key first used before the upgrade, for its 24 hours).
    const legacyHash = requestHash(req.method, req.originalUrl, JSON.stringify(req.body ?? null));
    const apiKeyId = req.apiKey.id;
    const claim = await claimOrFind(db, apiKeyId, key, hash);
    if (claim === 'busy') return inUse(res);
    if (claim !== 'claimed') {
      const stored = claim;
      const firstUseCutoff = new Date(Date.now() - ttlHours * 3_600_000);
      if (stored.createdAt <= firstUseCutoff) {
        // Past its lifetime the key is a new one: this request runs (if another took it first, 409).
        if (!(await takeOverExpiredIdempotencyKey(db, apiKeyId, key, hash, firstUseCutoff)))
          return inUse(res);
        const effects: Effects = { changed: false };
        recordAnswer(db, res, apiKeyId, key, effects, next);
        return watchEffects(effects, next);
      }
      if (stored.requestHash !== hash && stored.requestHash !== legacyHash) {
        return sendError(
          res,
          422,
          'invalid_request',
          'idempotency_key_reused',
          'this Idempotency-Key was used with another request',
          {
            'Idempotency-Key': 'already used with a different method, path or body',
          },
        );
      }
      if (stored.answer !== null) {
        res.setHeader('Idempotent-Replayed', 'true');
        return sendJsonText(res.status(stored.answer.status), stored.answer.body);
      }
      // The first request stored no answer and stopped showing it runs (its process died): this one
      // takes over, unless another took it first.
      const silentSince = new Date(Date.now() - ABANDONED_AFTER_MS);
      if (!(await restartIdempotencyKey(db, apiKeyId, key, silentSince))) return inUse(res);
    }
    const effects: Effects = { changed: false };
    recordAnswer(db, res, apiKeyId, key, effects, next);
    watchEffects(effects, next);
  };
}

/**
 * Claims `key` for the request hashed `hash`, or reads it when another request holds it. A key freed
 * between the two (the request holding it answered a 4xx, which frees its key) is claimed again, a
 * few times: the request then runs, as it would have a moment later.
 * @returns `claimed` (this request runs), the key as stored, or `busy` when it kept changing hands
 */
async function claimOrFind(
  db: Db,
  apiKeyId: string,
  key: string,
  hash: string,
): Promise<'claimed' | 'busy' | StoredIdempotencyKey> {
  for (let tries = 0; tries < 3; tries++) {
    if (await claimIdempotencyKey(db, apiKeyId, key, hash)) return 'claimed';
    const stored = await findIdempotencyKey(db, apiKeyId, key);
    if (stored) return stored;
  }
  return 'busy';
}

/** sha256 (hex) of a request as its key remembers it: method, path with query, and body. */
function requestHash(method: string, url: string, body: string): string {
  return createHash('sha256').update(`${method} ${url}\n${body}`).digest('hex');
}

/**
 * `value` (a parsed JSON body) as JSON text with every object's keys sorted, so two bodies that differ
 * only in the order of their fields — one request serialised by two JSON libraries, a retry built
 * from a map — hash the same (as Stripe compares a retry's parameters, not its bytes). Arrays keep
 * their order (it means something: an invoice's lines). Own keys only, `__proto__` included.
 */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const fields = Object.keys(value)
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${fields.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** 409 to a request whose key another request holds right now (never stored: it may be retried). */
function inUse(res: Response): void {
  sendError(
    res,
    409,
    'conflict',
    'idempotency_key_in_use',
    'a request with this Idempotency-Key is still being processed',
  );
}
