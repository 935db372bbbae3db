import { BffConfigError } from '../errors.js';

/**
 * The anti-forgery header's rule for a route or an API: `always`, on every method; `unsafe-methods`, on every
 * method but GET, HEAD and OPTIONS, for reads a browser makes without custom headers (an EventSource, a link).
 */
export type CsrfMode = 'always' | 'unsafe-methods';

/** The methods `unsafe-methods` lets through without the header. */
export const isSafeMethod = (method: string | undefined): boolean => method === 'GET' || method === 'HEAD' || method === 'OPTIONS';

/** Reads a `csrf` option (`always` when left out); `field` names it in the error. */
export function csrfMode(value: unknown, field: string): CsrfMode {
  const mode = value ?? 'always';
  if (mode !== 'always' && mode !== 'unsafe-methods') throw new BffConfigError(field, 'must be "always" or "unsafe-methods"');
  return mode;
}
