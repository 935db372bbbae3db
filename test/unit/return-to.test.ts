import { describe, expect, it } from 'vitest';
import { safeReturnTo } from '../../src/routes/return-to.js';

const base = new URL('https://app.example.com');

describe('returnTo', () => {
  it.each(['/', '/dashboard', '/a/b?x=1#frag', '/caf%C3%A9'])('accepts the same-origin path %s', (path) => {
    expect(safeReturnTo(path, ['/'], base)).toBe(path);
  });

  it.each([
    'https://evil.example', '//evil.example', '/\\evil.example', '\\\\evil.example', '/%2F%2Fevil.example', '%2F%2Fevil.example',
    '/%5Cevil.example', '/%252F%252Fevil.example', 'javascript:alert(1)', '/\tevil', '/x\r\nSet-Cookie: a=b', '', 'relative',
    '/%E0%A4%A', 'https:evil.example', '/.//evil.example', '/a/../..//evil.example', '/%2e//evil.example', '/./\\evil.example',
    // An encoded `//` that dot segments bring to the front, or encoded more times than a few rounds undo.
    '/%2e%2e/%2Fevil.example', '/.%2e/%2fevil.example', '/%2525252F%2525252Fevil.example',
  ])('refuses %j', (path) => {
    expect(safeReturnTo(path, ['/'], base)).toBeUndefined();
  });

  it('keeps to the allowed prefixes', () => {
    expect(safeReturnTo('/app/page', ['/app'], base)).toBe('/app/page');
    expect(safeReturnTo('/app', ['/app'], base)).toBe('/app');
    expect(safeReturnTo('/application', ['/app'], base)).toBeUndefined();
    expect(safeReturnTo('/other', ['/app'], base)).toBeUndefined();
  });
});
