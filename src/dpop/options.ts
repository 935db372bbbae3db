import { BffConfigError } from '../errors.js';
import { DPoPKeyError, readDPoPKey, type DPoPKey } from './key.js';

/** The validated `dpop` option. */
export interface DPoPConfig {
  readonly key: DPoPKey;
  /** `previousKeys`: a stored token bound to one of them is still used, with it (see DPoPOptions). */
  readonly previousKeys: readonly DPoPKey[];
}

/** Reads the `dpop` option once, for validateOptions: undefined keeps Bearer tokens. */
export function readDPoPOption(value: unknown): DPoPConfig | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BffConfigError('dpop', 'must be an object { key }, with key a private JWK or CryptoKey (or be left out for Bearer tokens)');
  }
  const key = (value as { key?: unknown }).key;
  if (key === undefined) throw new BffConfigError('dpop.key', 'is required: a private JWK (EC P-256 for ES256) or a private CryptoKey, the same on every instance');
  const previous = (value as { previousKeys?: unknown }).previousKeys ?? [];
  if (!Array.isArray(previous)) throw new BffConfigError('dpop.previousKeys', 'must be an array of private JWKs or CryptoKeys (the keys used before dpop.key)');
  const current = readKey(key, 'dpop.key');
  const previousKeys = previous
    .map((item: unknown, i) => readKey(item, `dpop.previousKeys[${i}]`))
    .filter((k, i, all) => k.thumbprint !== current.thumbprint && all.findIndex((o) => o.thumbprint === k.thumbprint) === i);
  return Object.freeze({ key: current, previousKeys: Object.freeze(previousKeys) });
}

function readKey(input: unknown, option: string): DPoPKey {
  try {
    return readDPoPKey(input);
  } catch (error) {
    if (error instanceof DPoPKeyError) throw new BffConfigError(option, error.message);
    throw error;
  }
}
