import { describe, expect, it } from 'vitest';
import { targetPath } from '../../src/proxy/target-path.js';

describe('the upstream path of a proxied request', () => {
  it.each([
    ['', '/items?limit=5', '/items?limit=5'],
    ['/v1', '/items/7', '/v1/items/7'],
    ['/v1', '/', '/v1'],
    ['', '/', '/'],
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
  ])('refuses %j', (url) => {
    expect(targetPath('/v1', url)).toBeUndefined();
  });
});
