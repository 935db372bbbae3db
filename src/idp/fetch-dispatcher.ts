/**
 * Keeps the process's `fetch` on Node's own HTTP client, as it is in a process without this library. Imported by the
 * package's entry before anything else.
 *
 * The proxy forwards API calls with npm undici, and npm undici, when it is loaded, installs its own `Agent` as the
 * dispatcher of the global `fetch` unless one is installed already. Node installs the HTTP client it bundles only
 * when its `fetch` (or `Response`, `Headers`, ...) is first used. So importing this library used to move the whole
 * process's `fetch` onto npm undici, and with it every call to Auth0 (logins, token exchanges, revocations) into the
 * code that forwards API calls. V8 keeps one record of the objects each line of code has met: after a few hundred
 * logins, fetch's requests and handlers had made undici's lines megamorphic, and every API call paid for it
 * (BENCHMARKS.md, "Auth0's calls in a client of their own").
 *
 * Reading `Response` loads Node's fetch, which installs Node's client where none is installed yet. Where one is
 * (the app set a dispatcher, or loaded npm undici before this library), it is left as it is.
 */
void globalThis.Response;
