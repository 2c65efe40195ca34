import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aeadRing, openSealed, SEAL_VERSION, seal, sealedLength } from './aead.js';

const A = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';
const B = 'Gm3Qx8Vb2Nc7Lr5Tz9Wd1Hk4Jp6Fs0Y';
const ctx = ['app', '__Host-sid'] as const;
const ring = aeadRing([A], 'session');

/** Flip bit `bit` of byte `i` of a buffer, returning a copy. */
function flip(bytes: Buffer, i: number, bit: number): Buffer {
  const out = Buffer.from(bytes);
  out[i] = (out[i] as number) ^ (1 << bit);
  return out;
}

/** Re-encode the parts of a sealed token with `mutate` applied to the raw bytes of kid|nonce|body. */
function mutateBytes(token: string, mutate: (raw: Buffer) => Buffer): string {
  const [v, kid, nonce, body] = token.split('.') as [string, string, string, string];
  const parts = [kid, nonce, body].map((p) => Buffer.from(p, 'base64url'));
  const lengths = parts.map((p) => p.length);
  const raw = mutate(Buffer.concat(parts));
  const k = raw.subarray(0, lengths[0]);
  const n = raw.subarray(lengths[0], (lengths[0] as number) + (lengths[1] as number));
  const b = raw.subarray((lengths[0] as number) + (lengths[1] as number));
  return [v, k.toString('base64url'), n.toString('base64url'), b.toString('base64url')].join('.');
}

describe('AES-256-GCM sealing', () => {
  it('round-trips and has the documented shape and length', () => {
    for (const text of ['', 'a', 'hello world', 'é'.repeat(100), 'x'.repeat(3000)]) {
      const t = seal(ring, text, ctx);
      expect(t).toMatch(/^s1\.[\w-]{8}\.[\w-]{16}\.[\w-]{22,}$/);
      expect(t.length).toBe(sealedLength(Buffer.byteLength(text)));
      const r = openSealed(ring, t, ctx);
      expect(r.ok && r.plaintext.toString()).toBe(text);
    }
    expect(SEAL_VERSION).toBe('s1');
  });

  it('uses a fresh random nonce per seal (same plaintext, different ciphertexts)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(seal(ring, 'same', ctx).split('.')[2] as string);
    expect(seen.size).toBe(200);
  });

  it('refuses a random source that returns the wrong nonce length', () => {
    expect(() => seal(ring, 'x', ctx, () => new Uint8Array(8))).toThrow(/12 bytes/);
  });

  it('binds purpose, app ID and cookie name (A43, A44)', () => {
    const t = seal(ring, 'payload', ctx);
    expect(openSealed(aeadRing([A], 'csrf'), t, ctx)).toEqual({ ok: false, reason: 'unknown_key' });
    expect(openSealed(ring, t, ['other-app', '__Host-sid'])).toEqual({ ok: false, reason: 'auth_failed' });
    expect(openSealed(ring, t, ['app', '__Host-other'])).toEqual({ ok: false, reason: 'auth_failed' });
    expect(openSealed(ring, t, ['app'])).toEqual({ ok: false, reason: 'auth_failed' });
    // Context strings cannot be shifted between fields.
    expect(openSealed(ring, seal(ring, 'p', ['a|b', 'c']), ['a', 'b|c']).ok).toBe(false);
  });

  it('derives different keys per purpose, so a kid swapped in cannot make another purpose open', () => {
    const csrf = aeadRing([A], 'csrf');
    expect(csrf.keys[0]?.id).not.toBe(ring.keys[0]?.id);
    const t = seal(csrf, 'token', ctx);
    const swapped = t.replace(`.${csrf.keys[0]?.id}.`, `.${ring.keys[0]?.id}.`);
    expect(openSealed(ring, swapped, ctx)).toEqual({ ok: false, reason: 'auth_failed' });
  });

  it('key ring: the first key seals, every key opens, the key index is reported', () => {
    const oldRing = aeadRing([B], 'session');
    const rotated = aeadRing([A, B], 'session');
    const old = seal(oldRing, 'old', ctx);
    const r = openSealed(rotated, old, ctx);
    expect(r.ok && r.keyIndex).toBe(1);
    const fresh = seal(rotated, 'new', ctx);
    expect(fresh.split('.')[1]).toBe(ring.keys[0]?.id);
    expect(openSealed(ring, fresh, ctx).ok).toBe(true);
    // Removing the old key is the "log everyone out" switch.
    expect(openSealed(ring, old, ctx)).toEqual({ ok: false, reason: 'unknown_key' });
  });

  it('a valid ciphertext with its key ID swapped to another ring key fails authentication', () => {
    const both = aeadRing([A, B], 'session');
    const t = seal(both, 'x', ctx);
    const swapped = t.replace(`.${both.keys[0]?.id}.`, `.${both.keys[1]?.id}.`);
    expect(openSealed(both, swapped, ctx)).toEqual({ ok: false, reason: 'auth_failed' });
  });

  it('rejects every malformed shape before decoding', () => {
    const t = seal(ring, '{"a":1}', ctx);
    const [, kid, nonce, body] = t.split('.') as [string, string, string, string];
    const bad = [
      '',
      's1',
      `s2.${kid}.${nonce}.${body}`,
      `S1.${kid}.${nonce}.${body}`,
      `v1.${kid}.${nonce}.${body}`,
      `s1.${kid}.${nonce}.`,
      `s1.${kid}.${nonce}`,
      `s1.${kid}.${nonce.slice(1)}.${body}`,
      `s1.${kid}.${nonce}AAAA.${body}`,
      `s1.${kid}x.${nonce}.${body}`,
      `s1.${kid}.${nonce}.${body}=`,
      `s1.${kid}.${nonce}.${body.replace(/[-_]/g, '+')}A`,
      `s1.${kid}.${nonce}.${body.slice(0, 10)}!${body.slice(10)}`,
      `s1.${kid}.${nonce}.${body} `,
      `s1.${kid}.${nonce}.${body}.extra`,
      `s1.${kid}.${nonce}.${'A'.repeat(21)}`,
      `${t}\n`,
      'x'.repeat(20_000),
    ];
    for (const v of bad) expect(openSealed(ring, v, ctx).ok, v.slice(0, 80)).toBe(false);
    for (const v of [undefined, null, 42, {}, ['s1']]) expect(openSealed(ring, v, ctx)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('rejects non-canonical base64url spellings of the same bytes (last-character padding bits)', () => {
    // Find a body whose last character carries unused bits, then set them.
    for (let i = 0; i < 50; i++) {
      const t = seal(ring, 'x'.repeat(i), ctx);
      const body = t.split('.')[3] as string;
      if (body.length % 4 === 0) continue;
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const last = alphabet.indexOf(body.at(-1) as string);
      const spare = body.length % 4 === 2 ? 0b1111 : 0b11;
      const alt = `${body.slice(0, -1)}${alphabet[last ^ 1] as string}`;
      expect(spare & 1).toBe(1);
      expect(Buffer.from(alt, 'base64url').equals(Buffer.from(body, 'base64url'))).toBe(true);
      expect(openSealed(ring, t.replace(body, alt), ctx)).toEqual({ ok: false, reason: 'malformed' });
      return;
    }
    throw new Error('no body with spare bits found');
  });

  it('a bit flip at EVERY bit of kid, nonce, ciphertext and tag is rejected (exhaustive)', () => {
    const t = seal(ring, JSON.stringify({ sid: 'x'.repeat(43), role: 'user', n: 1 }), ctx);
    const total = Buffer.concat((t.split('.').slice(1) as string[]).map((p) => Buffer.from(p, 'base64url'))).length;
    let checked = 0;
    for (let i = 0; i < total; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = mutateBytes(t, (raw) => flip(raw, i, bit));
        expect(openSealed(ring, flipped, ctx).ok).toBe(false);
        checked++;
      }
    }
    expect(checked).toBe(total * 8);
  });

  it('a bit flip at EVERY bit of EVERY character of the token is rejected (exhaustive)', () => {
    const t = seal(ring, 'role=admin', ctx);
    for (let i = 0; i < t.length; i++) {
      for (let bit = 0; bit < 7; bit++) {
        const c = String.fromCharCode(t.charCodeAt(i) ^ (1 << bit));
        const v = t.slice(0, i) + c + t.slice(i + 1);
        expect(openSealed(ring, v, ctx).ok, `char ${i} bit ${bit}`).toBe(false);
      }
    }
  });

  it('truncation at every length and appended data are rejected', () => {
    const t = seal(ring, 'some session payload', ctx);
    for (let n = 0; n < t.length; n++) expect(openSealed(ring, t.slice(0, n), ctx).ok).toBe(false);
    for (const extra of ['A', 'AA', 'AAAA', '-_', '.', 'x'.repeat(100)]) expect(openSealed(ring, t + extra, ctx).ok).toBe(false);
  });

  it('property: any change to a sealed value is rejected; the original always opens', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (plain, pos, bit) => {
        const t = seal(ring, plain, ctx);
        const opened = openSealed(ring, t, ctx);
        if (!opened.ok || !opened.plaintext.equals(Buffer.from(plain))) return false;
        const flipped = mutateBytes(t, (raw) => flip(raw, pos % raw.length, bit));
        return !openSealed(ring, flipped, ctx).ok;
      }),
      { numRuns: 500 },
    );
  });

  it('property: arbitrary strings never throw and never open', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const r = openSealed(ring, s, ctx);
        return r.ok === false;
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.stringMatching(/^s1\.[\w-]{8}\.[\w-]{16}\.[\w-]{22,80}$/), (s) => !openSealed(ring, s, ctx).ok),
      { numRuns: 500 },
    );
  });

  it('validates the purpose name', () => {
    expect(() => aeadRing([A], 'Bad Purpose')).toThrow(TypeError);
    expect(() => aeadRing([], 'session')).toThrow(TypeError);
  });
});
