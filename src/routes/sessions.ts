import type { Request, Response } from 'express';
import { BffError, ErrorCode } from '../errors.js';
import { sendError, toBffError } from '../http/json-error.js';
import type { SessionControl } from '../session/session-control.js';
import { isSessionRef } from '../session/session-list.js';
import { sessionRef } from '../session/sessions.js';
import type { BffContext } from './context.js';

/** The path segment that names every session of the user but the current one. */
export const OTHER_SESSIONS = 'others';

/**
 * The optional sessions route (`routes.sessions`, off by default), for a "your devices" page in the SPA:
 * - `GET <route>`: the current user's live sessions, the current one marked `current: true`;
 * - `DELETE <route>/<sessionRef>`: ends that session (its Auth0 session too), `DELETE <route>/others` all but the
 *   current one. The current session ends through `logoutUrl`, not here.
 * Both need the anti-forgery header of API calls (else 403 `csrf_required`), and answer JSON, errors included.
 * A user sees and ends only their own sessions: the user is the one of the request's session.
 */
export function sessionsRoutes(ctx: BffContext, control: SessionControl) {
  const { config } = ctx;

  /** The anti-forgery header, then the request's session (401 without one). Counts as activity. */
  async function current(req: Request): Promise<{ sub: string; ref: string }> {
    if (req.headers[config.csrf.header] !== config.csrf.value) {
      throw new BffError(ErrorCode.CSRF_REQUIRED, `Session requests must carry the header ${config.csrf.header}: ${config.csrf.value}.`);
    }
    const { id, record } = await ctx.sessions.loadRecord(req);
    return { sub: record.sub, ref: sessionRef(id) };
  }

  return {
    async list(req: Request, res: Response): Promise<void> {
      try {
        const me = await current(req);
        const sessions = (await control.list({ sub: me.sub })).map((info) => ({ ...info, current: info.sessionRef === me.ref }));
        res.setHeader('Cache-Control', 'no-store');
        res.json({ sessions });
      } catch (error) {
        sendError(res, toBffError(error), ctx.report, { operation: 'sessions' });
      }
    },

    async end(req: Request, res: Response): Promise<void> {
      try {
        const me = await current(req);
        const which = req.params.sessionRef;
        if (which !== OTHER_SESSIONS && !isSessionRef(which)) {
          throw new BffError(ErrorCode.INVALID_REQUEST, `Name a session by its sessionRef, or "${OTHER_SESSIONS}".`);
        }
        if (which === me.ref) {
          throw new BffError(ErrorCode.INVALID_REQUEST, 'This is the current session: end it with logoutUrl from /auth/user.');
        }
        const result = await control.end({ sub: me.sub, sessionRef: which === OTHER_SESSIONS ? 'all' : which, except: me.ref });
        res.setHeader('Cache-Control', 'no-store');
        res.json(result);
      } catch (error) {
        sendError(res, toBffError(error), ctx.report, { operation: 'sessions' });
      }
    },
  };
}
