import { BffConfigError } from '../errors.js';
import { DPoPKeyError, readDPoPKey, type DPoPKey } from './key.js';

/** The validated `dpop` option. */
export interface DPoPConfig {
  readonly key: DPoPKey;
}

/** Reads the `dpop` option once, for validateOptions: undefined keeps Bearer tokens. */
export function readDPoPOption(value: unknown): DPoPConfig | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new BffConfigError('dpop', 'must be an object { key }, with key a private JWK or CryptoKey (or be left out for Bearer tokens)');
  }
  const key = (value as { key?: unknown }).key;
  if (key === undefined) throw new BffConfigError('dpop.key', 'is required: a private JWK (EC P-256 for ES256) or a private CryptoKey, the same on every instance');
  try {
    return Object.freeze({ key: readDPoPKey(key) });
  } catch (error) {
    if (error instanceof DPoPKeyError) throw new BffConfigError('dpop.key', error.message);
    throw error;
  }
}
