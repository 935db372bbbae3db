/**
 * `npm run check:package [-- --out DIR]`: packs the package as `npm publish` would and checks what a user gets.
 *
 * - `npm pack` builds it (`prepack`) from an emptied dist: a file planted in dist beforehand must not ship.
 * - It ships package.json, README.md, LICENSE (MIT), CHANGELOG.md and dist, nothing else, and every file the
 *   exports map names.
 * - Source maps carry their sources (the TypeScript files do not ship); declaration maps, if any, resolve.
 * - The declarations the entries reach import only Node's modules and the package's dependencies: no Express,
 *   express-session or oidc-provider type definitions needed (nor any other peer's or dev dependency's).
 * - README and CHANGELOG links work on the package page: no link to a file that does not ship, no dead anchor.
 * - The CHANGELOG has an Unreleased section and an entry for package.json's version.
 * - publint and @arethetypeswrong/cli find nothing (both read the tarball: no network).
 *
 * The tarball stays in DIR (default: a new temporary folder) for the consumer checks; its path is the last line.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STALE = 'dist/stale-file-from-an-older-build.js';
const DOCS = ['README.md', 'LICENSE', 'CHANGELOG.md'];
const FENCED = /^```[\s\S]*?^```/gm;

const problems: string[] = [];
const problem = (text: string) => void problems.push(text);

function run(command: string, args: string[], cwd = ROOT): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Runs a checker with its output shown; its failure is a problem. */
function check(name: string, command: string, args: string[], cwd: string): void {
  console.log(`== ${name}`);
  const { status } = spawnSync(command, args, { cwd, stdio: 'inherit' });
  if (status !== 0) problem(`${name} failed (exit ${status})`);
}

function pack(out: string): { tarball: string; unpacked: string; files: Set<string> } {
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  writeFileSync(join(ROOT, STALE), 'export const stale = true;\n');
  const report = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', out])) as [{ filename: string }];
  const tarball = join(out, report[0].filename);
  const unpacked = join(out, 'unpacked');
  mkdirSync(unpacked, { recursive: true });
  run('tar', ['-xzf', tarball, '-C', unpacked]);
  const root = join(unpacked, 'package');
  const files = new Set(listFiles(root).map((file) => relative(root, file).split('\\').join('/')));
  return { tarball, unpacked: root, files };
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

/** Every file path an exports map names (conditions and subpaths, without patterns). */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (typeof exports !== 'object' || exports === null) return [];
  return Object.values(exports).flatMap(exportTargets);
}

function checkContents(files: Set<string>, manifest: Record<string, unknown>): void {
  for (const file of files) {
    if (file !== 'package.json' && !DOCS.includes(file) && !file.startsWith('dist/')) problem(`ships ${file}, which is neither dist nor ${DOCS.join(', ')}`);
  }
  const required = [...DOCS, ...exportTargets(manifest.exports).map((target) => posix.normalize(target))];
  for (const file of required) if (!files.has(file)) problem(`does not ship ${file}`);
  if (files.has(STALE)) problem(`ships ${STALE}: prepack did not build from an emptied dist`);
  if (manifest.license !== 'MIT') problem(`package.json's license is ${String(manifest.license)}, not MIT`);
}

function checkSourceMaps(root: string, files: Set<string>): void {
  for (const file of files) {
    if (file.endsWith('.js')) {
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(root, file), 'utf8'))?.[1];
      if (url && !files.has(posix.join(posix.dirname(file), url))) problem(`${file} names a source map that does not ship: ${url}`);
    }
    if (!file.endsWith('.map')) continue;
    const map = JSON.parse(readFileSync(join(root, file), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
    map.sources.forEach((source, i) => {
      const target = posix.join(posix.dirname(file), source);
      const carried = typeof map.sourcesContent?.[i] === 'string';
      if (file.endsWith('.d.ts.map') ? !files.has(target) : !carried && !files.has(target)) {
        problem(`${file}: its source ${source} neither ships nor is carried in the map`);
      }
    });
  }
}

function checkDeclarationImports(root: string, files: Set<string>, manifest: Record<string, unknown>): void {
  // Node's own modules (the user's @types/node), and the dependencies, which install with the package.
  const dependencies = new Set(Object.keys((manifest.dependencies ?? {}) as Record<string, string>));
  const allowed = (specifier: string) => specifier.startsWith('node:') || dependencies.has(specifier.match(/^(@[^/]+\/)?[^/]+/)![0]);
  const pending = exportTargets(manifest.exports).map((target) => posix.normalize(target)).filter((file) => file.endsWith('.d.ts'));
  const seen = new Set<string>();
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!files.has(file)) {
      problem(`the declarations reach ${file}, which does not ship`);
      continue;
    }
    const text = readFileSync(join(root, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const [, specifier] of text.matchAll(/(?:from\s+|import\s*\(\s*)['"]([^'"]+)['"]/g)) {
      if (specifier!.startsWith('.')) pending.push(posix.join(posix.dirname(file), specifier!.replace(/\.js$/, '.d.ts')));
      else if (!allowed(specifier!)) problem(`${file} imports types from ${specifier}, which a user may not have`);
    }
  }
}

/** GitHub's heading anchors (npm's package page uses the same): lower case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, heading] of markdown.replace(FENCED, '').matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = heading!.replace(/`/g, '').toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

function checkLinks(root: string, files: Set<string>, document: string): void {
  const text = readFileSync(join(root, document), 'utf8');
  const own = anchors(text);
  // Headings are read with their inline code (it is part of the anchor); links are read outside code.
  const prose = text.replace(FENCED, '').replace(/`[^`\n]*`/g, '');
  const targets = [
    ...[...prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
    ...[...prose.matchAll(/\b(?:href|src)="([^"]+)"/g)].map((m) => m[1]!),
    ...[...prose.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((m) => m[1]!),
  ];
  for (const target of targets) {
    if (/^(https?:|mailto:)/.test(target)) continue;
    const [path = '', anchor] = target.split('#');
    if (path === '') {
      if (anchor !== undefined && !own.has(anchor)) problem(`${document} links to #${anchor}, which is no heading of it`);
      continue;
    }
    const file = posix.normalize(path.replace(/^\.\//, ''));
    if (!files.has(file)) problem(`${document} links to ${target}, which does not ship (the link is dead on the package page)`);
  }
}

function checkChangelog(root: string, version: string): void {
  const text = readFileSync(join(root, 'CHANGELOG.md'), 'utf8');
  const headings = [...text.matchAll(/^## \[([^\]]+)\]/gm)].map((m) => m[1]);
  if (headings[0] !== 'Unreleased') problem('CHANGELOG.md does not start with an "## [Unreleased]" section');
  if (!headings.includes(version)) problem(`CHANGELOG.md has no "## [${version}]" entry for package.json's version`);
}

const outFlag = process.argv.indexOf('--out');
const out = outFlag > 0 ? resolve(process.argv[outFlag + 1]!) : mkdtempSync(join(tmpdir(), 'bff-pack-'));
mkdirSync(out, { recursive: true });
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
const { tarball, unpacked, files } = pack(out);
console.log(`== packed ${files.size} files into ${tarball}`);
checkContents(files, manifest);
checkSourceMaps(unpacked, files);
checkDeclarationImports(unpacked, files, manifest);
for (const document of ['README.md', 'CHANGELOG.md']) if (existsSync(join(unpacked, document))) checkLinks(unpacked, files, document);
checkChangelog(unpacked, String(manifest.version));

const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
check('publint', bin('publint'), ['run', tarball, '--strict'], out);
// An ES module package: Node 20.19+ and 22.12+ require() it, and TypeScript allows that from `module` nodenext
// (and node20); its `node16` mode models Node 16, which cannot (the README says so, the consumer checks show it).
check('@arethetypeswrong/cli', bin('attw'), [tarball, '--ignore-rules', 'cjs-resolves-to-esm', '--format', 'table-flipped'], out);
for (const text of problems) console.error(`package: ${text}`);
if (problems.length > 0) {
  console.error(`package: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`== the package is fine: ${tarball}`);
console.log(tarball);
