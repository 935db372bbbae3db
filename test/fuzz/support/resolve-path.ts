/**
 * How real HTTP servers turn a request target into the path they route, so a test upstream can tell whether a
 * request left its base path. Each model drops the fragment and the query first, as every server does; they
 * differ in what they decode and when.
 */
export const SERVER_MODELS = {
  /** Node's URL, Deno, Bun, and frameworks on top of them: WHATWG parsing (`\` is `/`, `%2e` is a dot). */
  whatwg: (target: string): string => new URL(target, 'http://upstream.invalid').pathname,
  /** nginx, and servers that decode the whole path before normalising it: `%2f` becomes a separator too. */
  decodeThenNormalise: (target: string): string => normalise(decodeBytes(pathOf(target)).split('/')),
  /** Tomcat, Jetty: `;parameters` cut from each segment, each segment decoded, then dot segments resolved. */
  servletContainer: (target: string): string => normalise(pathOf(target).split('/').map((s) => decodeBytes(s.split(';')[0] ?? ''))),
  /** IIS and other servers on Windows file systems: `\` (also encoded) is a separator. */
  backslashAsSlash: (target: string): string => normalise(decodeBytes(pathOf(target)).split(/[/\\]/)),
} as const;

export type ServerModel = keyof typeof SERVER_MODELS;

/** Each model's reading of `target` that falls outside `basePath` (`/v1` takes `/v1` and `/v1/...`). */
export function outsideBasePath(target: string, basePath: string): Array<{ model: ServerModel; path: string }> {
  const outside: Array<{ model: ServerModel; path: string }> = [];
  for (const model of Object.keys(SERVER_MODELS) as ServerModel[]) {
    let path: string;
    try {
      path = SERVER_MODELS[model](target);
    } catch {
      // A server that cannot parse the target answers 400: nothing is reached.
      continue;
    }
    if (path !== basePath && !path.startsWith(`${basePath}/`)) outside.push({ model, path });
  }
  return outside;
}

/** The path part: before the first `#` (the fragment is never the server's), then before the first `?`. */
function pathOf(target: string): string {
  const hash = target.indexOf('#');
  const noFragment = hash < 0 ? target : target.slice(0, hash);
  const query = noFragment.indexOf('?');
  return query < 0 ? noFragment : noFragment.slice(0, query);
}

/** Percent-decoding byte by byte (as latin1, so that nothing is lost); a malformed escape stays as it is. */
function decodeBytes(text: string): string {
  return text.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** RFC 3986 5.2.4: resolves `.` and `..` segments. */
function normalise(segments: string[]): string {
  const out: string[] = [];
  // segments[0] is what came before the first `/`: empty for an origin-form target.
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    const last = i === segments.length - 1;
    if (segment === '.') {
      if (last) out.push('');
    } else if (segment === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(segment);
    }
  }
  return `/${out.join('/')}`;
}
