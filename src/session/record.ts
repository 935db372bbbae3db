import type { FieldCipher } from './encryption.js';

/** An access token the BFF holds for one audience. Times are epoch milliseconds. */
export interface AccessTokenEntry {
  readonly token: string;
  readonly expiresAt: number;
  /** When the token manager starts exchanging: expiresAt minus the refresh margin, fixed when stored. */
  readonly refreshAt: number;
  readonly scope: string | undefined;
  /** DPoP: the thumbprint of the key the token is bound to (its `cnf.jkt`); undefined for a Bearer token. */
  readonly jkt?: string | undefined;
}

/**
 * What the BFF knows about one logged-in browser session, kept server-side under the BFF session id.
 * It is the one source of truth for "logged in": it is created at login under a fresh session id, later writes
 * only ever update it where it still exists, and deleting it is logging out (DESIGN invariants 4 and 5).
 */
export interface SessionRecord {
  readonly sub: string;
  /** The Auth0 session id (ID token `sid`): every BFF session bound to one Auth0 session shares it. */
  readonly sid: string | undefined;
  readonly createdAt: number;
  readonly absoluteExpiresAt: number;
  readonly idleExpiresAt: number;
  /**
   * The last activity that rolled the idle expiry: at most once per touch interval (a write per request would cost
   * the hot path), so it is accurate to that interval. Sessions stored before this field existed read 0 until then.
   */
  readonly lastActiveAt: number;
  /** A short description of the browser that logged in ("Firefox 128 on Windows"), for session lists. */
  readonly userAgent: string | undefined;
  /** A random value that binds the logout URL to this session (a cross-site page cannot know it). */
  readonly logoutId: string;
  readonly refreshToken: string | undefined;
  readonly idToken: string | undefined;
  readonly scope: string | undefined;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly accessTokens: Readonly<Record<string, AccessTokenEntry>>;
}

/** A record as read back, with the stored (possibly encrypted) refresh token for compare-and-set. */
export interface StoredSessionRecord extends SessionRecord {
  readonly storedRefreshToken: string | undefined;
  /**
   * The audiences whose stored access token a renewal forced by an upstream's rejection gave, in whichever process,
   * and when it was stored (epoch ms): an upstream that rejects that token too gets no second forced renewal from
   * any process for a while.
   */
  readonly forced: ReadonlyMap<string, number>;
}

/** The few fields an API call needs: read in one round trip, decrypting at most one token. */
export interface SessionView {
  readonly sub: string;
  readonly sid: string | undefined;
  readonly absoluteExpiresAt: number;
  readonly idleExpiresAt: number;
  /** See {@link SessionRecord.lastActiveAt}: decides when the idle expiry is rolled next. */
  readonly lastActiveAt: number;
  readonly accessToken: AccessTokenEntry | undefined;
}

/** What a session list shows of a record: no token is read or decrypted. */
export type SessionSummary = Pick<SessionRecord, 'sub' | 'sid' | 'createdAt' | 'absoluteExpiresAt' | 'idleExpiresAt' | 'lastActiveAt' | 'userAgent'>;

/** A successful exchange, written atomically into an existing record only. */
export interface TokenUpdate {
  readonly audience: string;
  readonly accessToken: AccessTokenEntry;
  /** Present when the IdP rotated the refresh token (Auth0 never does for ORTs). */
  readonly refreshToken?: { readonly previousStored: string | undefined; readonly next: string };
  readonly idToken?: string;
  readonly claims?: Readonly<Record<string, unknown>>;
  readonly idleExpiresAt: number;
  /** When the exchange was asked for: an API call (or the app) was active then. */
  readonly lastActiveAt?: number;
  /** An earlier end that a new ID token's `session_expiry` set: the absolute lifetime only ever shrinks. */
  readonly absoluteExpiresAt?: number;
  /**
   * When an exchange forced by an upstream's rejection of the token before stored this one (see
   * {@link StoredSessionRecord.forced}).
   */
  readonly forcedAt?: number;
}

/**
 * How long a session's data outlives its idle or absolute expiry in the store. Within this grace the BFF still
 * finds the record when the browser comes back, so it can end the Auth0 session's other BFF sessions too and
 * report the timeout (401 session_ended and a logout event) instead of silently forgetting it.
 */
export const EXPIRY_GRACE_MS = 10 * 60 * 1000;

/** Field names of the flat (Redis hash) form. */
export const F = {
  sub: 'sub',
  sid: 'sid',
  createdAt: 'iat',
  absoluteExpiresAt: 'abs',
  idleExpiresAt: 'idle',
  lastActiveAt: 'act',
  userAgent: 'ua',
  logoutId: 'lid',
  refreshToken: 'rt',
  idToken: 'idt',
  scope: 'scope',
  claims: 'claims',
} as const;

export const accessTokenField = (audience: string): string => `at:${audience}`;
/**
 * Marks the audience's access token as one a forced renewal gave: the field holds a digest of that token
 * (`FieldCipher.digest`) and when it was stored (`<digest>.<epoch ms>`), so that a token stored later (by a normal
 * renewal, or by a version of this library that knows no such field) is not taken for it. Never removed: it
 * outlives its token harmlessly, as long as the record.
 */
export const forcedTokenField = (audience: string): string => `fx:${audience}`;
/** The fields an API call reads (then the access token of its audience): see {@link decodeView}. */
export const VIEW_FIELDS = [F.sub, F.sid, F.absoluteExpiresAt, F.idleExpiresAt, F.lastActiveAt] as const;
/** The fields a session list reads: see {@link decodeSummary}. */
export const SUMMARY_FIELDS = [F.sub, F.sid, F.createdAt, F.absoluteExpiresAt, F.idleExpiresAt, F.lastActiveAt, F.userAgent] as const;

/** `refreshAt|expiresAt|token|scope`, led by `#jkt|` for a DPoP-bound token (entries stored before DPoP read as Bearer). */
export function encodeAccessToken(entry: AccessTokenEntry, cipher: FieldCipher): string {
  const bound = entry.jkt === undefined ? '' : `#${entry.jkt}|`;
  return `${bound}${entry.refreshAt}|${entry.expiresAt}|${cipher.encrypt(entry.token)}|${entry.scope ?? ''}`;
}

export function decodeAccessToken(value: string | null | undefined, cipher: FieldCipher): AccessTokenEntry | undefined {
  if (!value) return undefined;
  // `#jkt|` leads a bound token's entry: `lead` is where it ends, -1 for a Bearer token's.
  const bound = value.charCodeAt(0) === 35; /* # */
  const lead = bound ? value.indexOf('|') : -1;
  const a = value.indexOf('|', lead + 1);
  const b = value.indexOf('|', a + 1);
  const c = value.indexOf('|', b + 1);
  if (a < 0 || b < 0 || c < 0 || (bound && lead < 0)) return undefined;
  const token = cipher.decrypt(value.slice(b + 1, c));
  // One that cannot be read is as good as none: it is renewed.
  if (token === undefined) return undefined;
  const scope = value.slice(c + 1);
  return {
    refreshAt: Number(value.slice(lead + 1, a)),
    expiresAt: Number(value.slice(a + 1, b)),
    token,
    scope: scope === '' ? undefined : scope,
    jkt: lead < 0 ? undefined : value.slice(1, lead),
  };
}

/**
 * The hot path's view of a record from its view fields (`VIEW_FIELDS`, then the audience's access token), as
 * a store hands them back; undefined when the record is gone.
 */
export function decodeView(
  [sub, sid, abs, idle, act, at]: ReadonlyArray<string | null | undefined>,
  cipher: FieldCipher,
): SessionView | undefined {
  if (!sub || !abs) return undefined;
  return {
    sub,
    sid: sid ?? undefined,
    absoluteExpiresAt: Number(abs),
    idleExpiresAt: Number(idle),
    // A record from before `act` existed: 0 makes its next request record activity.
    lastActiveAt: act ? Number(act) : 0,
    accessToken: decodeAccessToken(at, cipher),
  };
}

/** A session list's view of a record from its `SUMMARY_FIELDS`, as a store hands them back; undefined when it is gone. */
export function decodeSummary([sub, sid, iat, abs, idle, act, ua]: ReadonlyArray<string | null | undefined>): SessionSummary | undefined {
  if (!sub || !abs) return undefined;
  return {
    sub,
    sid: sid ?? undefined,
    createdAt: Number(iat),
    absoluteExpiresAt: Number(abs),
    idleExpiresAt: Number(idle),
    lastActiveAt: act ? Number(act) : Number(iat),
    userAgent: ua ?? undefined,
  };
}

export function encodeRecord(record: SessionRecord, cipher: FieldCipher): Record<string, string> {
  const fields: Record<string, string> = {
    [F.sub]: record.sub,
    [F.createdAt]: String(record.createdAt),
    [F.absoluteExpiresAt]: String(record.absoluteExpiresAt),
    [F.idleExpiresAt]: String(record.idleExpiresAt),
    [F.lastActiveAt]: String(record.lastActiveAt),
    [F.logoutId]: record.logoutId,
    [F.claims]: JSON.stringify(record.claims),
  };
  if (record.sid !== undefined) fields[F.sid] = record.sid;
  if (record.userAgent !== undefined) fields[F.userAgent] = record.userAgent;
  if (record.refreshToken !== undefined) fields[F.refreshToken] = cipher.encrypt(record.refreshToken);
  if (record.idToken !== undefined) fields[F.idToken] = cipher.encrypt(record.idToken);
  if (record.scope !== undefined) fields[F.scope] = record.scope;
  for (const [audience, entry] of Object.entries(record.accessTokens)) fields[accessTokenField(audience)] = encodeAccessToken(entry, cipher);
  return fields;
}

export function decodeRecord(fields: Record<string, string>, cipher: FieldCipher): StoredSessionRecord | undefined {
  if (fields[F.sub] === undefined || fields[F.absoluteExpiresAt] === undefined) return undefined;
  const accessTokens: Record<string, AccessTokenEntry> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (!name.startsWith('at:')) continue;
    const entry = decodeAccessToken(value, cipher);
    if (entry) accessTokens[name.slice(3)] = entry;
  }
  const forced = new Map<string, number>();
  for (const [audience, entry] of Object.entries(accessTokens)) {
    const mark = fields[forcedTokenField(audience)];
    if (mark === undefined) continue;
    const dot = mark.indexOf('.');
    if (dot > 0 && cipher.isDigestOf(mark.slice(0, dot), entry.token)) forced.set(audience, Number(mark.slice(dot + 1)));
  }
  const storedRefreshToken = fields[F.refreshToken];
  return {
    sub: fields[F.sub],
    sid: fields[F.sid],
    createdAt: Number(fields[F.createdAt]),
    absoluteExpiresAt: Number(fields[F.absoluteExpiresAt]),
    idleExpiresAt: Number(fields[F.idleExpiresAt]),
    lastActiveAt: fields[F.lastActiveAt] ? Number(fields[F.lastActiveAt]) : 0,
    userAgent: fields[F.userAgent],
    logoutId: fields[F.logoutId] ?? '',
    refreshToken: storedRefreshToken === undefined ? undefined : cipher.decrypt(storedRefreshToken),
    storedRefreshToken,
    idToken: fields[F.idToken] === undefined ? undefined : cipher.decrypt(fields[F.idToken]),
    scope: fields[F.scope],
    claims: parseClaims(fields[F.claims]),
    accessTokens,
    forced,
  };
}

/** The stored claims; none when the field is missing or is not JSON (changed in the store): never a failed request. */
function parseClaims(value: string | undefined): Record<string, unknown> {
  if (!value) return {};
  try {
    const claims: unknown = JSON.parse(value);
    return claims !== null && typeof claims === 'object' && !Array.isArray(claims) ? (claims as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The flat fields an exchange writes (the refresh token is handled by compare-and-set separately). */
export function encodeUpdate(update: TokenUpdate, cipher: FieldCipher): Record<string, string> {
  const fields: Record<string, string> = {
    [accessTokenField(update.audience)]: encodeAccessToken(update.accessToken, cipher),
    [F.idleExpiresAt]: String(update.idleExpiresAt),
  };
  if (update.lastActiveAt !== undefined) fields[F.lastActiveAt] = String(update.lastActiveAt);
  if (update.absoluteExpiresAt !== undefined) fields[F.absoluteExpiresAt] = String(update.absoluteExpiresAt);
  if (update.idToken !== undefined) fields[F.idToken] = cipher.encrypt(update.idToken);
  if (update.claims !== undefined) fields[F.claims] = JSON.stringify(update.claims);
  if (update.forcedAt !== undefined) fields[forcedTokenField(update.audience)] = `${cipher.digest(update.accessToken.token)}.${update.forcedAt}`;
  return fields;
}
