import express, { type Request, type RequestHandler, type Response, Router } from 'express';
import { type ActivityInput, recordActivity } from '../../activities/activities.ts';
import { authenticateWithHash } from '../../auth/api-keys.ts';
import {
  type AdminSession,
  headerAdminSession,
  openAdminSession,
  readAdminSession,
  SESSION_SECONDS,
} from '../../auth/sessions.ts';
import { constantTimeEqual } from '../../crypto.ts';
import type { Db } from '../../db/database.ts';
import { type Actor, inUnitOfWork } from '../../ledger/unit-of-work.ts';
import { keyActor } from '../actor.ts';
import { keyFrom } from '../auth.ts';
import { overFailedAuthLimit, refuseFailingAddress } from '../rate-limit.ts';
import { noteErrorCode } from '../request-log.ts';
import { h } from './html.ts';
import { ADMIN } from './layout.ts';

/** The session cookie (path `/admin`, HttpOnly, SameSite=Strict; Secure when the request is https). */
const COOKIE = 'billhook_admin';

/** The value of cookie `name` in a `Cookie` header. */
function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

/** Where to go after logging in: a console path only (never another site). */
function nextPath(value: unknown): string {
  return typeof value === 'string' && value.startsWith(`${ADMIN}/`) && !value.startsWith('//')
    ? value
    : ADMIN;
}

/** The session of a console request (set by `requireAdminSession`). */
export function sessionOf(res: Response): AdminSession {
  return res.locals.adminSession as AdminSession;
}

/** The actor of a console action: the admin key that asked for it (`key_…`). */
export function adminActor(res: Response): Actor {
  return keyActor(sessionOf(res).key.id);
}

/** Records `activity` in a unit of work of its own, its actor the admin key of `res`'s session. */
export function recordAdminActivity(db: Db, res: Response, activity: ActivityInput): Promise<void> {
  return inUnitOfWork(db, { actor: adminActor(res) }, (work) => recordActivity(work, activity));
}

function loginPage(res: Response, next: string, status: number, error?: string): void {
  res
    .status(status)
    .type('html')
    .send(
      h`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>billhook · log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body { font: 14px/1.45 system-ui, sans-serif; margin: 4rem auto; max-width: 26rem; color: #1f2933; }
input { width: 100%; padding: .4rem; margin: .3rem 0 .8rem; box-sizing: border-box; } .error { color: #b42318; }</style>
</head><body>
<h1>billhook operators' console</h1>
${error ? h`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="${ADMIN}/login">
<label for="key">Admin API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${next}">
<button type="submit">Log in</button>
</form>
<p>An API key of scope <code>admin</code> (<code>billhook keys create --scope admin</code>, or <code>BILLHOOK_ADMIN_KEY</code>).</p>
</body></html>`.text,
    );
}

/**
 * The console's login, logout and authentication:
 * - `GET /admin/login` shows a form asking for an admin API key; `POST /admin/login` checks it
 *   (failures count towards `AUTH_FAILURES_PER_MINUTE`, 401) and sets the session cookie (signed with
 *   the key's stored hash, see auth/sessions.ts; `Secure` only when the request is https as Express
 *   sees it, `trust proxy` included), then redirects to the page asked for.
 * - `POST /admin/logout` (with the CSRF token) clears the cookie.
 * - every other `/admin` request needs the cookie's session, or the key itself in `Authorization`
 *   (Basic with the key as user name, or Bearer: for scripts); a browser without either is sent to
 *   the login (303), anything else gets 401 (403 for a key that is not an admin key).
 * - every POST but the login and the queue dashboard's own (`/admin/queues`, which checks the
 *   `Origin` itself; the SameSite=Strict cookie is not sent cross-site) must carry the session's
 *   CSRF token as `token` (403 `invalid_form_token` otherwise).
 */
export function adminSessionRoutes(db: Db): Router {
  const router = Router();
  const form = express.urlencoded({ extended: false, limit: '64kb' });

  router.get(`${ADMIN}/login`, (req, res) => loginPage(res, nextPath(req.query.next), 200));
  router.post(`${ADMIN}/login`, form, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const next = nextPath(body.next);
    const secret = typeof body.key === 'string' ? body.key.trim() : '';
    const found = secret
      ? await authenticateWithHash(db, secret, { slow: !overFailedAuthLimit(res) })
      : undefined;
    const key = found?.key;
    if (!key && refuseFailingAddress(res)) return;
    if (key?.scope !== 'admin') {
      noteErrorCode(res, key ? 'insufficient_scope' : 'invalid_api_key');
      return loginPage(
        res,
        next,
        key ? 403 : 401,
        key ? `This key's scope is ${key.scope}: the console needs an admin key.` : 'Unknown or revoked key.',
      );
    }
    res.cookie(COOKIE, openAdminSession(found!), {
      path: ADMIN,
      httpOnly: true,
      sameSite: 'strict',
      secure: req.secure,
      maxAge: SESSION_SECONDS * 1000,
      encode: String,
    });
    res.redirect(303, next);
  });

  router.use(ADMIN, async (req, res, next) => {
    const session = await sessionFrom(db, req, res);
    if (session === 'answered') return;
    if (!session) {
      if (refuseFailingAddress(res)) return;
      if (req.method === 'GET' && !req.headers.authorization) {
        res.redirect(303, `${ADMIN}/login?next=${encodeURIComponent(req.originalUrl)}`);
        return;
      }
      res.setHeader('WWW-Authenticate', 'Basic realm="billhook admin (user name: an admin API key)"');
      noteErrorCode(res, 'invalid_api_key');
      res.status(401).type('text/plain').send('an admin API key is required');
      return;
    }
    res.locals.adminSession = session;
    next();
  });
  router.post(`${ADMIN}/*path`, (req, res, next) => {
    if (req.path.startsWith(`${ADMIN}/queues`)) return next();
    form(req, res, () => {
      const sent = String((req.body as Record<string, unknown> | undefined)?.token ?? '');
      if (!constantTimeEqual(sent, sessionOf(res).formToken)) {
        noteErrorCode(res, 'invalid_form_token');
        res.status(403).type('text/plain').send('invalid form token: reload the page and try again');
        return;
      }
      next();
    });
  });
  router.post(`${ADMIN}/logout`, (req, res) => {
    res.clearCookie(COOKIE, { path: ADMIN, httpOnly: true, sameSite: 'strict', secure: req.secure });
    res.redirect(303, `${ADMIN}/login`);
  });
  return router;
}

/**
 * The session of a request: from its `Authorization` key (answering 403 itself for a key that is not
 * an admin key: `answered`), else from its cookie; undefined when neither holds.
 */
async function sessionFrom(
  db: Db,
  req: Request,
  res: Response,
): Promise<AdminSession | 'answered' | undefined> {
  const secret = keyFrom(req.headers.authorization);
  if (secret) {
    const found = await authenticateWithHash(db, secret, { slow: !overFailedAuthLimit(res) });
    if (found && found.key.scope !== 'admin') {
      noteErrorCode(res, 'insufficient_scope');
      res.status(403).type('text/plain').send('an admin key is required');
      return 'answered';
    }
    return found && headerAdminSession(found);
  }
  const cookie = cookieValue(req.headers.cookie, COOKIE);
  return cookie ? readAdminSession(db, cookie) : undefined;
}

/** The console's small script: reloads a list page every `data-refresh` seconds unless a form is being filled in. */
export const consoleScript: RequestHandler = (_req, res) => {
  res.type('text/javascript').send(`'use strict';
(() => {
  const seconds = Number(document.body.dataset.refresh || 0);
  if (!seconds) return;
  let touched = false;
  document.addEventListener('input', () => { touched = true; });
  setInterval(() => {
    const typing = document.activeElement && ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement.tagName);
    if (!touched && !typing) location.reload();
  }, seconds * 1000);
})();
`);
};
