/**
 * `npm run bench -- --allocations`: the bytes a server allocates per proxied call, and where, from V8's sampling
 * heap profiler (bench/servers/allocation-probe.ts) over a fixed number of calls. Like an instruction count, it
 * does not depend on what else the machine is doing; unlike the `--trace-gc` figures (bytes between scavenges over
 * requests answered), it says which function allocated. Every allocation a young-generation collection has to
 * look at counts, what survives and what does not.
 */
import { existsSync, readFileSync } from 'node:fs';
import { functionName } from './instructions.js';

/** A node of V8's sampling heap profile (`HeapProfiler.SamplingHeapProfileNode`), as much of it as is read here. */
export interface ProfileNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  /** Bytes the sampled allocations made in this function itself stand for, on this path. */
  readonly selfSize: number;
  readonly children: readonly ProfileNode[];
}

/** What `byFunction` gives: bytes per call in all, by function (self: allocated in the function's own code). */
export interface Allocations {
  readonly perCall: number;
  readonly byFunction: Map<string, number>;
}

/**
 * The profile's bytes per call, by function. A function is named by its name, file and line as
 * `functionName` shortens them (the same names as `--instructions` gives). Optimized code folds allocations made
 * close together into one, so what a function inlined may count as that function's own: a difference of a few
 * hundred bytes between two functions may be where the JIT put it.
 */
export function byFunction(head: ProfileNode, calls: number): Allocations {
  const sizes = new Map<string, number>();
  let total = 0;
  const stack: ProfileNode[] = [head];
  while (stack.length > 0) {
    const node = stack.pop() as ProfileNode;
    if (node.selfSize > 0) {
      const { functionName: fn, url, lineNumber } = node.callFrame;
      // V8's line numbers count from 0; the files' from 1.
      const name = functionName(`${fn || '(anonymous)'} ${url}${url ? `:${lineNumber + 1}` : ''}`.trim());
      sizes.set(name, (sizes.get(name) ?? 0) + node.selfSize / calls);
      total += node.selfSize;
    }
    stack.push(...node.children);
  }
  return { perCall: total / calls, byFunction: sizes };
}

/** Whether a function (as `byFunction` names it) is the library's or the example's own code. */
export function isOwnCode(name: string): boolean {
  return /(^| )(src|example)\//.test(name);
}

/** Waits until `file` exists (the probe writes it whole), up to `timeoutMs`. */
export async function waitForFile(file: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!existsSync(file)) {
    if (performance.now() > deadline) throw new Error(`${file} was not written within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Reads the profile the probe wrote (a `.heapprofile` file: Chrome's DevTools open it too). */
export function readProfile(file: string): ProfileNode {
  return (JSON.parse(readFileSync(file, 'utf8')) as { head: ProfileNode }).head;
}
