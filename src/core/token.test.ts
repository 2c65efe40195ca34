import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyRing } from '../crypto/index.js';
import { signToken, storeKeyOf, verifyToken } from './token.js';

const ring = keyRing(['tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5Aq'], 'session-mac');
const other = keyRing(['Gm3Qx8Vb2Nc7Lr5Tz9Wd1Hk4Jp6Fs0Yq'], 'session-mac');
const newId = () => randomBytes(32).toString('base64url');

describe('session token', () => {
  it('round-trips and names the key that verified', () => {
    const id = newId();
    expect(verifyToken(ring, signToken(ring, id))).toEqual({ ok: true, id, keyIndex: 0 });
    const rotated = keyRing(['Zx9Cv8Bn7Mm6Ll5Kk4Jj3Hh2Gg1Ff0Dd', 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5Aq'], 'session-mac');
    expect(verifyToken(rotated, signToken(ring, id))).toEqual({ ok: true, id, keyIndex: 1 });
  });

  it('rejects a token signed for another purpose or with another key', () => {
    const id = newId();
    const csrfRing = keyRing(['tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5Aq'], 'csrf');
    expect(verifyToken(ring, signToken(csrfRing, id)).ok).toBe(false);
    expect(verifyToken(ring, signToken(other, id)).ok).toBe(false);
  });

  it('rejects any single-character change anywhere in the token', () => {
    const token = signToken(ring, newId());
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!= %';
    fc.assert(
      fc.property(fc.nat(token.length - 1), fc.constantFrom(...alphabet.split('')), (pos, ch) => {
        fc.pre(token[pos] !== ch);
        const mutated = token.slice(0, pos) + ch + token.slice(pos + 1);
        expect(verifyToken(ring, mutated).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects truncation, extension and non-canonical spellings before any MAC work (A11, A13)', () => {
    const id = newId();
    const token = signToken(ring, id);
    const [, , mac] = token.split('.') as [string, string, string];
    const cases = [
      token.slice(0, -1),
      `${token}x`,
      `${token}.x`,
      `v1.${id}`,
      `v1.${id}.`,
      `${token}=`,
      token.replace(/-/g, '+').replace(/_/g, '/'),
      `v1.${id.slice(0, 10)}!${id.slice(10)}.${mac}`,
      `V1.${id}.${mac}`,
      ` ${token}`,
      `"${token}"`,
    ];
    for (const c of cases) if (c !== token) expect(verifyToken(ring, c).ok, c).toBe(false);
    expect(verifyToken(ring, 'x'.repeat(10_000))).toEqual({ ok: false, reason: 'malformed_cookie' });
  });

  it('accepts only the canonical spelling of the MAC (the last character has 2 spare bits)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let n = 0; n < 20; n++) {
      const token = signToken(ring, newId());
      const accepted = [...alphabet].filter((ch) => verifyToken(ring, token.slice(0, -1) + ch).ok);
      expect(accepted).toEqual([token[token.length - 1]]);
    }
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const r = verifyToken(ring, s);
        expect(r.ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('stores sessions under a hash, never under the ID', () => {
    const id = newId();
    const key = storeKeyOf(id);
    expect(key).toMatch(/^[\w-]{43}$/);
    expect(key).not.toContain(id);
    expect(storeKeyOf(id)).toBe(key);
    expect(storeKeyOf(newId())).not.toBe(key);
  });
});
