import { createHash, createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hmac, keyRing, randomId, sha256, verifyHmac } from './index.js';

const ring = keyRing(['first-secret-0123456789abcdef0123', 'second-secret-0123456789abcdef012'], 'test');

describe('sha256', () => {
  it('equals a SHA-256 Hash object digest in base64url, for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => {
        expect(sha256(s)).toBe(createHash('sha256').update(s).digest('base64url'));
      }),
    );
  });
});

describe('verifyHmac', () => {
  it('accepts the tag of every key of the ring and reports which key verified', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (msg) => {
        expect(verifyHmac(ring, msg, hmac(ring.keys[0] as Buffer, msg))).toBe(0);
        expect(verifyHmac(ring, msg, hmac(ring.keys[1] as Buffer, msg))).toBe(1);
        expect(verifyHmac(ring, `${msg}x`, hmac(ring.keys[0] as Buffer, msg))).toBe(-1);
      }),
    );
  });

  it('accepts only the canonical spelling of a tag (the 2 spare bits of the last character are zero)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    fc.assert(
      fc.property(fc.string({ maxLength: 50 }), fc.integer({ min: 1, max: 3 }), (msg, spare) => {
        const tag = hmac(ring.keys[0] as Buffer, msg);
        const last = alphabet.indexOf(tag[42] as string);
        expect(last % 4).toBe(0);
        // Same 32 bytes once decoded, different text: must be refused.
        const other = tag.slice(0, 42) + alphabet[last + spare];
        expect(Buffer.from(other, 'base64url').equals(Buffer.from(tag, 'base64url'))).toBe(true);
        expect(verifyHmac(ring, msg, other)).toBe(-1);
      }),
    );
  });

  it('refuses tags of the wrong length or with characters outside base64url', () => {
    const tag = hmac(ring.keys[0] as Buffer, 'm');
    for (const bad of ['', tag.slice(0, 42), `${tag}A`, `${tag.slice(0, 41)}+${tag[42]}`, `${tag.slice(0, 41)}=${tag[42]}`]) {
      expect(verifyHmac(ring, 'm', bad)).toBe(-1);
    }
  });

  it('agrees with createHmac for any key and message', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.oneof(fc.string({ maxLength: 80 }), fc.string({ minLength: 340, maxLength: 400 })),
        (key, msg) => {
          const k = Buffer.from(key);
          const tag = createHmac('sha256', k).update(msg).digest('base64url');
          expect(hmac(k, msg)).toBe(tag);
          expect(verifyHmac({ keys: [k] }, msg, tag)).toBe(0);
        },
      ),
    );
  });
});

describe('hmac (one-shot RFC 2104 over crypto.hash)', () => {
  it('equals createHmac for keys of any length and any message, short or past the one-shot limit', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            key: fc.uint8Array({ minLength: 0, maxLength: 150 }),
            msg: fc.oneof(fc.string({ unit: 'grapheme', maxLength: 60 }), fc.string({ unit: 'binary', minLength: 300, maxLength: 420 })),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        (calls) => {
          // Several keys and lengths in a row: the shared scratch buffers and cached views must not
          // leak one call's key or message into the next.
          for (const { key, msg } of calls) {
            const k = Buffer.from(key);
            expect(hmac(k, msg)).toBe(createHmac('sha256', k).update(msg).digest('base64url'));
          }
        },
      ),
    );
  });
});

describe('randomId', () => {
  it('gives distinct 32-byte base64url IDs across several refills of the pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = randomId();
      expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(32);
      seen.add(id);
    }
    expect(seen.size).toBe(1000);
  });

  it('serves other sizes, larger than the pool included', () => {
    expect(Buffer.from(randomId(undefined, 16), 'base64url')).toHaveLength(16);
    expect(Buffer.from(randomId(undefined, 5000), 'base64url')).toHaveLength(5000);
  });

  it('uses an injected random source as is, and checks what it returns', () => {
    const bytes = randomBytes(32);
    expect(randomId(() => bytes)).toBe(bytes.toString('base64url'));
    expect(() => randomId(() => new Uint8Array(8))).toThrow(TypeError);
  });
});
