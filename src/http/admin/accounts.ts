import { Router } from 'express';
import type { GatewayAccount } from '../../accounts/accounts.ts';
import { listGatewayAccounts } from '../../accounts/accounts.ts';
import { serializeGatewayAccount } from '../api/gateway-accounts.ts';
import type { AppDeps } from '../deps.ts';
import { h } from './html.ts';
import { ADMIN, link, sendPage } from './layout.ts';

/** Each credential's last four characters as `field …abcd` (`…` alone for one too short to show any). */
function last4Text(last4: GatewayAccount['credentials_last4']): string {
  return Object.entries(last4)
    .map(
      ([field, value]) =>
        `${field} ${[value]
          .flat()
          .map((v) => `…${v ?? ''}`)
          .join(' ')}`,
    )
    .join(', ');
}

/**
 * `GET /admin/accounts`: the gateway accounts as `GET /v1/gateway-accounts` shows them (never a
 * credential: each one's last four characters), after the default accounts (the environment's, one
 * per configured gateway), each linking to its inbox and its open exceptions. All of them on one page:
 * a deployment has a handful (the API lists them whole too).
 */
export function accountPages({ db }: AppDeps): Router {
  const router = Router();
  router.get(`${ADMIN}/accounts`, async (req, res) => {
    const accounts = (await listGatewayAccounts(db)).map(serializeGatewayAccount);
    const links = (account: string) =>
      h`<a href="${link('/inbox', { gateway_account: account })}">inbox</a> · <a href="${link('/exceptions', { gateway_account: account })}">exceptions</a>`;
    const body = h`<p>Credentials are never shown: their last four characters only.</p>
<table id="accounts"><thead><tr><th>account</th><th>gateway</th><th>name</th><th>mode</th><th>status</th><th>webhook path</th><th>credentials (last four)</th><th></th></tr></thead><tbody>
<tr><td>default</td><td>every gateway</td><td colspan="3">each gateway's environment variables</td><td><code>/webhooks/&lt;gateway&gt;</code></td><td></td><td>${links('default')}</td></tr>
${accounts.map(
  (a) =>
    h`<tr><td><code>${a.id}</code></td><td>${a.gateway}</td><td>${a.name}</td><td>${a.mode}</td><td class="${a.status === 'disabled' ? 'bad' : ''}">${a.status}</td><td><code>${a.webhook_path}</code></td><td><code>${last4Text(a.credentials_last4)}</code></td><td>${links(a.id)}</td></tr>`,
)}
</tbody></table>`;
    sendPage(
      req,
      res,
      { title: `Gateway accounts (${accounts.length})`, section: '/accounts', refresh: true },
      body,
    );
  });
  return router;
}
