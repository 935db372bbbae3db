/** Reads a V8 .cpuprofile (node --cpu-prof) and ranks functions by self time. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile { nodes: Array<ProfileNode & { children?: number[] }>; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface SelfTime { name: string; where: string; selfMs: number; percent: number }

/** A stretch of a profile, in microseconds of the monotonic clock (`process.hrtime`, which V8's profiles use too). */
export interface ProfileWindow { fromUs: number; toUs: number }

/** The same monotonic clock as a CPU profile's timestamps, in microseconds. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** A profile cut down to a window, read once and shared by the summaries below. */
export interface LoadedProfile { profile: CpuProfile; totalMs: number }

/**
 * A profile with each node's hitCount and the sample list cut down to `window` (the load, without start-up and
 * logins), and the milliseconds it covers. A window that misses the profile entirely (another clock) keeps it whole.
 */
export function readProfile(file: string, window?: ProfileWindow): LoadedProfile {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  if (window) {
    const hits = new Map<number, number>();
    const kept: number[] = [];
    let t = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      t += profile.timeDeltas[i] ?? 0;
      if (t < window.fromUs || t > window.toUs) continue;
      const id = profile.samples[i] as number;
      kept.push(id);
      hits.set(id, (hits.get(id) ?? 0) + 1);
    }
    if (kept.length > 0) {
      for (const node of profile.nodes) node.hitCount = hits.get(node.id) ?? 0;
      profile.samples = kept;
      const from = Math.max(window.fromUs, profile.startTime);
      const to = Math.min(window.toUs, profile.endTime);
      return { profile, totalMs: (to - from) / 1000 };
    }
  }
  return { profile, totalMs: (profile.endTime - profile.startTime) / 1000 };
}

export function topSelfTime({ profile, totalMs }: LoadedProfile, limit = 25): { totalMs: number; top: SelfTime[] } {
  const msPerSample = totalMs / Math.max(1, profile.samples.length);
  const byFunction = new Map<string, SelfTime>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${shorten(url)}:${lineNumber + 1}` : '';
    const name = functionName || (url ? '(anonymous)' : '(native)');
    const key = `${name} ${where}`;
    const entry = byFunction.get(key) ?? { name, where, selfMs: 0, percent: 0 };
    entry.selfMs += hits * msPerSample;
    byFunction.set(key, entry);
  }
  const top = [...byFunction.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, limit);
  for (const entry of top) entry.percent = (entry.selfMs / totalMs) * 100;
  return { totalMs, top };
}

/** Self time per package / area (node internals, express, undici, redis, the library, ...). */
export function selfTimeByArea({ profile }: LoadedProfile): Array<{ area: string; percent: number }> {
  const total = profile.samples.length || 1;
  const areas = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const area = areaOf(node.callFrame.url, node.callFrame.functionName);
    areas.set(area, (areas.get(area) ?? 0) + hits);
  }
  return [...areas].map(([area, hits]) => ({ area, percent: (hits / total) * 100 })).sort((a, b) => b.percent - a.percent);
}

/** A compiled bench server's file as the checkout names it (see lib/compiled.ts): not a package of node_modules. */
const COMPILED = /^(?:file:\/\/)?.*\/node_modules\/\.cache\/express-ort-bff-bench\/[^/]+\//;
const inCheckout = (url: string): string => url.replace(COMPILED, '/');

function areaOf(compiledUrl: string, name: string): string {
  const url = inCheckout(compiledUrl);
  if (!url) return name === '(idle)' ? '(idle)' : name === '(garbage collector)' ? '(garbage collector)' : '(native / program)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  if (url.startsWith('node:')) return 'node core';
  if (url.includes('/src/')) return 'express-ort-bff (src/)';
  if (url.includes('/example/')) return 'example/';
  if (url.includes('/bench/')) return 'bench/';
  return url;
}

function shorten(compiledUrl: string): string {
  const url = inCheckout(compiledUrl);
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const src = url.search(/\/(src|bench|example)\//);
  if (src >= 0) return url.slice(src + 1);
  return url.replace(/^file:\/\//, '');
}

/** The most frequent caller chains (up to `depth` frames) of a function, by its self samples. */
export function topCallers({ profile }: LoadedProfile, functionName: string, depth = 4, limit = 2): Array<{ percent: number; chain: string }> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const total = profile.samples.length || 1;
  const chains = new Map<string, number>();
  for (const n of profile.nodes) {
    if (n.callFrame.functionName !== functionName || !n.hitCount) continue;
    const frames: string[] = [];
    for (let id = parent.get(n.id); id !== undefined && frames.length < depth; id = parent.get(id)) {
      const { functionName: name, url, lineNumber } = (byId.get(id) as ProfileNode).callFrame;
      if (!url && !name) continue;
      frames.push(`${name || '(anonymous)'} ${url ? `${shorten(url)}:${lineNumber + 1}` : ''}`.trim());
    }
    const chain = frames.join(' < ');
    chains.set(chain, (chains.get(chain) ?? 0) + n.hitCount);
  }
  return [...chains].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([chain, hits]) => ({ chain, percent: (hits / total) * 100 }));
}
