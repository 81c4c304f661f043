import type { Request } from 'express';
import type { Actor } from '../ledger/unit-of-work.ts';

/** Whether `id` is an API key's id (`key_…`), which names the key's requests as their actor. */
function isKeyId(id: string): id is `key_${string}` {
  return id.startsWith('key_');
}

/**
 * The actor an API key's id names (`key_…`): the key of a `/v1` request, or the admin key behind a
 * dashboard action. @throws Error when `id` is not an API key id
 */
export function keyActor(id: string): Actor {
  if (!isKeyId(id)) throw new Error(`not an API key id: ${id}`);
  return id;
}

/**
 * The actor of a `/v1` request, passed to every service it calls that writes: its API key's id
 * (`key_…`), or `api` for a request without a key (`requireApiKey` lets none through).
 */
export function actorOf(req: Request): Actor {
  return req.apiKey ? keyActor(req.apiKey.id) : 'api';
}
