import type { GatewayName } from '../config/gateways.ts';
import { noteEffect, watchEffects } from '../effects.ts';
import { AppError, ConflictError } from '../errors.ts';
import { accountCurrenciesOf } from '../gateways/currencies.ts';
import type { AccountRegistry, GatewayRegistry } from '../gateways/registry.ts';
import type { GatewayClient } from '../gateways/types.ts';

/**
 * Where a gateway's API client comes from: each gateway's default account (the environment's
 * variables, `registry`) and the gateway accounts (`gwa_…`, `accounts`). The runtime, the API's
 * dependencies and a worker's context each carry both.
 */
export interface GatewayClients {
  registry: GatewayRegistry;
  accounts: AccountRegistry;
}

/** Which accounts {@link clientForAccount} may answer with. */
export interface ClientOptions {
  /**
   * A disabled account's client too: for the follow-up of a call already made on it (a status
   * check, the repeat of a refund left unknown), whose outcome may already have happened at the
   * gateway. New charges, refunds and voids leave it unset: a disabled account takes no new business.
   */
  includeDisabled?: boolean;
}

/**
 * The API client of `gateway`'s account `account` (`gwa_…`), or of its default account for null:
 * the one place every outbound call (charge, refund, void, status check) finds its credentials and
 * API base. A gateway account's client is built from its decrypted credentials and cached per process
 * (src/accounts/adapters.ts). Taking a client notes that a call may follow (`noteEffect`,
 * effects.ts: what a request watching its effects may have changed).
 * @throws ConflictError (409) `gateway_account_disabled` when the account is disabled (unless
 *   `includeDisabled`); `gateway_not_configured` when the gateway's default account has no API
 *   credentials, or the account does not exist for that gateway or has none (webhook secrets only)
 * @throws SecretKeyMissing or ConflictError `secret_key_unknown` when the account's credentials
 *   cannot be decrypted in this process
 */
export async function clientForAccount(
  { registry, accounts }: GatewayClients,
  gateway: GatewayName,
  account: string | null,
  options: ClientOptions = {},
): Promise<GatewayClient> {
  noteEffect();
  if (account === null) {
    const client = registry.get(gateway)?.client;
    if (!client)
      throw new ConflictError(
        'gateway_not_configured',
        `gateway ${gateway} has no API credentials configured`,
      );
    return client;
  }
  const adapter = await accounts.adapterOf(gateway, account, options);
  if (!adapter) {
    if (!options.includeDisabled && (await accounts.adapterOf(gateway, account, { includeDisabled: true })))
      throw new ConflictError(
        'gateway_account_disabled',
        `gateway account ${account} is disabled: it takes no new charges, refunds or voids`,
      );
    throw new ConflictError('gateway_not_configured', `${gateway} has no gateway account ${account}`);
  }
  if (!adapter.client)
    throw new ConflictError(
      'gateway_not_configured',
      `gateway account ${account} has no API credentials configured`,
    );
  return adapter.client;
}

/**
 * What `gateway`'s account `account` says it processes (gateways/currencies.ts `accountCurrenciesOf`:
 * Authorize.Net getMerchantDetails, an HTTP call of up to `GATEWAY_TIMEOUT_MS` until its client caches
 * the answer), asked before a unit of work locks anything, so no row lock is held across the call: a
 * charge (payments/charges.ts `startCharge`) or a refund (payments/refunds.ts `askRefundAccounts`).
 * Taking the client notes an effect; asking changes nothing, so the ask is noted as none (effects.ts).
 * @returns the account's currencies, or undefined when unknown — also when the account cannot be taken
 * (disabled, not configured, credentials unreadable: an AppError), which the unit of work then refuses
 * in its own order
 */
export async function askAccountCurrencies(
  clients: GatewayClients,
  gateway: GatewayName,
  account: string | null,
): Promise<readonly string[] | undefined> {
  try {
    return await watchEffects({ changed: false }, async () =>
      accountCurrenciesOf(await clientForAccount(clients, gateway, account)),
    );
  } catch (error) {
    if (error instanceof AppError) return undefined;
    throw error;
  }
}
