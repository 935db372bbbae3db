import type { BffConfig } from '../config/validate.js';
import type { Reporter } from '../events/reporter.js';
import type { IdpClient } from '../idp/idp-client.js';
import type { Sessions } from '../session/sessions.js';
import type { TokenManager } from '../tokens/token-manager.js';

/** What every route handler works with; built once by createBff(). */
export interface BffContext {
  readonly config: BffConfig;
  readonly idp: IdpClient;
  readonly sessions: Sessions;
  readonly tokens: TokenManager;
  readonly report: Reporter;
}

/** The key under which the login audience's access token is kept ('' when the BFF has no audience). */
export const loginAudience = (config: BffConfig): string => config.audience ?? '';
