import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import {
  createGatewayAccount,
  disableGatewayAccount,
  getGatewayAccount,
  listGatewayAccounts,
  rotateSecretKey,
  rotateWebhookSecret,
} from '../accounts/accounts.ts';
import { keyring } from '../accounts/cipher.ts';
import type { Config } from '../config/env.ts';
import type { Db } from '../db/database.ts';
import { ValidationError } from '../errors.ts';
import { CreateGatewayAccount, serializeGatewayAccount } from '../http/api/gateway-accounts.ts';
import { parseInput } from '../http/api/validate.ts';
import type { Output } from './program.ts';

/** Runs a command's work against the migrated database with the configuration, then closes it. */
export type WithDatabase = <T>(fn: (config: Config, db: Db) => Promise<T>) => Promise<T>;

/**
 * Runs `run`, turning a validation failure into one message naming each field:
 * `invalid <what>: credentials.secret_key: …; name: …`.
 */
export function withFields<T>(what: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    const fields = Object.entries(error.fields ?? {}).map(([field, message]) => `${field}: ${message}`);
    throw new Error(`invalid ${what}: ${fields.join('; ')}`);
  }
}

/** `--credentials`: JSON, or `@file` holding JSON (keeps secrets out of the shell's history). */
function credentialsJson(value: string): unknown {
  const text = value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error('--credentials must be JSON or @file holding JSON');
  }
}

/**
 * `billhook accounts list|create|show|disable|rotate-secret|rotate-key`: the gateway accounts
 * (PRODUCT.md §12), as `/v1/gateway-accounts` manages them; credentials are never printed (their
 * last four characters only). Running processes see a change within a second.
 */
export function accountCommands(out: Output, withDatabase: WithDatabase): Command {
  const show = (account: Parameters<typeof serializeGatewayAccount>[0]) =>
    out.write(`${JSON.stringify(serializeGatewayAccount(account), null, 2)}\n`);
  const accounts = new Command('accounts').description(
    'manage gateway accounts (credentials encrypted with BILLHOOK_SECRET_KEY, never printed)',
  );
  accounts
    .command('list')
    .description('list gateway accounts')
    .action(async () => {
      const rows = await withDatabase((_config, db) => listGatewayAccounts(db));
      for (const a of rows)
        out.write(
          `${a.id}  ${a.gateway.padEnd(12)}  ${a.mode.padEnd(4)}  ${a.disabled_at ? 'disabled' : 'enabled '}  /webhooks/${a.gateway}/${a.id}  ${a.name}\n`,
        );
    });
  accounts
    .command('create')
    .description('create a gateway account and print it (credentials: last four characters only)')
    .requiredOption('--gateway <gateway>', 'stripe, paypal, authorizenet, eway or securepay')
    .requiredOption('--name <name>', 'what the account is for, unique per gateway')
    .option('--mode <mode>', 'test or live', 'test')
    .requiredOption(
      '--credentials <json>',
      'the credentials as JSON (or @file), e.g. {"secret_key":"sk_test_…","webhook_secrets":["whsec_…"]}',
    )
    .option('--api-base <url>', "the account's API base URL (default: the gateway's *_API_BASE)")
    .action(
      async (options: {
        gateway: string;
        name: string;
        mode: string;
        credentials: string;
        apiBase?: string;
      }) => {
        const body = withFields('account', () =>
          parseInput(CreateGatewayAccount, {
            gateway: options.gateway,
            name: options.name,
            mode: options.mode,
            credentials: credentialsJson(options.credentials),
            ...(options.apiBase === undefined ? {} : { api_base: options.apiBase }),
          }),
        );
        const account = await withDatabase((config, db) =>
          createGatewayAccount(
            db,
            'cli',
            keyring(config.BILLHOOK_SECRET_KEY, config.BILLHOOK_SECRET_KEY_PREVIOUS),
            {
              gateway: body.gateway,
              name: body.name,
              mode: body.mode,
              credentials: body.credentials,
              apiBase: body.api_base,
            },
          ),
        );
        show(account);
      },
    );
  accounts
    .command('show <id>')
    .description('show a gateway account (credentials: last four characters only)')
    .action(async (id: string) => {
      show(await withDatabase((_config, db) => getGatewayAccount(db, id)));
    });
  accounts
    .command('disable <id>')
    .description(
      'disable a gateway account: no new charges, refunds or voids; its webhooks are still received (rotate-secret revokes its secret)',
    )
    .action(async (id: string) => {
      await withDatabase((_config, db) => disableGatewayAccount(db, 'cli', id));
      out.write(`disabled ${id}\n`);
    });
  accounts
    .command('rotate-secret <id>')
    .description(
      "set an account's webhook secret; Stripe keeps the previous one verifying too unless --replace",
    )
    .requiredOption(
      '--secret <secret>',
      'the new webhook secret (Stripe whsec_…, Authorize.Net Signature Key)',
    )
    .option('--replace', 'Stripe: stop accepting the previous secret at once')
    .action(async (id: string, options: { secret: string; replace?: boolean }) => {
      const account = await withDatabase((config, db) =>
        withFields('account', () =>
          rotateWebhookSecret(
            db,
            'cli',
            keyring(config.BILLHOOK_SECRET_KEY, config.BILLHOOK_SECRET_KEY_PREVIOUS),
            id,
            options.secret,
            !options.replace,
          ),
        ),
      );
      show(account);
    });
  accounts
    .command('rotate-key')
    .description(
      'encrypt every account with BILLHOOK_SECRET_KEY, reading those under BILLHOOK_SECRET_KEY_PREVIOUS; then the previous key may be dropped',
    )
    .action(async () => {
      const count = await withDatabase((config, db) =>
        rotateSecretKey(db, 'cli', keyring(config.BILLHOOK_SECRET_KEY, config.BILLHOOK_SECRET_KEY_PREVIOUS)),
      );
      out.write(`${count} account(s) re-encrypted with the current key\n`);
    });
  return accounts;
}
