import { IncomingMessage, ServerResponse } from 'node:http';
import { settleServerObjects } from '../proxy/object-layouts.js';
import type { RequestListenerApp } from './entry-types.js';

/** What `serverOptions(app)` gives `http.createServer`: the classes its requests and responses are made of. */
export interface AppServerOptions {
  /** The class of the server's requests: Node's `IncomingMessage`, with the app's `request` as prototype. */
  IncomingMessage?: typeof IncomingMessage;
  /** The class of the server's responses: Node's `ServerResponse`, with the app's `response` as prototype. */
  ServerResponse?: typeof ServerResponse;
}

/**
 * Options for `http.createServer` (or `https.createServer`) under which the server makes its requests and
 * responses as the Express app's own: `http.createServer(serverOptions(app), bff.wrap(app))`, or
 * `http.createServer(serverOptions(app), app)` under `app.use(bff)`. For anything but an Express app, `{}`.
 *
 * Why: Express gives each request and response it routes its app's prototype (`Object.setPrototypeOf`). On the V8
 * of Node 20 and 22, an object whose prototype was changed that way gets a hidden class of its own for every field
 * added afterwards (`res.locals`, `res.statusCode`, express-session's `req.session`, ...), and V8 remembers none of
 * them: every request Express routes comes out in hidden classes never seen before. After four of them, the code
 * of Node's HTTP server and streams, which every API call runs too, stops checking hidden classes inline and looks
 * each field up in a process-wide cache instead, for the life of the process (BENCHMARKS.md, "An app's requests
 * in classes of their own"). A request made with the app's prototype from the start keeps it (Express sets the
 * prototype it already has), and its fields follow the same few hidden classes, request after request.
 *
 * The classes are made once per app, and a few objects of each at once, so that V8 settles their layout with every
 * field inline (proxy/object-layouts.ts). Sub-apps mounted with `app.use(path, subApp)` still change the
 * prototype of the requests they route.
 */
export function serverOptions(app: RequestListenerApp): AppServerOptions {
  const made = madeFor.get(app);
  if (made !== undefined) return { ...made };
  const { request, response } = app as ExpressPrototypes;
  if (!inherits(request, IncomingMessage.prototype) || !inherits(response, ServerResponse.prototype)) return {};
  // A Node whose classes are `class`es cannot be called as below; its servers are left as they are.
  if (!callable(IncomingMessage) || !callable(ServerResponse)) return {};
  const options = {
    IncomingMessage: requestClass(request),
    ServerResponse: responseClass(response),
  };
  settleServerObjects(options.IncomingMessage, options.ServerResponse);
  madeFor.set(app, options);
  return { ...options };
}

interface ExpressPrototypes {
  request?: unknown;
  response?: unknown;
}

const madeFor = new WeakMap<RequestListenerApp, Required<AppServerOptions>>();

type NodeConstructor = (this: object, ...args: unknown[]) => void;

function requestClass(prototype: object): typeof IncomingMessage {
  function AppIncomingMessage(this: object, socket: unknown) {
    (IncomingMessage as unknown as NodeConstructor).call(this, socket);
  }
  return asSubclass(AppIncomingMessage, IncomingMessage, prototype);
}

function responseClass(prototype: object): typeof ServerResponse {
  function AppServerResponse(this: object, req: unknown, options: unknown) {
    (ServerResponse as unknown as NodeConstructor).call(this, req, options);
  }
  return asSubclass(AppServerResponse, ServerResponse, prototype);
}

/**
 * `constructor`, made a subclass of `base` the way Node makes its own (`ServerResponse` of `OutgoingMessage`), its
 * objects with `prototype`. The constructor inherits from `base` so that V8, which sizes a constructor's objects
 * from the fields set by it and by the constructors it inherits from, gives them the room Node's own have: sized
 * from this function alone, they would hold a few fields inline and turn into dictionaries as Node adds the rest.
 */
function asSubclass<T extends object>(constructor: NodeConstructor, base: T, prototype: object): T {
  Object.setPrototypeOf(constructor, base);
  constructor.prototype = prototype;
  return constructor as unknown as T;
}

function inherits(value: unknown, prototype: object): value is object {
  return typeof value === 'object' && value !== null && Object.prototype.isPrototypeOf.call(prototype, value);
}

function callable(constructor: object): boolean {
  return !Function.prototype.toString.call(constructor).startsWith('class');
}
