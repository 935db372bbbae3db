export { createBff, type Bff } from './create-bff.js';
export type { BffOptions, ApiOptions, RedisClient } from './config/options.js';
export { BffError, BffConfigError, ErrorCode } from './errors.js';
export type { BffEvents, BffEventName, Logger, LogoutReason } from './events/events.js';
export type { BffUser } from './routes/user.js';
export type { EndSessionsResult, SessionControl, SessionInfo } from './session/session-list.js';
export { runDoctor, type DoctorInput, type DoctorReport, type Finding, type FindingStatus } from './doctor/doctor.js';
export { formatReport, formatReportJson } from './doctor/report.js';
export { WebSocketCloseCode } from './realtime/close-codes.js';
