/** One challenge of a WWW-Authenticate header: the scheme and its parameters, names in lower case. */
export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const SPACE = /[ \t]*/y;

/**
 * The challenges of WWW-Authenticate header values (RFC 9110 11.6.1): `DPoP error="use_dpop_nonce",
 * error_description="..."` and `Bearer realm="api", DPoP algs="ES256"` alike. What cannot be parsed is skipped.
 */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join(', ');
  const out: Array<{ scheme: string; params: Record<string, string> }> = [];
  let pos = 0;
  while (pos < text.length) {
    const c = text[pos] as string;
    if (c === ',' || c === ' ' || c === '\t') {
      pos++;
      continue;
    }
    TOKEN.lastIndex = pos;
    const name = TOKEN.exec(text)?.[0];
    if (name === undefined) {
      pos++;
      continue;
    }
    pos += name.length;
    SPACE.lastIndex = pos;
    pos += SPACE.exec(text)?.[0].length ?? 0;
    const current = out[out.length - 1];
    if (text[pos] === '=' && current !== undefined) {
      const [value, next] = readValue(text, pos + 1);
      current.params[name.toLowerCase()] = value;
      pos = next;
    } else {
      out.push({ scheme: name.toLowerCase(), params: {} });
    }
  }
  return out;
}

/**
 * The error of a DPoP challenge: `use_dpop_nonce` (RFC 9449 9: the server wants a new nonce in the proof),
 * `invalid_dpop_proof` (7.1: it refused the proof itself), `invalid_token`, ...
 */
export function dpopError(header: string | readonly string[] | undefined): string | undefined {
  // Most answers carry no challenge at all; a 401 is the only one that is parsed.
  if (header === undefined) return undefined;
  for (const c of parseChallenges(header)) if (c.scheme === 'dpop' && c.params.error !== undefined) return c.params.error;
  return undefined;
}

/** RFC 9449 9: the server wants a (new) nonce in the proof: `DPoP error="use_dpop_nonce"`. */
export function demandsNonce(header: string | readonly string[] | undefined): boolean {
  return dpopError(header) === 'use_dpop_nonce';
}

/** A quoted-string (with its backslash escapes) or a token, from `pos`; returns the value and where it ended. */
function readValue(text: string, from: number): [string, number] {
  SPACE.lastIndex = from;
  let pos = from + (SPACE.exec(text)?.[0].length ?? 0);
  if (text[pos] !== '"') {
    TOKEN.lastIndex = pos;
    const token = TOKEN.exec(text)?.[0] ?? '';
    return [token, pos + token.length];
  }
  let value = '';
  for (pos++; pos < text.length; pos++) {
    const c = text[pos] as string;
    if (c === '"') return [value, pos + 1];
    if (c === '\\' && pos + 1 < text.length) pos++;
    value += text[pos];
  }
  return [value, pos];
}
