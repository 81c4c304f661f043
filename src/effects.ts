import { AsyncLocalStorage } from 'node:async_hooks';

/** What `watchEffects` learns of the work it ran. */
export interface Effects {
  /**
   * Whether it may have changed something outside its process: a transaction asked to commit (its
   * answer may be lost, so asked is enough), or a gateway client taken for a call.
   */
  changed: boolean;
}

const watched = new AsyncLocalStorage<Effects>();

/**
 * Runs `fn` watched by `effects`: what `fn` starts (its awaits, callbacks and timers) notes into
 * `effects` through `noteEffect`. How an `Idempotency-Key` (http/idempotency.ts) tells a failure that
 * changed nothing, whose key is freed for the retry, from one that may have moved money.
 * @returns what `fn` returns
 */
export function watchEffects<T>(effects: Effects, fn: () => T): T {
  return watched.run(effects, fn);
}

/**
 * Notes, in the work `watchEffects` watches (nothing when none is), that it may have changed
 * something: called by a unit of work before its commit (ledger/unit-of-work.ts) and when a gateway
 * client is taken for a call (accounts/clients.ts).
 */
export function noteEffect(): void {
  const effects = watched.getStore();
  if (effects) effects.changed = true;
}
