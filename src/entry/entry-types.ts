import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What `bff.wrap()` takes: anything an HTTP server's `request` event can call, an Express 4 or 5 app above all.
 * Typed with Node's own request and response, so that the package's declarations need neither Express's types.
 */
export type RequestListenerApp = (req: IncomingMessage, res: ServerResponse) => unknown;
