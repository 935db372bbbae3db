import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createFieldCipher, parseEncryptionKeys, plainCipher } from '../../src/session/encryption.js';
import { decodeRecord, encodeUpdate } from '../../src/session/record.js';

describe('token encryption at rest', () => {
  const [k1, k2] = [randomBytes(32).toString('hex'), randomBytes(32).toString('base64')];

  it('hides the value and gives it back', () => {
    const cipher = createFieldCipher(parseEncryptionKeys([k1], 'keys'));
    const sealed = cipher.encrypt('ORT-secret-value');
    expect(sealed).not.toContain('ORT-secret-value');
    expect(cipher.encrypt('ORT-secret-value')).not.toBe(sealed);
    expect(cipher.decrypt(sealed)).toBe('ORT-secret-value');
  });

  it('digests a value the same way every time, apart from other values, and keyed once encryption is on', () => {
    const cipher = createFieldCipher(parseEncryptionKeys([k1], 'keys'));
    expect(cipher.digest('AT-1')).toBe(createFieldCipher(parseEncryptionKeys([k1], 'keys')).digest('AT-1'));
    expect(cipher.digest('AT-1')).not.toBe(cipher.digest('AT-2'));
    expect(cipher.digest('AT-1')).toMatch(/^[\w-]{22}$/);
    expect(plainCipher.digest('AT-1')).toMatch(/^[\w-]{22}$/);
    // Someone who reads the store and holds a candidate token cannot tell whether it is the one without the key.
    expect(cipher.digest('AT-1')).not.toBe(plainCipher.digest('AT-1'));
    expect(plainCipher.isDigestOf(cipher.digest('AT-1'), 'AT-1')).toBe(false);
  });

  it('recognises digests made under any configured key, or none: instances in the middle of a rotation, or of turning encryption on', () => {
    const before = createFieldCipher(parseEncryptionKeys([k1], 'keys'));
    const rotating = createFieldCipher(parseEncryptionKeys([k2, k1], 'keys'));
    expect(rotating.digest('AT-1')).not.toBe(before.digest('AT-1'));
    expect(rotating.isDigestOf(before.digest('AT-1'), 'AT-1')).toBe(true);
    expect(before.isDigestOf(rotating.digest('AT-1'), 'AT-1')).toBe(false);
    expect(createFieldCipher(parseEncryptionKeys([k1, k2], 'keys')).isDigestOf(rotating.digest('AT-1'), 'AT-1')).toBe(true);
    expect(rotating.isDigestOf(plainCipher.digest('AT-1'), 'AT-1')).toBe(true);
    expect(rotating.isDigestOf(rotating.digest('AT-1'), 'AT-2')).toBe(false);
    expect(plainCipher.isDigestOf(plainCipher.digest('AT-1'), 'AT-1')).toBe(true);
    // As a record read by an instance with the keys rotated finds the mark an instance with the old key made.
    const API = 'https://api.example.test';
    const marked = encodeUpdate({ audience: API, accessToken: { token: 'AT-1', expiresAt: 2, refreshAt: 1, scope: undefined }, idleExpiresAt: 3, forcedAt: 5 }, before);
    expect(decodeRecord({ sub: 'auth0|alice', abs: '9', ...marked }, rotating)?.forced).toEqual(new Map([[API, 5]]));
  });

  it('still decrypts with an older key after rotation, and encrypts with the newest', () => {
    const before = createFieldCipher(parseEncryptionKeys([k1], 'keys'));
    const after = createFieldCipher(parseEncryptionKeys([k2, k1], 'keys'));
    const old = before.encrypt('token');
    expect(after.decrypt(old)).toBe('token');
    // A key no longer configured: the token cannot be read, which is as good as none (the session ends at its next
    // exchange), never a failure of every request.
    expect(before.decrypt(after.encrypt('token'))).toBeUndefined();
  });

  it('reads nothing from a tampered ciphertext', () => {
    const cipher = createFieldCipher(parseEncryptionKeys([k1], 'keys'));
    const sealed = cipher.encrypt('token');
    const tampered = sealed.slice(0, -3) + (sealed.endsWith('A') ? 'BBB' : 'AAA');
    expect(cipher.decrypt(tampered)).toBeUndefined();
  });

  it('never takes a value encrypted while keys were configured for a token once encryption is turned off', () => {
    const sealed = createFieldCipher(parseEncryptionKeys([k1], 'keys')).encrypt('token');
    expect(plainCipher.decrypt(sealed)).toBeUndefined();
    expect(plainCipher.decrypt('eyJhbGciOi.plain.jwt')).toBe('eyJhbGciOi.plain.jwt');
  });

  it('reads values stored before encryption was turned on', () => {
    expect(createFieldCipher(parseEncryptionKeys([k1], 'keys')).decrypt('eyJhbGciOi.plain.jwt')).toBe('eyJhbGciOi.plain.jwt');
  });
});
