import { type ErrorRequestHandler, Router } from 'express';
import { AppError } from '../../errors.ts';
import type { AppDeps } from '../deps.ts';
import { accountPages } from './accounts.ts';
import { deadLetterPages } from './dead-letters.ts';
import { exceptionPages } from './exceptions.ts';
import { h } from './html.ts';
import { inboxPages } from './inbox.ts';
import { ADMIN, sendPage } from './layout.ts';
import { overviewPages } from './overview.ts';
import { queueDashboardRoutes } from './queues.ts';
import { adminSessionRoutes, consoleScript } from './session.ts';
import { settlementPages } from './settlement.ts';

/**
 * The operators' console under `/admin` (PRODUCT.md §15): the login and session (session.ts), the
 * queue dashboard of pg-boss (queues.ts), and billhook's own server-rendered pages, one file each.
 * A refusal of a domain function (an unknown id, an event already resolved, a bad filter) is shown
 * as a page with its message and status.
 */
export function adminRoutes(deps: AppDeps): Router {
  const router = Router();
  router.use(adminSessionRoutes(deps.db));
  router.get(`${ADMIN}/console.js`, consoleScript);
  // A filter form leaves its empty fields in the URL: sent to the same page without them.
  router.get(`${ADMIN}/*path`, (req, res, next) => {
    const query = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    if (![...query.values()].includes('')) return next();
    for (const [name, value] of [...query.entries()]) if (value === '') query.delete(name);
    const rest = query.toString();
    res.redirect(303, `${req.path}${rest ? `?${rest}` : ''}`);
  });
  router.use(queueDashboardRoutes(deps.queueDashboard));
  router.use(overviewPages(deps));
  router.use(inboxPages(deps));
  router.use(exceptionPages(deps));
  router.use(deadLetterPages(deps));
  router.use(settlementPages(deps));
  router.use(accountPages(deps));
  const refused: ErrorRequestHandler = (error, req, res, next) => {
    if (!(error instanceof AppError) || !req.path.startsWith(ADMIN) || !res.locals.adminSession)
      return next(error);
    sendPage(
      req,
      res,
      { title: 'Not done', section: '', status: error.status },
      h`<p class="error" role="alert">${error.message}</p><p><a href="${ADMIN}">Back to the console</a></p>`,
    );
  };
  router.use(refused);
  return router;
}
