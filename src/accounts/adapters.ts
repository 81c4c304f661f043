import type { Config } from '../config/env.ts';
import type { GatewayName } from '../config/gateways.ts';
import type { Db } from '../db/database.ts';
import type { GatewayAccountRow } from '../db/schema.ts';
import type { AccountRegistry } from '../gateways/registry.ts';
import type { GatewayAdapter } from '../gateways/types.ts';
import { gatewayAccountsVersion, loadGatewayAccounts, openAccount } from './accounts.ts';
import type { Keyring } from './cipher.ts';
import { accountConfig } from './credentials.ts';

/**
 * Builds `gateway`'s adapter from a configuration (the registry's factory, with the process's
 * wrappers) for gateway account `account` (`gwa_…`, e.g. a metric's label).
 */
export type AdapterFactory = (gateway: GatewayName, config: Config, account: string) => GatewayAdapter;

/** How often a process asks whether an account changed: once a second. */
export const ACCOUNTS_CHECK_INTERVAL_MS = 1000;

/**
 * The adapters of the gateway accounts. Each process (web or worker) keeps the accounts' rows
 * (credentials still encrypted) and builds an account's adapter on first use, from its decrypted
 * credentials (the process's configuration with them in place of the gateway's variables) by the
 * same factory as the default accounts'. Once `start`ed (the runtime does, after the first load),
 * the process reads `gatewayAccountsVersion` every `checkEveryMs` in the background; when it moved,
 * it reloads the rows and drops every adapter, so a created, changed or disabled account takes effect
 * everywhere within about a second, without a restart. A lookup never waits on the database after
 * the first load: lookups run inside units of work, which hold a pooled connection, and must not
 * wait for a second one. (Without `start`, as in a one-shot CLI command, the rows stay as first
 * read.) A polled version rather than LISTEN/NOTIFY: no connection
 * held per process, nothing missed across a reconnect, and one sum over a handful of rows a second.
 * An unknown account id is answered from the rows in memory (no query, nothing cached for it).
 * `changed()` reloads at once in the process that made the change.
 */
export class AccountAdapters implements AccountRegistry {
  readonly #db: Db;
  readonly #keys: Keyring;
  readonly #config: Config;
  readonly #build: AdapterFactory;
  readonly #checkEveryMs: number;
  #rows = new Map<string, GatewayAccountRow>();
  #adapters = new Map<string, GatewayAdapter>();
  #version: string | undefined;
  #checking: Promise<void> | undefined;
  /** Whether the rows were read at least once. */
  #loaded = false;
  /** The background check's timer, once started. */
  #timer: NodeJS.Timeout | undefined;

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
    this.#checkEveryMs = Math.max(1, checkEveryMs);
  }

  /** The keys credentials are encrypted with (BILLHOOK_SECRET_KEY, and the previous one while rotating). */
  get keys(): Keyring {
    return this.#keys;
  }

  /**
   * @throws SecretKeyMissing or ConflictError `secret_key_unknown` when the account's key is not
   *   configured in this process; the database's error when it cannot be read
   */
  async adapterOf(
    gateway: GatewayName,
    account: string,
    options: { includeDisabled?: boolean } = {},
  ): Promise<GatewayAdapter | undefined> {
    await this.#fresh();
    const row = this.#rows.get(account);
    if (!row || row.gateway !== gateway || (row.disabled_at !== null && !options.includeDisabled))
      return undefined;
    let adapter = this.#adapters.get(account);
    if (!adapter) {
      const { credentials } = openAccount(this.#keys, row);
      adapter = this.#build(
        gateway,
        accountConfig(this.#config, gateway, credentials, row.api_base),
        account,
      );
      this.#adapters.set(account, adapter);
    }
    return adapter;
  }

  /** Reloads the accounts now (resolves once the rows are read): this process changed one. */
  async changed(): Promise<void> {
    this.#version = undefined;
    // A read already in flight may have started before the change: read again after it.
    await this.#checking?.catch(() => undefined);
    await this.refresh();
  }

  /**
   * Reads the accounts' version now, and the rows when it moved (one read in flight at a time, shared
   * by its callers). The runtime calls it at start, so lookups never wait on the database.
   * @throws the database's error when it cannot be read
   */
  refresh(): Promise<void> {
    this.#checking ??= this.#reload().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  /** Checks the accounts' version every `checkEveryMs` in the background, until `stop`. */
  start(): void {
    this.#timer ??= setInterval(() => {
      this.refresh().catch(() => undefined); // the rows in memory stay; the next tick asks again
    }, this.#checkEveryMs).unref();
  }

  /** Stops the background check. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Waits for the first load; afterwards the rows in memory are current enough (`start`'s checks). */
  async #fresh(): Promise<void> {
    if (!this.#loaded) await this.refresh();
  }

  async #reload(): Promise<void> {
    const version = await gatewayAccountsVersion(this.#db);
    if (version !== this.#version) {
      const rows = await loadGatewayAccounts(this.#db);
      this.#rows = new Map(rows.map((row) => [row.id, row]));
      this.#adapters = new Map();
      // The version of the rows read (a change committed between the two reads is seen next time).
      this.#version = rows.reduce((sum, row) => sum + BigInt(row.version), 0n).toString();
    }
    this.#loaded = true;
  }
}
