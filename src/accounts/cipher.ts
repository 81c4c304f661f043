import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { ConflictError } from '../errors.ts';

/** A 32-byte AES-256 key and its id: the first 8 hex digits of its SHA-256 (names the key, reveals nothing usable). */
export interface SecretKey {
  id: string;
  key: Buffer;
}

/**
 * The keys credentials are read and written with: `current` (BILLHOOK_SECRET_KEY) encrypts and
 * decrypts, `previous` (BILLHOOK_SECRET_KEY_PREVIOUS) only decrypts, while a rotation is under way.
 */
export interface Keyring {
  current: SecretKey | undefined;
  previous: SecretKey | undefined;
}

/** A ciphertext and the id of the key that made it. */
export interface Sealed {
  keyId: string;
  /** 12-byte IV, 16-byte GCM tag, then the ciphertext. */
  data: Buffer;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The key's id (`SecretKey.id`). */
export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** The keyring of the two configuration keys (either may be unset). */
export function keyring(current: Buffer | undefined, previous: Buffer | undefined): Keyring {
  const of = (key: Buffer | undefined) => (key ? { id: keyId(key), key } : undefined);
  return { current: of(current), previous: of(previous) };
}

/**
 * 409 `secret_key_missing`: BILLHOOK_SECRET_KEY is unset, and what was asked stores a secret encrypted
 * with it (a gateway account's credentials, a webhook endpoint's signing secret). The message names both,
 * as one class serves both.
 */
export class SecretKeyMissing extends ConflictError {
  constructor() {
    super(
      'secret_key_missing',
      "BILLHOOK_SECRET_KEY is not set: gateway accounts' credentials and webhook endpoints' secrets are stored encrypted with it; set it (32 bytes, hex or base64: openssl rand -base64 32) on every billhook process",
    );
  }
}

/**
 * Encrypts `plain` with AES-256-GCM under the current key, a fresh random IV each time; `context`
 * (the account's id) is bound as additional data, so a ciphertext copied to another row does not open.
 * @throws SecretKeyMissing without a current key
 */
export function seal(keys: Keyring, plain: string, context: string): Sealed {
  if (!keys.current) throw new SecretKeyMissing();
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keys.current.key, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return { keyId: keys.current.id, data: Buffer.concat([iv, cipher.getAuthTag(), body]) };
}

/**
 * Decrypts what {@link seal} made, with the current or the previous key (whichever `sealed.keyId` names).
 * @throws SecretKeyMissing when neither configured key is the one named (a 409 naming the key id)
 * @throws Error when the data was altered or does not belong to `context` (GCM authentication fails)
 */
export function open(keys: Keyring, sealed: Sealed, context: string): string {
  const key = [keys.current, keys.previous].find((k) => k?.id === sealed.keyId);
  if (!key) {
    if (!keys.current) throw new SecretKeyMissing();
    throw new ConflictError(
      'secret_key_unknown',
      `credentials are encrypted with key ${sealed.keyId}, which is neither BILLHOOK_SECRET_KEY nor BILLHOOK_SECRET_KEY_PREVIOUS`,
    );
  }
  const iv = sealed.data.subarray(0, IV_BYTES);
  const tag = sealed.data.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key.key, iv);
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(tag);
  return Buffer.concat([
    decipher.update(sealed.data.subarray(IV_BYTES + TAG_BYTES)),
    decipher.final(),
  ]).toString('utf8');
}
