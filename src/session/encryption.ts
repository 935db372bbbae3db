import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { BffConfigError } from '../errors.js';

/**
 * Field encryption at rest with AES-256-GCM. A value becomes `e1.<keyId>.<iv>.<ciphertext+tag>` (base64url),
 * where keyId is a short digest of the key, so that any of the configured keys can decrypt and the first one encrypts.
 * It protects tokens in a Redis dump, a backup or a replica someone else can read; it does not protect against
 * someone who can run code in the BFF (the keys are in its memory) or who can read and write Redis while it runs.
 */
export interface FieldCipher {
  encrypt(plain: string): string;
  /**
   * The value, or undefined when it cannot be read: encrypted under a key no longer configured (or with encryption
   * turned off since), or changed in the store. Such a token is as good as none: the session still ends and logs
   * out like any other, and ends at its next exchange (see TokenManager), instead of failing every request.
   */
  decrypt(stored: string): string | undefined;
  /**
   * A short digest that tells values apart and reveals nothing of them (a forced renewal's mark, see
   * `forcedTokenField`). Keyed when encryption is on, by the encrypting key, so that someone who reads the store and
   * holds a candidate value cannot tell whether it is the one.
   */
  digest(value: string): string;
  /**
   * Whether `digest` is `value`'s, made under any configured key or none: in the second step of a key rotation
   * (every instance holds both keys, some encrypting with the new one, some still with the old) the instances
   * recognise each other's digests, and an instance that turned encryption on recognises those made before. (One
   * without the key a digest was made under does not; it cannot read the token that goes with it either.)
   */
  isDigestOf(digest: string, value: string): boolean;
}

const PREFIX = 'e1.';

export function parseEncryptionKeys(value: unknown, option: string): Buffer[] {
  if (value === undefined) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) throw new BffConfigError(option, 'must be a key or a non-empty array of keys (the first encrypts, all decrypt)');
  return list.map((key, i) => {
    if (typeof key !== 'string') throw new BffConfigError(`${option}[${i}]`, 'must be a string');
    if (/^[0-9a-f]{64}$/i.test(key)) return Buffer.from(key, 'hex');
    const b64 = Buffer.from(key, 'base64');
    if (b64.length === 32 && /^[A-Za-z0-9+/_-]{43}=?$/.test(key)) return b64;
    if (key.length >= 32) return createHash('sha256').update(key).digest();
    throw new BffConfigError(`${option}[${i}]`, 'must be 32 bytes as 64 hex digits or base64, or a passphrase of at least 32 characters');
  });
}

const plainDigest = (value: string): string => createHash('sha256').update(value).digest('base64url').slice(0, 22);

/**
 * The identity cipher when no key is configured: values are stored as they are. A value encrypted while keys were
 * configured is not a token to send anywhere.
 */
export const plainCipher: FieldCipher = {
  encrypt: (v) => v,
  decrypt: (v) => (v.startsWith(PREFIX) ? undefined : v),
  digest: plainDigest,
  isDigestOf: (digest, value) => digest === plainDigest(value),
};

export function createFieldCipher(keys: readonly Buffer[]): FieldCipher {
  if (keys.length === 0) return plainCipher;
  const byId = new Map(keys.map((key) => [keyId(key), key] as const));
  const [current] = keys as [Buffer];
  const currentId = keyId(current);
  // Each key has its own key for digests, derived from it: no key serves two purposes.
  const digesters = keys.map((key) => {
    const digestKey = createHmac('sha256', key).update('express-ort-bff digest').digest();
    return (value: string) => createHmac('sha256', digestKey).update(value).digest('base64url').slice(0, 22);
  });
  const [digest] = digesters as [(value: string) => string];
  return {
    digest,
    isDigestOf: (stored, value) => digesters.some((made) => made(value) === stored) || stored === plainDigest(value),
    encrypt(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', current, iv);
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `${PREFIX}${currentId}.${iv.toString('base64url')}.${body.toString('base64url')}`;
    },
    decrypt(stored) {
      // Values written before encryption was turned on are read as they are, so it can be enabled on a live store.
      if (!stored.startsWith(PREFIX)) return stored;
      const [, id, iv, body] = stored.split('.');
      const key = id === undefined ? undefined : byId.get(id);
      if (!key || iv === undefined || body === undefined) return undefined;
      try {
        const raw = Buffer.from(body, 'base64url');
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAuthTag(raw.subarray(raw.length - 16));
        return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString('utf8');
      } catch {
        // Changed in the store, or a key with the same id that is not the one.
        return undefined;
      }
    },
  };
}

function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 6);
}
