import { describe, expect, it } from 'vitest';
import { targetPath } from '../../src/proxy/target-path.js';

describe('the upstream path of a proxied request', () => {
  it.each([
    ['', '/items?limit=5', '/items?limit=5'],
    ['/v1', '/items/7', '/v1/items/7'],
    // The mount itself is the base path; the mount with a slash, the base path with its slash (an upstream that
    // tells the two apart, as one that adds the slash by a redirect does, gets each).
    ['/v1', '', '/v1'],
    ['/v1', '?page=2', '/v1?page=2'],
    ['/v1', '/', '/v1/'],
    ['/v1', '/?page=2', '/v1/?page=2'],
    ['', '', '/'],
    ['', '?page=2', '/?page=2'],
    ['', '/', '/'],
    // A backslash in the query is data (browsers send it as it is); in the path it is refused below.
    ['/v1', '/search?path=C:\\Users\\me', '/v1/search?path=C:\\Users\\me'],
    ['/v1', '/a%20b?q=%22x%22', '/v1/a%20b?q=%22x%22'],
    ['/v1', '/files/report.v2.json', '/v1/files/report.v2.json'],
  ])('joins base %j and %j into %j', (basePath, url, expected) => {
    expect(targetPath(basePath, url)).toBe(expected);
  });

  it.each([
    '/../admin', '/a/../../admin', '/%2e%2e/admin', '/%2E%2E/admin', '/.%2e/admin', '/./x', '/a%2fb', '/a%2Fb', '/a%5cb',
    '/..;/admin', '/a/..;/b', '/a\\b', '/a%00b', '/a%0d%0aX-Injected:1', '/a\r\nX: 1', '/a b', '//evil.example/x', '/x?q=%0d%0aX:1', 'http://evil.example/', '/a%252fb',
    // A fragment is dropped by the upstream before it resolves dot segments: `/v1/..#x` is `/`.
    '/..#x', '/a/..#/b', '/%2e%2e#', '/.#', '/items#top', '/x?q=1#/../..',
    // The mount itself, with a query that could split the request line.
    '?q=%0d%0aX:1', '?q=a b', '?q=#x', 'x', '\\x',
  ])('refuses %j', (url) => {
    expect(targetPath('/v1', url)).toBeUndefined();
  });

  // targetPath skips its encoded and dot-segment checks for a URL with no `%` (and, for the dot segments, no `.` in
  // its path). This reference runs every check on every URL: the two must agree on all of them.
  it('refuses exactly what running every check refuses, over 50,000 generated URLs', () => {
    const reference = (basePath: string, url: string): string | undefined => {
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const query = q < 0 ? '' : url.slice(q);
      if (path.length === 0 || path[0] !== '/') return undefined;
      if (/[\u0000-\u0020\u007f#]/.test(url) || path.includes('\\')) return undefined;
      if (/%(2f|5c|0[0-9a-f]|1[0-9a-f]|7f|25)/i.test(path) || /%(0[0-9a-f]|1[0-9a-f]|7f)/i.test(query)) return undefined;
      if (/\/(?:\.|%2e){1,2}(?:\/|;|$)/i.test(path)) return undefined;
      if (path.startsWith('//')) return undefined;
      return `${basePath}${path}${query}`;
    };
    // Pieces that make every check fire somewhere, and plain ones that make none.
    const pieces = ['/', '/', '.', '..', '%', '%2e', '%2E', '%2f', '%5C', '%0a', '%25', '%7f', '%20', ';', '?', '#', 'a', 'items', 'v2.json', '\\', ' ', '=', '&'];
    let seed = 17;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    let refused = 0;
    for (let i = 0; i < 50_000; i++) {
      let url = '/';
      for (let k = next(7); k > 0; k--) url += pieces[next(pieces.length)];
      const expected = reference('/v1', url);
      if (expected === undefined) refused++;
      expect(targetPath('/v1', url), url).toBe(expected);
    }
    // Both kinds of answer were checked, each many times.
    expect(refused).toBeGreaterThan(5_000);
    expect(refused).toBeLessThan(45_000);
  });
});
