import { describe, expect, it } from 'vitest';
import { OptionsError } from './errors.js';
import { resolveOptions, type SessionOptions } from './options.js';

const secret = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5Aq';

function rejects(options: Partial<SessionOptions> & Record<string, unknown>, message: RegExp) {
  expect(() => resolveOptions(options as SessionOptions)).toThrow(OptionsError);
  expect(() => resolveOptions(options as SessionOptions)).toThrow(message);
}

describe('resolveOptions', () => {
  it('fills in the secure defaults', () => {
    const o = resolveOptions({ secret });
    expect(o.cookie).toEqual({
      name: '__Host-sid',
      path: '/',
      domain: undefined,
      secure: true,
      httpOnly: true,
      sameSite: 'lax',
      partitioned: false,
      priority: undefined,
    });
    expect(o.idleTimeout).toBe(30 * 60_000);
    expect(o.absoluteTimeout).toBe(12 * 3_600_000);
    expect(o.touchAfter).toBe(60_000);
    expect(o.saveUninitialized).toBe(false);
    expect(o.rolling).toBe(false);
  });

  it('refuses missing, short, placeholder and low-entropy secrets (A49)', () => {
    rejects({}, /`secret` is required/);
    rejects({ secret: '' }, /required/);
    rejects({ secret: [] }, /empty array/);
    rejects({ secret: 'short' }, /at least 32/);
    rejects({ secret: 'keyboard cat keyboard cat keyboard cat' }, /placeholder/);
    rejects({ secret: 'changeme-changeme-changeme-changeme' }, /placeholder/);
    rejects({ secret: 'a'.repeat(40) }, /placeholder/);
    rejects({ secret: [secret, 'short'] }, /secret\[1\]/);
    rejects({ secret: 42 as unknown as string }, /must be a string/);
  });

  it('validates every duration as finite and positive, and forbids an infinite lifetime', () => {
    rejects({ secret, idleTimeout: -1 }, /idleTimeout/);
    rejects({ secret, idleTimeout: Number.NaN }, /idleTimeout/);
    rejects({ secret, absoluteTimeout: Number.POSITIVE_INFINITY }, /finite/);
    rejects({ secret, absoluteTimeout: '1h' as unknown as number }, /absoluteTimeout/);
    rejects({ secret, idleTimeout: 10_000, absoluteTimeout: 5_000 }, /longer than/);
    rejects({ secret, idleTimeout: 60_000, touchAfter: 60_000 }, /touchAfter/);
    rejects({ secret, storeTimeout: 0 }, /storeTimeout/);
    rejects({ secret, preset: 'paranoid' as 'high' }, /preset/);
    expect(resolveOptions({ secret, preset: 'low' }).idleTimeout).toBe(false);
    expect(resolveOptions({ secret, preset: 'high' }).idleTimeout).toBe(15 * 60_000);
  });

  it('enforces cookie grammar and prefix rules at startup (A38)', () => {
    rejects({ secret, cookie: { name: 'sid; Domain=evil' } }, /cookie name/);
    rejects({ secret, cookie: { domain: 'example.com' } }, /__Host-/);
    rejects({ secret, cookie: { name: 'sid', domain: 'example.com; HttpOnly=false' } }, /domain/);
    rejects({ secret, cookie: { name: 'sid', path: '/\r\nX-Evil: 1' } }, /path/);
    rejects({ secret, cookie: { sameSite: 'Lax; Secure=false' as 'lax' } }, /sameSite/);
    rejects({ secret, cookie: { secure: false } }, /insecureDevMode/);
    expect(resolveOptions({ secret, cookie: { name: 'sid', domain: 'example.com', path: '/app' } }).cookie.domain).toBe('example.com');
  });

  it('drops the prefix and Secure only in insecureDevMode', () => {
    const o = resolveOptions({ secret, insecureDevMode: true });
    expect(o.cookie.name).toBe('sid');
    expect(o.cookie.secure).toBe(false);
  });
});
