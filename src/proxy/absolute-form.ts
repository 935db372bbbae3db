import type { IncomingMessage } from 'node:http';
import type { ApiProxy } from './api-proxy.js';

/**
 * The API a request whose target is in absolute form (`GET http://host/api/items`, RFC 9112 3.2.2) is for. A
 * server must accept that form, though browsers send it only to forward proxies; Express routes such a request by
 * its path, so the BFF does too. When an API takes it, `req.url` becomes the origin form (`/api/items`), which
 * the proxy forwards. Only called for a target that does not start with `/`: API calls in origin form are matched
 * before, at no cost.
 */
export function absoluteFormApi(proxies: readonly ApiProxy[], req: IncomingMessage): ApiProxy | undefined {
  const path = originForm(req.url as string);
  if (path === undefined) return undefined;
  for (const proxy of proxies) {
    if (proxy.matches(path)) {
      req.url = path;
      return proxy;
    }
  }
  return undefined;
}

/** `http://host/path?query` -> `/path?query` (and `http://host?query` -> `/?query`); undefined for any other form. */
export function originForm(url: string): string | undefined {
  const authority = ABSOLUTE_FORM.exec(url);
  if (authority === null) return undefined;
  const rest = url.slice(authority[0].length);
  return rest === '' || rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest;
}

/** The scheme and authority of an absolute-form target: what comes before its path. */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;
