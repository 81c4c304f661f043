import { z } from 'zod';
import type { Config } from '../config/env.ts';
import type { GatewayName } from '../config/gateways.ts';

/** A credential as given: one string, or a list (Stripe's webhook secrets while rolling). */
export type CredentialValue = string | string[];

/** An account's credentials by field name (`secret_key`, `webhook_secrets`…), as given when created. */
export type Credentials = Record<string, CredentialValue>;

/** What the API shows of a credential: its last four characters (null when shorter than 12). */
export type Last4 = string | null;

const credential = z.string().trim().min(1).max(500);

/** Config fields that are a gateway's credentials or its API base (what an account replaces). */
type CredentialVariable = {
  [K in keyof Config]-?: Config[K] extends string | string[] | undefined ? K : never;
}[keyof Config];

/** One gateway's credentials: the zod schema of the fields, and the variable each field replaces. */
interface GatewayCredentials {
  schema: z.ZodType<Credentials>;
  /** Credential field → the variable of the default account it stands for. */
  variables: Record<string, CredentialVariable>;
  /** The API base variable (`STRIPE_API_BASE`…), replaced by the account's `api_base`. */
  apiBase: CredentialVariable;
  /** The field a webhook-secret rotation replaces, and whether it keeps the previous one too (a list). */
  webhookSecret?: { field: string; list: boolean };
}

/**
 * Stripe's secret or restricted key (`sk_…`, `rk_…`, https://docs.stripe.com/keys) and endpoint
 * secrets (`whsec_…`; several verify while one is rolled, https://docs.stripe.com/webhooks#roll-endpoint-secrets).
 */
const StripeCredentials = z
  .object({
    secret_key: credential
      .regex(/^(sk|rk)_(test|live)_/, 'a Stripe secret key: sk_test_…, sk_live_… (or rk_…)')
      .optional(),
    webhook_secrets: z
      .array(credential.regex(/^whsec_/, 'a Stripe endpoint secret: whsec_…'))
      .min(1)
      .max(5)
      .optional(),
  })
  .strict();

/** Each gateway's credentials, named as its environment variables are (lower case, without the gateway). */
export const GATEWAY_CREDENTIALS: Readonly<Record<GatewayName, GatewayCredentials>> = {
  stripe: {
    schema: StripeCredentials as z.ZodType<Credentials>,
    variables: { secret_key: 'STRIPE_SECRET_KEY', webhook_secrets: 'STRIPE_WEBHOOK_SECRET' },
    apiBase: 'STRIPE_API_BASE',
    webhookSecret: { field: 'webhook_secrets', list: true },
  },
  paypal: {
    schema: z
      .object({
        client_id: credential.optional(),
        client_secret: credential.optional(),
        webhook_id: credential.optional(),
      })
      .strict() as z.ZodType<Credentials>,
    variables: {
      client_id: 'PAYPAL_CLIENT_ID',
      client_secret: 'PAYPAL_CLIENT_SECRET',
      webhook_id: 'PAYPAL_WEBHOOK_ID',
    },
    apiBase: 'PAYPAL_API_BASE',
    webhookSecret: { field: 'webhook_id', list: false },
  },
  authorizenet: {
    schema: z
      .object({
        api_login_id: credential.optional(),
        transaction_key: credential.optional(),
        signature_key: credential.regex(/^[0-9a-fA-F]+$/, 'the Signature Key: hexadecimal').optional(),
      })
      .strict() as z.ZodType<Credentials>,
    variables: {
      api_login_id: 'AUTHORIZENET_API_LOGIN_ID',
      transaction_key: 'AUTHORIZENET_TRANSACTION_KEY',
      signature_key: 'AUTHORIZENET_SIGNATURE_KEY',
    },
    apiBase: 'AUTHORIZENET_API_BASE',
    webhookSecret: { field: 'signature_key', list: false },
  },
  eway: {
    schema: z
      .object({ api_key: credential.optional(), api_password: credential.optional() })
      .strict() as z.ZodType<Credentials>,
    variables: { api_key: 'EWAY_API_KEY', api_password: 'EWAY_API_PASSWORD' },
    apiBase: 'EWAY_API_BASE',
  },
  securepay: {
    schema: z
      .object({
        client_id: credential.optional(),
        client_secret: credential.optional(),
        merchant_code: credential.optional(),
      })
      .strict() as z.ZodType<Credentials>,
    variables: {
      client_id: 'SECUREPAY_CLIENT_ID',
      client_secret: 'SECUREPAY_CLIENT_SECRET',
      merchant_code: 'SECUREPAY_MERCHANT_CODE',
    },
    apiBase: 'SECUREPAY_API_BASE',
  },
};

/**
 * The configuration an account's adapter is built with: `config` with every credential variable of
 * `gateway` replaced by the account's (a field the account lacks is unset, never the default
 * account's), and its API base by `apiBase` when given.
 */
export function accountConfig(
  config: Config,
  gateway: GatewayName,
  credentials: Credentials,
  apiBase: string | null,
): Config {
  const spec = GATEWAY_CREDENTIALS[gateway];
  const overrides: Record<string, CredentialValue | undefined> = {};
  for (const [field, variable] of Object.entries(spec.variables)) {
    const value = credentials[field];
    overrides[variable] = Array.isArray(config[variable])
      ? value === undefined
        ? []
        : [value].flat()
      : value;
  }
  if (apiBase !== null) overrides[spec.apiBase] = apiBase;
  return { ...config, ...overrides };
}

/** The last four characters of each credential (null for one shorter than 12: it would show a third of it). */
export function last4(credentials: Credentials): Record<string, Last4 | Last4[]> {
  const show = (value: string): Last4 => (value.length >= 12 ? value.slice(-4) : null);
  return Object.fromEntries(
    Object.entries(credentials).map(([field, value]) => [
      field,
      Array.isArray(value) ? value.map(show) : show(value),
    ]),
  );
}
