/**
 * The doctor's report as text for a terminal (sections, one line per finding, why and how to fix under what is
 * not ok) or as JSON for a script.
 */
import { SECTIONS, type DoctorReport, type Finding, type FindingStatus } from './finding.js';

const LABEL: Record<FindingStatus, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL', skip: 'skip' };
const WIDTH = 100;
const INDENT = '        ';

/**
 * `text` without control characters: findings quote what the tenant answered (a Management API's message, the URLs
 * registered there), and an escape sequence in them must not reach the terminal. Whitespace is split on anyway.
 */
export const printable = (text: string): string => text.replace(/[\u0000-\u0008\u000e-\u001f\u007f-\u009f]/g, '?');

/** Breaks `text` into lines of at most `width` characters (a longer word keeps its own line), the first after `first`. */
function wrap(text: string, first: string, rest: string, width = WIDTH): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of printable(text).split(/\s+/).filter(Boolean)) {
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = rest + word;
    } else {
      line += (empty ? '' : ' ') + word;
    }
    empty = false;
  }
  lines.push(line);
  return lines;
}

function formatFinding(finding: Finding): string[] {
  const lines = wrap(finding.title, `  ${LABEL[finding.status].padEnd(6)}`, INDENT);
  if (finding.status === 'warn' || finding.status === 'fail') {
    if (finding.detail) lines.push(...wrap(finding.detail, INDENT, INDENT));
  }
  if (finding.status !== 'ok' && finding.fix) lines.push(...wrap(finding.fix, `${INDENT}Fix: `, `${INDENT}     `));
  return lines;
}

/** Summary line: counts, and what to do about them. */
function verdict(report: DoctorReport): string {
  const { ok, warn, fail, skip } = report.counts;
  const parts = [`${fail} failed`, `${warn} warning${warn === 1 ? '' : 's'}`, `${ok} ok`, ...(skip > 0 ? [`${skip} not checked`] : [])];
  const advice = fail > 0 ? 'fix what failed before users log in.' : warn > 0 ? 'the BFF will work; the warnings say what it would miss.' : 'nothing to fix.';
  return `${parts.join(', ')}: ${advice}`;
}

/**
 * The report as text.
 *
 * @example
 * ```ts
 * process.stdout.write(formatReport(await runDoctor({ env: process.env })));
 * ```
 */
export function formatReport(report: DoctorReport): string {
  const lines = ['express-ort-bff doctor'];
  const { issuer, clientId, audiences, baseURL } = report.target;
  if (issuer) lines.push(`  issuer   ${printable(issuer)}`);
  if (clientId) lines.push(`  client   ${printable(clientId)}`);
  if (audiences?.length) lines.push(`  API      ${printable(audiences.join(', '))}`);
  if (baseURL) lines.push(`  BFF      ${printable(baseURL)}`);
  for (const [section, heading] of Object.entries(SECTIONS)) {
    const findings = report.findings.filter((finding) => finding.section === section);
    if (findings.length === 0) continue;
    lines.push('', heading, ...findings.flatMap(formatFinding));
  }
  lines.push('', verdict(report), '');
  return lines.join('\n');
}

/** The report as JSON (the same object `runDoctor` returns). */
export function formatReportJson(report: DoctorReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
