import { createHash, createPrivateKey, createPublicKey, KeyObject, sign, verify } from 'node:crypto';

/** The JWS algorithms a DPoP key may sign with (RFC 9449 requires an asymmetric one). */
export type DPoPAlgorithm = 'ES256' | 'ES384' | 'ES512' | 'Ed25519';

/** The public members of the key, as the `jwk` header of every proof carries them. */
export type DPoPPublicJwk =
  | { readonly kty: 'EC'; readonly crv: 'P-256' | 'P-384' | 'P-521'; readonly x: string; readonly y: string }
  | { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string };

/**
 * The BFF's DPoP key, read once at startup: the private key as a node:crypto KeyObject (signing needs no import
 * per call and runs synchronously), its public JWK and its RFC 7638 thumbprint (the `cnf.jkt` of bound tokens).
 */
export interface DPoPKey {
  readonly alg: DPoPAlgorithm;
  readonly privateKey: KeyObject;
  readonly publicJwk: DPoPPublicJwk;
  /** base64url SHA-256 JWK thumbprint (RFC 7638): what Auth0 puts in a bound token's `cnf.jkt`. */
  readonly thumbprint: string;
}

/** Why a value is not a usable DPoP key; the message says what is wrong, never what the key holds. */
export class DPoPKeyError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = 'DPoPKeyError';
  }
}

const EC_ALGORITHMS = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' } as const;
const SUPPORTED = 'an EC key on P-256 (ES256, what Auth0 documents), P-384 (ES384) or P-521 (ES512), or an Ed25519 key';

/**
 * Reads a private DPoP key: a private JWK object, a private extractable `CryptoKey` or a private `KeyObject`.
 * The algorithm follows from the key: ES256 for P-256 (the default Auth0 documents), ES384, ES512, Ed25519;
 * a JWK's `alg`, when given, must agree ("EdDSA" agrees with Ed25519).
 * @throws DPoPKeyError saying what is wrong (a public key, a symmetric or RSA key, an unknown curve, bad JSON members).
 *
 * @example
 * ```ts
 * const key = readDPoPKey(JSON.parse(process.env.DPOP_PRIVATE_KEY!));
 * key.alg; // 'ES256'
 * ```
 */
export function readDPoPKey(input: unknown): DPoPKey {
  const privateKey = toKeyObject(input);
  const details = describe(privateKey);
  const jwkAlg = typeof input === 'object' && input !== null && !(input instanceof KeyObject) && !isCryptoKey(input)
    ? (input as { alg?: unknown }).alg
    : undefined;
  // "EdDSA" is the older, polymorphic name of what an Ed25519 key signs (RFC 8037); many JWK generators write it.
  if (jwkAlg !== undefined && jwkAlg !== details.alg && !(jwkAlg === 'EdDSA' && details.alg === 'Ed25519')) {
    throw new DPoPKeyError(`has "alg": ${shownMember(jwkAlg)}, but its key type signs with ${details.alg}`);
  }
  // A JWK whose public members do not belong to its private part would sign proofs no server can verify.
  const probe = Buffer.from('dpop key check');
  const signature = sign(digestOf(details.alg), probe, signingKey(privateKey));
  if (!verify(digestOf(details.alg), probe, signingKey(createPublicKey(privateKey)), signature)) {
    throw new DPoPKeyError('is not a consistent key pair (its public members do not match its private part)');
  }
  return Object.freeze({ alg: details.alg, privateKey, publicJwk: details.publicJwk, thumbprint: thumbprintOf(details.publicJwk) });
}

/** node:crypto's digest name for an algorithm (Ed25519 hashes internally). */
export function digestOf(alg: DPoPAlgorithm): string | null {
  return alg === 'Ed25519' ? null : `sha${alg.slice(2)}`;
}

/** The key as crypto.sign/verify take it: JWS wants ECDSA signatures as r||s (IEEE P1363), not DER. */
export function signingKey(key: KeyObject): { key: KeyObject; dsaEncoding: 'ieee-p1363' } {
  return { key, dsaEncoding: 'ieee-p1363' };
}

/**
 * The key as WebCrypto CryptoKeys, for openid-client's DPoP handle at the token endpoint. Imported once (Node 20
 * has no synchronous KeyObject -> CryptoKey); the private one is not extractable.
 */
export async function webCryptoKeyPair(key: DPoPKey): Promise<CryptoKeyPair> {
  const algorithm = key.publicJwk.kty === 'EC' ? { name: 'ECDSA', namedCurve: key.publicJwk.crv } : { name: 'Ed25519' };
  const privateJwk = key.privateKey.export({ format: 'jwk' });
  const [privateKey, publicKey] = await Promise.all([
    crypto.subtle.importKey('jwk', privateJwk, algorithm, false, ['sign']),
    crypto.subtle.importKey('jwk', { ...key.publicJwk }, algorithm, true, ['verify']),
  ]);
  return { privateKey, publicKey };
}

/**
 * The names a JWK's `kty`, `crv` or `alg` may hold, from the IANA JOSE registries (JSON Web Key Types, JSON Web Key
 * Elliptic Curve, JSON Web Signature and Encryption Algorithms; RFC 7518, 8037, 8812, 9864): public, so safe to quote.
 */
const JOSE_NAMES: ReadonlySet<string> = new Set([
  'EC', 'RSA', 'oct', 'OKP',
  'P-256', 'P-384', 'P-521', 'Ed25519', 'Ed448', 'X25519', 'X448', 'secp256k1',
  'none', 'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512',
  'ES256K', 'EdDSA', 'RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256', 'RSA-OAEP-384', 'RSA-OAEP-512', 'A128KW', 'A192KW', 'A256KW',
  'dir', 'ECDH-ES', 'ECDH-ES+A128KW', 'ECDH-ES+A192KW', 'ECDH-ES+A256KW', 'A128GCMKW', 'A192GCMKW', 'A256GCMKW',
  'PBES2-HS256+A128KW', 'PBES2-HS384+A192KW', 'PBES2-HS512+A256KW',
]);

/**
 * A JWK member's value as an error message may show it: quoted when it is a name of the JOSE registries, otherwise
 * described without its content. A value that is no such name may be anything, a mis-pasted `d` included.
 *
 * @example
 * ```ts
 * shownMember('secp256k1'); // '"secp256k1"'
 * shownMember(jwk.d); // '(a 43-character value)'
 * ```
 */
export function shownMember(value: unknown): string {
  if (typeof value === 'string') return JOSE_NAMES.has(value) ? JSON.stringify(value) : `(a ${value.length}-character value)`;
  if (value === undefined) return '(none)';
  if (value === null) return '(null)';
  if (Array.isArray(value)) return '(an array)';
  return typeof value === 'object' ? '(an object)' : `(a ${typeof value})`;
}

function toKeyObject(input: unknown): KeyObject {
  if (input instanceof KeyObject) return checkPrivate(input);
  if (isCryptoKey(input)) {
    // Proofs are signed synchronously on every API call, with node:crypto; a CryptoKey made non-extractable cannot
    // become a KeyObject without Node's DEP0204 (deprecated since Node 24.x, to be refused).
    if (!input.extractable) throw new DPoPKeyError('is a CryptoKey that cannot be exported: pass the private JWK, a KeyObject, or a CryptoKey made with extractable: true');
    return checkPrivate(KeyObject.from(input));
  }
  if (typeof input === 'string') throw new DPoPKeyError('must be a private JWK object or a CryptoKey, not a string (parse the JSON first)');
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new DPoPKeyError('must be a private JWK object or a private CryptoKey');
  const jwk = input as { kty?: unknown; crv?: unknown; d?: unknown };
  if (jwk.kty === 'oct') throw new DPoPKeyError(`is a symmetric key ("kty": "oct"): DPoP needs an asymmetric key, ${SUPPORTED}`);
  if (jwk.kty === 'RSA') throw new DPoPKeyError(`is an RSA key: use ${SUPPORTED} (RSA proofs cost ten times more to sign on every API call)`);
  if (jwk.kty !== 'EC' && jwk.kty !== 'OKP') throw new DPoPKeyError(`must be a JWK with "kty" "EC" or "OKP": ${SUPPORTED}`);
  if (jwk.kty === 'EC' && !(typeof jwk.crv === 'string' && jwk.crv in EC_ALGORITHMS)) {
    throw new DPoPKeyError(`has an unsupported curve ${shownMember(jwk.crv)}: use ${SUPPORTED}`);
  }
  if (jwk.kty === 'OKP' && jwk.crv !== 'Ed25519') throw new DPoPKeyError(`has an unsupported curve ${shownMember(jwk.crv)}: use ${SUPPORTED}`);
  if (jwk.d === undefined) throw new DPoPKeyError('is a public key: the private JWK (with its "d" member) is needed to sign proofs');
  try {
    return createPrivateKey({ key: input as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch {
    // node's message may quote members of the key: say only that it is malformed.
    throw new DPoPKeyError('is not a valid private JWK (check its "x", "y" and "d" members)');
  }
}

function checkPrivate(key: KeyObject): KeyObject {
  if (key.type !== 'private') throw new DPoPKeyError(`is a ${key.type} key: the private key is needed to sign proofs`);
  return key;
}

function describe(key: KeyObject): { alg: DPoPAlgorithm; publicJwk: DPoPPublicJwk } {
  const jwk = createPublicKey(key).export({ format: 'jwk' }) as { kty?: string; crv?: string; x?: string; y?: string };
  if (jwk.kty === 'EC' && jwk.crv !== undefined && jwk.crv in EC_ALGORITHMS) {
    const crv = jwk.crv as keyof typeof EC_ALGORITHMS;
    return { alg: EC_ALGORITHMS[crv], publicJwk: Object.freeze({ kty: 'EC', crv, x: jwk.x as string, y: jwk.y as string }) };
  }
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    return { alg: 'Ed25519', publicJwk: Object.freeze({ kty: 'OKP', crv: 'Ed25519', x: jwk.x as string }) };
  }
  throw new DPoPKeyError(`is a ${key.asymmetricKeyType ?? 'unknown'} key: use ${SUPPORTED}`);
}

/** RFC 7638: SHA-256 over the required members, in lexicographic order, without whitespace. */
function thumbprintOf(jwk: DPoPPublicJwk): string {
  const members = jwk.kty === 'EC'
    ? `{"crv":"${jwk.crv}","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`
    : `{"crv":"${jwk.crv}","kty":"OKP","x":"${jwk.x}"}`;
  return createHash('sha256').update(members).digest('base64url');
}

function isCryptoKey(value: unknown): value is CryptoKey {
  return typeof CryptoKey !== 'undefined' && value instanceof CryptoKey;
}
