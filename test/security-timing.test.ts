/**
 * A16 (timing attack on the MAC comparison): the comparison must be `crypto.timingSafeEqual` over
 * fixed-length decoded values. No wall-clock assertion: the comparator is spied on instead.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';

const calls = vi.hoisted(() => [] as Array<[number, number]>);
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  const timingSafeEqual = (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
    calls.push([a.byteLength, b.byteLength]);
    return real.timingSafeEqual(a, b);
  };
  return { ...real, default: { ...real, timingSafeEqual }, timingSafeEqual };
});

const { createSessions } = await import('../src/index.js');
const { MemoryStore } = await import('../src/stores/memory/index.js');
const { issueCsrfToken, verifyCsrfToken } = await import('../src/auth/index.js');

const SECRET = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';

describe('A16 timing attack on MAC comparison', () => {
  it('session MACs are compared with timingSafeEqual over 32-byte values, first-byte and last-byte guesses alike', async () => {
    const store = new MemoryStore({ sweepInterval: 0 });
    const sessions = createSessions({ secret: [SECRET, 'Gm3Qx8Vb2Nc7Lr5Tz9Wd1Hk4Jp6Fs0Yq'], store });
    const id = randomBytes(32).toString('base64url');
    const mac = randomBytes(32).toString('base64url');
    for (const guess of [`A${mac.slice(1)}`, `${mac.slice(0, 42)}A`]) {
      calls.length = 0;
      const state = await sessions.load({ cookie: `__Host-sid=v1.${id}.${guess}`, secure: true });
      expect(state.isNew).toBe(true);
      // One comparison per key of the ring, every key tried, each over 32 bytes.
      expect(calls).toEqual([
        [32, 32],
        [32, 32],
      ]);
    }
  });

  it('CSRF tokens are compared with timingSafeEqual over the 32-byte secret', async () => {
    const store = new MemoryStore({ sweepInterval: 0 });
    const sessions = createSessions({ secret: SECRET, store });
    const state = await sessions.load({ secure: true });
    const token = issueCsrfToken(state);
    calls.length = 0;
    expect(verifyCsrfToken(state, token)).toBe(true);
    expect(verifyCsrfToken(state, `${token.slice(0, 60)}${token[60] === 'A' ? 'B' : 'A'}${token.slice(61)}`)).toBe(false);
    expect(calls).toEqual([
      [32, 32],
      [32, 32],
    ]);
    // Malformed or non-canonical tokens are refused by format before any comparison.
    calls.length = 0;
    expect(verifyCsrfToken(state, 'short')).toBe(false);
    const last = token[85] as string;
    const alt = 'AEIMQUYcgkosw048'.includes(last) ? String.fromCharCode(last.charCodeAt(0) + 1) : last;
    if (alt !== last) expect(verifyCsrfToken(state, `${token.slice(0, 85)}${alt}`)).toBe(false);
    expect(calls).toEqual([]);
  });
});
