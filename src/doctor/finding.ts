/**
 * What the doctor reports: one finding per thing checked, each with what was found and, unless it is fine, how
 * to fix it. Findings never hold a token or a secret (the doctor scrubs them once more before reporting).
 */

/** `skip`: not checked, because something it depends on failed or was not given. */
export type FindingStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** The parts of the report, in the order they are printed. */
export const SECTIONS = {
  configuration: 'BFF configuration',
  discovery: 'Discovery',
  client: 'Client credentials',
  tenant: 'Tenant settings (Management API)',
} as const;

export type Section = keyof typeof SECTIONS;

/** One thing the doctor checked: what it found, and how to fix it unless it is fine. */
export interface Finding {
  /** A stable name of the check, e.g. `api.online-access`; the same check may report once per API. */
  readonly id: string;
  /** The part of the report it belongs to. */
  readonly section: Section;
  /** `ok`, `warn` (works, but should change), `fail` (will not work) or `skip` (not checked). */
  readonly status: FindingStatus;
  /** One line: what was found. */
  readonly title: string;
  /** Why it matters, or what exactly was seen. */
  readonly detail?: string;
  /** What to change, where `status` is `warn` or `fail`. */
  readonly fix?: string;
}

/** The doctor's answer: every finding, and whether none failed. */
export interface DoctorReport {
  /** False when a finding failed (or, with `strict`, warned). */
  readonly ok: boolean;
  /** How many findings have each status. */
  readonly counts: Readonly<Record<FindingStatus, number>>;
  /** What was checked (no secrets). */
  readonly target: {
    /** The Auth0 issuer. */
    readonly issuer?: string;
    /** The application's Client ID. */
    readonly clientId?: string;
    /** The APIs the BFF asks tokens for. */
    readonly audiences?: readonly string[];
    /** The BFF's public URL. */
    readonly baseURL?: string;
  };
  /** Every finding, in report order. */
  readonly findings: readonly Finding[];
}

/** A finding builder bound to one section, so that each check reads as a list of outcomes. */
export function findingsOf(section: Section) {
  const make =
    (status: FindingStatus) =>
    (id: string, title: string, more: { detail?: string | undefined; fix?: string | undefined } = {}): Finding => ({
      id,
      section,
      status,
      title,
      ...(more.detail === undefined ? {} : { detail: more.detail }),
      ...(more.fix === undefined ? {} : { fix: more.fix }),
    });
  return { ok: make('ok'), warn: make('warn'), fail: make('fail'), skip: make('skip') };
}

/** Counts findings by status; `ok` is false when one failed, or warned under `strict`. */
export function summarize(findings: readonly Finding[], strict: boolean): Pick<DoctorReport, 'ok' | 'counts'> {
  const counts = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const finding of findings) counts[finding.status] += 1;
  return { ok: counts.fail === 0 && (!strict || counts.warn === 0), counts };
}

/**
 * How short a value may be and still be replaced wherever it appears. A value known to be secret (a client or
 * session secret, a token, the password of a URL) is replaced from 3 characters up: a shorter one matches letters
 * of ordinary words, so that replacing it would leave the report unreadable, and it protects nothing anyway. The
 * user name of a URL is an identifier, often a common word (Redis' `default`): replaced from 8 characters up. Both,
 * however short, are also removed from every URL the report quotes (`https://***@host`, as the example's reader
 * writes them).
 */
const MIN_SECRET_LENGTH = 3;
const MIN_USER_NAME_LENGTH = 8;
/** The user information of a URL, `scheme://user:pass@`, up to the last `@` before the host (a password may hold one). */
const URL_USERINFO = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)[\w.~%!$&'()*+,;=:@-]*@/g;

/**
 * A function that replaces, in a text, every secret with `[redacted]` and the user information of every URL;
 * `userNames` are replaced from a longer length than `secrets` (see MIN_USER_NAME_LENGTH).
 */
export function scrubberOf(secrets: readonly (string | undefined)[], userNames: readonly (string | undefined)[] = []): (text: string) => string {
  const atLeast = (values: readonly (string | undefined)[], length: number) => values.filter((v): v is string => typeof v === 'string' && v.length >= length);
  // Longest first, in one pass: a secret that contains another is replaced whole, and `[redacted]` is never scrubbed again.
  const known = [...new Set([...atLeast(secrets, MIN_SECRET_LENGTH), ...atLeast(userNames, MIN_USER_NAME_LENGTH)])].sort((a, b) => b.length - a.length);
  const pattern = known.length === 0 ? undefined : new RegExp(known.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return (text) => {
    const out = text.replace(URL_USERINFO, '$1***@');
    return pattern ? out.replace(pattern, '[redacted]') : out;
  };
}

/**
 * Replaces every occurrence of a secret in the findings' text with `[redacted]`, and the user information of every
 * URL. The checks never put one there; this is the last guard, for text that came from outside (an error message,
 * an answer from the tenant) and for the values given (an audience with a password).
 */
export function scrubSecrets(findings: readonly Finding[], secrets: readonly (string | undefined)[], userNames: readonly (string | undefined)[] = []): Finding[] {
  const scrub = scrubberOf(secrets, userNames);
  return findings.map((finding) => {
    const out: Record<string, unknown> = { ...finding };
    for (const key of ['title', 'detail', 'fix'] as const) {
      if (typeof finding[key] === 'string') out[key] = scrub(finding[key]);
    }
    return out as unknown as Finding;
  });
}
