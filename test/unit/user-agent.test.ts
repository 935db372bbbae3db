import { describe, expect, it } from 'vitest';
import { shortUserAgent } from '../../src/session/user-agent.js';

describe('the short user-agent of a session list', () => {
  it.each([
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87', 'Edge 126 on Windows'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36', 'Chrome 126 on macOS'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15', 'Safari 17 on macOS'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', 'Safari 17 on iOS'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1', 'Chrome 126 on iOS'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36', 'Chrome 126 on Android'],
    ['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'Firefox 128 on Linux'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0', 'Opera 111 on Windows'],
    ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/139.0.0.0 Safari/537.36', 'Headless Chrome 139 on Linux'],
  ])('describes %s as %s', (header, expected) => {
    expect(shortUserAgent(header)).toBe(expected);
  });

  it('keeps the first printable characters of a header that names no known browser, and nothing without one', () => {
    expect(shortUserAgent('curl/8.5.0')).toBe('curl/8.5.0');
    expect(shortUserAgent(`bot\u0000\u001b[31m${'x'.repeat(100)}`)).toBe(`bot [31m${'x'.repeat(40)}`);
    expect(shortUserAgent('   ')).toBeUndefined();
    // A label, whatever the header: a version is a few digits, and the label never longer than 48 characters.
    expect(shortUserAgent(`Mozilla/5.0 (Windows NT 10.0) Chrome/${'9'.repeat(8_000)}`)).toBe('Chrome 999999 on Windows');
    expect(shortUserAgent(`Mozilla/5.0 (X11; Linux) Version/${'1'.repeat(16_000)}`)?.length).toBeLessThanOrEqual(48);
    expect(shortUserAgent(undefined)).toBeUndefined();
  });
});
