import { describe, expect, it } from 'vitest';
import { originForm } from '../../src/proxy/absolute-form.js';

describe('the origin form of an absolute-form request target', () => {
  it.each([
    ['http://bff.example/api/items?page=2', '/api/items?page=2'],
    ['https://bff.example:8443/api', '/api'],
    ['HTTP://BFF.EXAMPLE/Api/Items', '/Api/Items'],
    ['http://bff.example', '/'],
    ['http://bff.example?page=2', '/?page=2'],
    ['http://user@bff.example/api/x', '/api/x'],
    ['http://[::1]:3000/api/x', '/api/x'],
  ])('%s -> %s', (target, expected) => {
    expect(originForm(target)).toBe(expected);
  });

  it.each(['/api/items', '*', 'bff.example:443', 'ftp://bff.example/api', 'http:/bff.example/api', ''])('is none for %j', (target) => {
    expect(originForm(target)).toBeUndefined();
  });
});
