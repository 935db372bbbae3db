import { describe, expect, it } from 'vitest';
import { runProbe } from '../support/run-probe.js';

interface ProbeResult {
  announcedAtStart: number;
  responses: number;
  fastResponses: number;
  requests: number;
  fastRequests: number;
  /** Where the last call's ForwardHandler keeps its fields: `FixedArray[0]` when all are inline, `PropertyArray[n]` when not. */
  handlerProperties: string;
}

/**
 * The garbage collection that spoils the layout of the objects an API call makes (src/proxy/object-layouts.ts),
 * made to happen in a child process at the moment that does it; V8 says what became of the later calls' objects.
 */
function probe(env: Record<string, string>): ProbeResult {
  const { result, stdout } = runProbe<Omit<ProbeResult, 'handlerProperties'>>('test/support/object-layouts-probe.ts', {
    nodeArgs: ['--allow-natives-syntax', '--expose-gc'],
    env,
    // Anywhere: V8's description may be cut by it mid-line.
    result: /result: (\{[^}]*\})/,
  });
  return {
    ...result,
    // The handler's description, from V8's %DebugPrint: the only object the probe prints.
    handlerProperties: /^ - properties: \S+ <(\w+\[\d+\])>/m.exec(stdout)?.[1] ?? 'not printed',
  };
}

describe('the layout of the objects an API call makes, through a collection after the sixth call', () => {
  it('is spoiled for good without the BFF: responses and undici requests are dictionaries, the handler keeps no field inline', () => {
    expect(probe({ PROBE_BFF: '0' })).toMatchObject({ responses: 20, fastResponses: 0, requests: 20, fastRequests: 0, handlerProperties: expect.stringMatching(/^PropertyArray/) });
  });

  it('stays fast once a BFF with an API was created, which sends and announces nothing', () => {
    expect(probe({})).toEqual({ announcedAtStart: 0, responses: 20, fastResponses: 20, requests: 20, fastRequests: 20, handlerProperties: 'FixedArray[0]' });
  });

  it('stays fast for undici requests and handlers while someone listens to undici and to Node\'s response channel, who are told of nothing', () => {
    // Node 22 and later tell http.server.response.created of every response made: with a listener, none is made.
    expect(probe({ PROBE_LISTENER: '1' })).toEqual({ announcedAtStart: 0, responses: 20, fastResponses: 0, requests: 20, fastRequests: 20, handlerProperties: 'FixedArray[0]' });
  });
});
