import { z } from 'zod';
import {
  createGatewayAccount,
  disableGatewayAccount,
  type GatewayAccount,
  getGatewayAccount,
  listGatewayAccounts,
  rotateWebhookSecret,
  updateGatewayAccount,
} from '../../accounts/accounts.ts';
import { GATEWAY_CREDENTIALS } from '../../accounts/credentials.ts';
import type { GatewayName } from '../../config/gateways.ts';
import { actorOf } from '../actor.ts';
import { GatewayAccount as GatewayAccountSchema, listOf } from './responses.ts';
import { type ApiRoute, route, type Tag } from './route.ts';
import { parseInput } from './validate.ts';

const name = z.string().trim().min(1).max(200);
const apiBase = z.url({ protocol: /^https?$/ });

/** The create body of one gateway (its credentials' schema). */
const accountOf = <G extends GatewayName>(gateway: G) =>
  z
    .object({
      gateway: z.literal(gateway),
      name,
      mode: z.enum(['test', 'live']),
      credentials: GATEWAY_CREDENTIALS[gateway].schema,
      api_base: apiBase.optional(),
    })
    .strict();

/**
 * `POST /v1/gateway-accounts`: `{gateway, name, mode: test|live, credentials, api_base?}`, the
 * credentials being the gateway's (`GATEWAY_CREDENTIALS`: Stripe `secret_key`, `webhook_secrets`;
 * PayPal `client_id`, `client_secret`, `webhook_id`; Authorize.Net `api_login_id`,
 * `transaction_key`, `signature_key`; eWAY `api_key`, `api_password`; SecurePay `client_id`,
 * `client_secret`, `merchant_code`), unknown fields refused.
 */
export const CreateGatewayAccount = z.discriminatedUnion('gateway', [
  accountOf('stripe'),
  accountOf('paypal'),
  accountOf('authorizenet'),
  accountOf('eway'),
  accountOf('securepay'),
]);

/** `POST /v1/gateway-accounts/:id`: the credential fields given replace the stored ones; `api_base: null` goes back to the gateway's. */
export const UpdateGatewayAccount = z
  .object({
    name: name.optional(),
    credentials: z.record(z.string(), z.unknown()).optional(),
    api_base: apiBase.nullable().optional(),
  })
  .strict();

/** `POST /v1/gateway-accounts/:id/rotate-webhook-secret`: `keep_previous` (Stripe, default true) keeps the secret signing until now verifying. */
export const RotateWebhookSecret = z
  .object({ secret: z.string().trim().min(1).max(500), keep_previous: z.boolean().default(true) })
  .strict();

/** A gateway account as the API shows it: never a credential, only each one's last four characters. */
export function serializeGatewayAccount(a: GatewayAccount) {
  return {
    id: a.id,
    object: 'gateway_account',
    gateway: a.gateway,
    name: a.name,
    mode: a.mode,
    api_base: a.api_base,
    credentials_last4: a.credentials_last4,
    /** The id of the key the credentials are encrypted with (a fingerprint of BILLHOOK_SECRET_KEY). */
    credentials_key_id: a.credentials_key_id,
    webhook_path: `/webhooks/${a.gateway}/${a.id}`,
    status: a.disabled_at ? 'disabled' : 'enabled',
    disabled_at: a.disabled_at,
    created_at: a.created_at,
    updated_at: a.updated_at,
  };
}

const tag: Tag = 'Gateway accounts';

/**
 * /v1/gateway-accounts (admin scope; PRODUCT.md §12): create, list, read, update, disable, rotate a
 * webhook secret. Each change takes effect at once in this process (`accounts.changed()`) and within
 * a second in every other one, and is an activity (`gateway_account.*`) naming the request's key.
 */
export const gatewayAccountRoutes: ApiRoute[] = [
  route({
    method: 'post',
    path: '/v1/gateway-accounts',
    operationId: 'createGatewayAccount',
    tag,
    scope: 'admin',
    summary: 'Create a gateway account (admin; credentials encrypted, never returned)',
    body: CreateGatewayAccount,
    responses: { 201: GatewayAccountSchema },
    handler: async (req, res, { deps: { db, accounts }, body }) => {
      const account = await createGatewayAccount(db, actorOf(req), accounts.keys, {
        gateway: body.gateway,
        name: body.name,
        mode: body.mode,
        credentials: body.credentials,
        apiBase: body.api_base,
      });
      await accounts.changed();
      res.status(201).json(serializeGatewayAccount(account));
    },
  }),
  route({
    method: 'get',
    path: '/v1/gateway-accounts',
    operationId: 'listGatewayAccounts',
    tag,
    scope: 'admin',
    summary: 'List gateway accounts (admin)',
    responses: { 200: listOf(GatewayAccountSchema, 'GatewayAccountList') },
    handler: async (_req, res, { deps }) => {
      const rows = await listGatewayAccounts(deps.db);
      res.json({ object: 'list', data: rows.map(serializeGatewayAccount), has_more: false });
    },
  }),
  route({
    method: 'get',
    path: '/v1/gateway-accounts/{id}',
    operationId: 'getGatewayAccount',
    tag,
    scope: 'admin',
    summary: 'Read a gateway account (admin)',
    responses: { 200: GatewayAccountSchema },
    handler: async (req, res, { deps }) => {
      res.json(serializeGatewayAccount(await getGatewayAccount(deps.db, req.params.id)));
    },
  }),
  route({
    method: 'post',
    path: '/v1/gateway-accounts/{id}',
    operationId: 'updateGatewayAccount',
    tag,
    scope: 'admin',
    summary: "Update a gateway account's name, API base or credentials (admin)",
    body: UpdateGatewayAccount,
    responses: { 200: GatewayAccountSchema },
    handler: async (req, res, { deps: { db, accounts }, body }) => {
      const existing = await getGatewayAccount(db, req.params.id);
      const credentials = body.credentials
        ? parseInput(z.object({ credentials: GATEWAY_CREDENTIALS[existing.gateway].schema }), {
            credentials: body.credentials,
          }).credentials
        : undefined;
      const account = await updateGatewayAccount(db, actorOf(req), accounts.keys, existing.id, {
        name: body.name,
        apiBase: body.api_base,
        credentials,
      });
      await accounts.changed();
      res.json(serializeGatewayAccount(account));
    },
  }),
  route({
    method: 'post',
    path: '/v1/gateway-accounts/{id}/disable',
    operationId: 'disableGatewayAccount',
    tag,
    scope: 'admin',
    summary:
      'Disable a gateway account: it takes no new charges, refunds or voids; its webhooks are still received (admin)',
    responses: { 200: GatewayAccountSchema },
    handler: async (req, res, { deps: { db, accounts } }) => {
      const account = await disableGatewayAccount(db, actorOf(req), req.params.id);
      await accounts.changed();
      res.json(serializeGatewayAccount(account));
    },
  }),
  route({
    method: 'post',
    path: '/v1/gateway-accounts/{id}/rotate-webhook-secret',
    operationId: 'rotateGatewayAccountWebhookSecret',
    tag,
    scope: 'admin',
    summary: "Rotate a gateway account's webhook secret (admin)",
    body: RotateWebhookSecret,
    responses: { 200: GatewayAccountSchema },
    handler: async (req, res, { deps: { db, accounts }, body }) => {
      const account = await rotateWebhookSecret(
        db,
        actorOf(req),
        accounts.keys,
        req.params.id,
        body.secret,
        body.keep_previous,
      );
      await accounts.changed();
      res.json(serializeGatewayAccount(account));
    },
  }),
];
