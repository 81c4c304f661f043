import type { Config } from '../config/env.ts';
import type { GatewayName } from '../config/gateways.ts';
import type { Db } from '../db/database.ts';
import type { AccountRegistry } from '../gateways/registry.ts';
import type { GatewayAdapter } from '../gateways/types.ts';
import { gatewayAccountsVersion, openGatewayAccount } from './accounts.ts';
import type { Keyring } from './cipher.ts';
import { accountConfig } from './credentials.ts';

/** Builds `gateway`'s adapter from a configuration (the registry's factory, with the process's wrappers). */
export type AdapterFactory = (gateway: GatewayName, config: Config) => GatewayAdapter;

interface Entry {
  gateway: GatewayName;
  enabled: boolean;
  adapter: GatewayAdapter;
}

/** How often, at most, a process asks whether an account changed: once a second. */
export const ACCOUNTS_CHECK_INTERVAL_MS = 1000;

/**
 * The adapters of the gateway accounts, built on first use from each account's decrypted credentials
 * (its configuration: the process's, with the account's credentials in place of the gateway's
 * variables) by the same factory as the default accounts', and cached. Each process (web or worker)
 * reads `gatewayAccountsVersion` at most once per `checkEveryMs` when an account's adapter is asked
 * for; when it moved, every cached adapter is dropped and rebuilt on next use, so a created, changed
 * or disabled account takes effect everywhere within about a second, without a restart. (A polled
 * version rather than LISTEN/NOTIFY: no connection held per process, nothing missed across a
 * reconnect, and one indexed-free sum over a handful of rows a second.) `changed()` drops them at once
 * in the process that made the change.
 */
export class AccountAdapters implements AccountRegistry {
  readonly #db: Db;
  readonly #keys: Keyring;
  readonly #config: Config;
  readonly #build: AdapterFactory;
  readonly #checkEveryMs: number;
  #entries = new Map<string, Promise<Entry | undefined>>();
  #version: string | undefined;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #checking: Promise<void> | undefined;

  constructor(
    db: Db,
    keys: Keyring,
    config: Config,
    build: AdapterFactory,
    checkEveryMs = ACCOUNTS_CHECK_INTERVAL_MS,
  ) {
    this.#db = db;
    this.#keys = keys;
    this.#config = config;
    this.#build = build;
    this.#checkEveryMs = checkEveryMs;
  }

  /** The keys credentials are encrypted with (BILLHOOK_SECRET_KEY, and the previous one while rotating). */
  get keys(): Keyring {
    return this.#keys;
  }

  async adapterOf(
    gateway: GatewayName,
    account: string,
    options: { includeDisabled?: boolean } = {},
  ): Promise<GatewayAdapter | undefined> {
    await this.#fresh();
    let entry = this.#entries.get(account);
    if (!entry) {
      entry = this.#load(account);
      this.#entries.set(account, entry);
      // A failure (the database away, a key missing) is not cached: the next delivery tries again.
      entry.catch(() => this.#entries.get(account) === entry && this.#entries.delete(account));
    }
    const found = await entry;
    if (!found || found.gateway !== gateway || (!found.enabled && !options.includeDisabled)) return undefined;
    return found.adapter;
  }

  /** Drops every cached adapter now: this process changed an account. */
  changed(): void {
    this.#entries.clear();
    this.#checkedAt = Number.NEGATIVE_INFINITY;
  }

  async #load(id: string): Promise<Entry | undefined> {
    const opened = await openGatewayAccount(this.#db, this.#keys, id);
    if (!opened) return undefined;
    const { account, credentials } = opened;
    return {
      gateway: account.gateway,
      enabled: account.disabled_at === null,
      adapter: this.#build(
        account.gateway,
        accountConfig(this.#config, account.gateway, credentials, account.api_base),
      ),
    };
  }

  /** Drops the cache when the accounts' version moved since the last check (at most once per interval). */
  async #fresh(): Promise<void> {
    if (Date.now() - this.#checkedAt < this.#checkEveryMs) return;
    this.#checking ??= gatewayAccountsVersion(this.#db)
      .then((version) => {
        if (version !== this.#version) this.#entries.clear();
        this.#version = version;
        this.#checkedAt = Date.now();
      })
      .finally(() => {
        this.#checking = undefined;
      });
    await this.#checking;
  }
}
