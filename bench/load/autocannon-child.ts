/**
 * The load generator when wrk is missing: autocannon in its own process (so it can be pinned like wrk).
 * argv[2]: JSON { url, connections, durationSec, headers, cookieFile? }. Prints one `BENCH_JSON {...}` line.
 */
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

interface Job { url: string; connections: number; durationSec: number; headers: Record<string, string>; cookieFile?: string }
const job = JSON.parse(process.argv[2] as string) as Job;
const cookies = job.cookieFile ? readFileSync(job.cookieFile, 'utf8').split('\n').filter(Boolean) : [];
let next = Math.floor(Math.random() * Math.max(1, cookies.length));

const result = await autocannon({
  url: job.url,
  connections: job.connections,
  duration: job.durationSec,
  headers: job.headers,
  ...(cookies.length > 0
    ? {
        requests: [{
          setupRequest: (request: { headers?: Record<string, string> }) => {
            next = (next + 1) % cookies.length;
            request.headers = { ...job.headers, cookie: cookies[next] as string };
            return request;
          },
        }],
      }
    : {}),
});
const non2xx = result.non2xx ?? 0;
process.stdout.write(`BENCH_JSON ${JSON.stringify({
  requests: result.requests.total,
  durationUs: Math.round(result.duration * 1e6),
  connectErrors: result.errors,
  readErrors: 0,
  writeErrors: 0,
  timeouts: result.timeouts,
  non2xx,
  // autocannon's histogram has 1 ms resolution.
  p50Us: result.latency.p50 * 1000,
  p99Us: result.latency.p99 * 1000,
  meanUs: result.latency.average * 1000,
})}\n`);
