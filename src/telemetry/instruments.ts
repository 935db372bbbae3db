import { ValueType, type Counter, type Histogram, type Meter } from '@opentelemetry/api';
import { DURATION_BUCKETS, METRIC } from './names.js';

/** The BFF's metric instruments, made once per BFF. */
export interface Instruments {
  readonly proxyDuration: Histogram;
  readonly exchangeDuration: Histogram;
  readonly renewals: Counter;
  readonly upstreamErrors: Counter;
  readonly storeErrors: Counter;
  readonly logins: Counter;
  readonly logouts: Counter;
}

/**
 * Makes the instruments on `meter`. `activeSessions`, when the session backend can count its sessions cheaply
 * (memory), is read each time the metrics are collected; Redis has no cheap count and reports none.
 */
export function createInstruments(meter: Meter, activeSessions: (() => number) | undefined): Instruments {
  const seconds = (name: string, description: string) =>
    meter.createHistogram(name, { description, unit: 's', valueType: ValueType.DOUBLE, advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
  const count = (name: string, unit: string, description: string) => meter.createCounter(name, { description, unit, valueType: ValueType.INT });
  if (activeSessions) {
    meter.createObservableGauge(METRIC.SESSION_ACTIVE, { description: 'BFF sessions alive in this process (memory sessions).', unit: '{session}', valueType: ValueType.INT })
      .addCallback((result) => result.observe(activeSessions()));
  }
  return {
    proxyDuration: seconds(METRIC.HTTP_CLIENT_REQUEST_DURATION, 'Duration of the API calls the BFF proxied, from sending the request to the end of the answer.'),
    exchangeDuration: seconds(METRIC.TOKEN_EXCHANGE_DURATION, 'Duration of token requests to Auth0 (ORT exchanges), by outcome.'),
    renewals: count(METRIC.TOKEN_RENEWALS, '{request}', 'Requests that needed a renewed access token, by how they got it: led the exchange, joined one under way, waited for another process.'),
    upstreamErrors: count(METRIC.UPSTREAM_ERRORS, '{error}', 'API calls the upstream did not answer, answered too late, or broke off.'),
    storeErrors: count(METRIC.SESSION_STORE_ERRORS, '{error}', 'Requests the session store failed or did not answer in time.'),
    logins: count(METRIC.LOGINS, '{login}', 'Logins completed.'),
    logouts: count(METRIC.LOGOUTS, '{logout}', 'Logouts by reason, one per logout however many BFF sessions it ended.'),
  };
}
