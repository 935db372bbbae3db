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
 * Replaces every occurrence of a secret in the findings' text with `[redacted]`. The checks never put one there;
 * this is the last guard, for text that came from outside (an error message, an answer from the tenant).
 */
export function scrubSecrets(findings: readonly Finding[], secrets: readonly (string | undefined)[]): Finding[] {
  // Short values could match ordinary words; every secret the doctor knows of is long.
  const known = [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length >= 8))];
  const scrub = (text: string) => known.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
  return findings.map((finding) => {
    const out: Record<string, unknown> = { ...finding };
    for (const key of ['title', 'detail', 'fix'] as const) {
      if (typeof finding[key] === 'string') out[key] = scrub(finding[key]);
    }
    return out as unknown as Finding;
  });
}
