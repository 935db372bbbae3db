/**
 * `npm run soak`: the soak at full volume (200 sessions on two instances, tokens of 5 s, 60 s of GETs and POSTs),
 * printing its figures and checks. Exits 1 when a check fails. Every run writes its figures and checks (and the
 * machine's load) into RELIABILITY.md and bench/results/soak.json.
 *
 *   npm run soak                          full volume
 *   npm run soak -- --sessions 400 --duration 120
 *
 * Env: REDIS_URL (default redis://127.0.0.1:6379; every key the run writes starts with soak:<run id>: and is
 * deleted at the end).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib/procs.js';
import { markdownTable, table } from './lib/stats.js';
import { FULL_SOAK, runSoak, type SoakResult } from './soak/run-soak.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? Number(argv[at + 1]) : fallback;
};
const say = (message: string) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

const loadAtStart = loadavg()[0] as number;
const result = await runSoak({
  ...FULL_SOAK,
  sessions: option('sessions', FULL_SOAK.sessions),
  durationSec: option('duration', FULL_SOAK.durationSec),
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  say,
});
const loadAtEnd = loadavg()[0] as number;

function figureRows(r: SoakResult): string[][] {
  return [['figure', 'value'], ...Object.entries(r.figures).map(([k, v]) => [k, String(v)])];
}
function checkRows(r: SoakResult): string[][] {
  return [['check', 'value', 'pass'], ...r.checks.map((c) => [c.name, c.value, c.pass ? 'yes' : 'NO'])];
}

console.log(`\n${table(figureRows(result))}\n\n${table(checkRows(result))}\n`);
console.log(result.passed ? 'soak: every check passed' : 'soak: FAILED');

{
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, load average ${loadAtStart.toFixed(2)} at the start and ${loadAtEnd.toFixed(2)} at the end`;
  const s = result.settings;
  const report = [
    `Run at ${commit} on ${new Date().toISOString().slice(0, 10)} (${machine}): ${s.sessions} sessions on two instances sharing Redis, access tokens of ${s.tokenTtlSec} s, ${s.durationSec} s of calls (a pause of 0-${2 * s.thinkMs} ms between one session's calls; every third one a POST). ${result.passed ? 'Every check passed.' : '**Some checks failed.**'}`,
    '',
    markdownTable(figureRows(result)),
    '',
    markdownTable(checkRows(result)),
  ].join('\n');
  const file = join(ROOT, 'RELIABILITY.md');
  const text = readFileSync(file, 'utf8');
  const begin = '<!-- soak:latest:begin -->';
  const end = '<!-- soak:latest:end -->';
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from >= 0 && to > from) writeFileSync(file, `${text.slice(0, from + begin.length)}\n${report}\n${text.slice(to)}`);
  writeFileSync(join(ROOT, 'bench/results/soak.json'), `${JSON.stringify({ commit, machine, ...result }, null, 2)}\n`);
  say('RELIABILITY.md and bench/results/soak.json updated');
}
process.exit(result.passed ? 0 : 1);
