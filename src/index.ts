/**
 * `express-ort-bff`: an Express backend-for-frontend middleware for Auth0 Online Refresh Tokens. {@link createBff}
 * makes the middleware; the rest are the types of its options, events and errors.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createBff } from 'express-ort-bff';
 *
 * const bff = createBff({
 *   domain: 'TENANT.us.auth0.com', clientId: process.env.AUTH0_CLIENT_ID!, clientSecret: process.env.AUTH0_CLIENT_SECRET!,
 *   audience: 'https://api.example.com', baseURL: 'https://app.example.com',
 *   session: { secrets: [process.env.SESSION_SECRET!] }, redis,
 *   apis: [{ mount: '/api', upstream: 'https://api.internal.example.com' }],
 * });
 * express().use(bff).listen(3000);
 * ```
 *
 * @module express-ort-bff
 */
// First, before anything loads npm undici: the process's fetch stays on Node's own HTTP client (see the module).
import './idp/fetch-dispatcher.js';
export { createBff, type Bff } from './create-bff.js';
export type { RequestListenerApp } from './entry/entry-types.js';
export { serverOptions, type AppServerOptions } from './entry/server-options.js';
export type { BffOptions, ApiOptions, PrivateJwk, RedisClient, TokenPolicy } from './config/options.js';
export type { DPoPOptions } from './dpop/dpop-options.js';
export { BffError, BffConfigError, ErrorCode } from './errors.js';
export type {
  BackchannelLogoutRejectedEvent,
  BffEventEmitter,
  BffEventName,
  BffEvents,
  BffOperation,
  LoginEvent,
  LogoutEvent,
  LogoutReason,
  RefreshEvent,
  RefreshFailedEvent,
  ClientTokenEvent,
  ClientTokenFailedEvent,
  RevocationFailedEvent,
  SessionEventBase,
  StoreFailedEvent,
  UpstreamFailedEvent,
} from './events/events.js';
export type { Logger, LogLevel } from './events/logger.js';
export type { TelemetryOptions } from './telemetry/providers.js';
export type { BffUser } from './routes/bff-user.js';
export type { EndSessionsResult, SessionControl, SessionInfo } from './session/session-control.js';
export type { BffSession, RequireSessionOptions } from './guard/guard-types.js';
export { runDoctor, type DoctorInput, type DoctorReport, type Finding, type FindingStatus } from './doctor/doctor.js';
export { formatReport, formatReportJson } from './doctor/report.js';
export { WebSocketCloseCode } from './realtime/close-codes.js';
