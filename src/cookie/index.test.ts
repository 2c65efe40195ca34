import { parse as parseCookie } from 'cookie';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileCookie, cookieAttributesProblem, readCookie } from './index.js';

const NAME = '__Host-sid';
const valueChars = fc.constantFrom(...'abcXYZ019-_.~!#$&*+^`|'.split(''));
const value = fc.string({ unit: valueChars, minLength: 1, maxLength: 60 });
const otherName = fc
  .string({ unit: fc.constantFrom(...'abcdefghXYZ_-0'.split('')), minLength: 1, maxLength: 12 })
  .filter((n) => n !== NAME);

describe('readCookie', () => {
  it('finds the value among other cookies, like a general parser does', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(otherName, value), { maxLength: 8 }), value, fc.nat(8), (others, v, at) => {
        const pairs = others.map(([n, x]) => `${n}=${x}`);
        pairs.splice(Math.min(at, pairs.length), 0, `${NAME}=${v}`);
        const header = pairs.join('; ');
        expect(readCookie(header, NAME)).toEqual([v]);
        expect(parseCookie(header)[NAME]).toBe(v);
      }),
    );
  });

  it('returns every duplicate in order (cookie tossing must be visible)', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 5 }), (values) => {
        const header = values.map((v) => `${NAME}=${v}`).join('; ');
        expect(readCookie(header, NAME)).toEqual(values);
      }),
    );
  });

  it('never throws and never returns more values than separators allow, whatever the header', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (header) => {
        const out = readCookie(header, NAME);
        expect(out.length).toBeLessThanOrEqual(header.split(';').length);
        for (const v of out) expect(typeof v).toBe('string');
      }),
    );
  });

  it('matches the name exactly and case-sensitively', () => {
    for (const h of ['__host-sid=a', '__HOST-SID=a', '__Host-sid =a', '__Host%2Dsid=a', 'x__Host-sid=a', '__Host-sidx=a']) {
      expect(readCookie(h, NAME)).toEqual([]);
    }
    expect(readCookie(' \t__Host-sid=a', NAME)).toEqual(['a']);
  });

  it('handles empty values, missing "=", quotes, whitespace and prototype names', () => {
    expect(readCookie(undefined, NAME)).toEqual([]);
    expect(readCookie('', NAME)).toEqual([]);
    expect(readCookie(';;;', NAME)).toEqual([]);
    expect(readCookie('__Host-sid=', NAME)).toEqual(['']);
    expect(readCookie('__Host-sid', NAME)).toEqual(['']);
    expect(readCookie('__Host-sid="abc"', NAME)).toEqual(['abc']);
    expect(readCookie('__Host-sid=""abc""', NAME)).toEqual(['"abc"']);
    expect(readCookie('__Host-sid=abc  ; x=1', NAME)).toEqual(['abc']);
    expect(readCookie('__proto__=1; constructor=2; __Host-sid=ok; hasOwnProperty=3', NAME)).toEqual(['ok']);
    expect(readCookie('__proto__=1', '__proto__')).toEqual(['1']);
  });

  it('replaces over-long values by an empty string so they are rejected cheaply', () => {
    expect(readCookie(`${NAME}=${'a'.repeat(300)}`, NAME, 256)).toEqual(['']);
    expect(readCookie(`${NAME}=${'a'.repeat(256)}`, NAME, 256)).toEqual(['a'.repeat(256)]);
  });

  it('stays linear on 16 KB of separators (no pathological backtracking)', () => {
    const header = `${';'.repeat(16_000)}${NAME}=x`;
    expect(readCookie(header, NAME)).toEqual(['x']);
    const many = Array.from({ length: 5000 }, (_, i) => `c${i}=1`).join('; ');
    expect(readCookie(many, NAME)).toEqual([]);
  });
});

describe('compileCookie', () => {
  const base = { name: NAME, path: '/', secure: true, httpOnly: true, sameSite: 'lax' as const };

  it('serializes the secure defaults', () => {
    const c = compileCookie(base);
    expect(c.serialize('v1.abc')).toBe('__Host-sid=v1.abc; Path=/; Secure; HttpOnly; SameSite=Lax');
    expect(c.clear()).toBe('__Host-sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax');
    expect(c.serialize('x', 60, Date.UTC(2030, 0, 1))).toBe(
      '__Host-sid=x; Max-Age=60; Expires=Tue, 01 Jan 2030 00:01:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax',
    );
  });

  it('gives every persistent cookie the Max-Age and Expires of its own time, in any order of calls', () => {
    const c = compileCookie(base);
    const expected = (maxAge: number, now: number) => {
      const secs = Math.max(0, Math.floor(maxAge));
      return `${NAME}=x; Max-Age=${secs}; Expires=${new Date(now + secs * 1000).toUTCString()}; Path=/; Secure; HttpOnly; SameSite=Lax`;
    };
    const now = fc.integer({ min: 0, max: 4_102_444_800_000 });
    const maxAge = fc.oneof(fc.constantFrom(0, 59.5, 60, 61, 86_400), fc.double({ min: -10, max: 1e9, noNaN: true }));
    // Each call is followed by calls a little later and with another max age, where the part kept
    // from the call before must be reused only when it is still right.
    fc.assert(
      fc.property(fc.array(fc.tuple(now, maxAge, maxAge, fc.nat(2500)), { minLength: 1 }), (calls) => {
        for (const [at, age, other, later] of calls) {
          for (const [a, t] of [
            [age, at],
            [age, at + later],
            [other, at + later],
            [age, at + later],
          ] as const) {
            expect(c.serialize('x', a, t)).toBe(expected(a, t));
          }
        }
      }),
    );
    // The same Expires second reached by another max age from another time.
    const t = Date.UTC(2030, 0, 1);
    expect(c.serialize('x', 60, t)).toBe(expected(60, t));
    expect(c.serialize('x', 61, t - 1000)).toBe(expected(61, t - 1000));
  });

  it('rejects attribute injection in every option (A38)', () => {
    const bad = [
      { ...base, name: 'sid; Domain=evil' },
      { ...base, name: 'sid=x' },
      { ...base, name: 'séance' },
      { ...base, name: '__Secure-x', secure: false },
      { ...base, name: 'sid', domain: 'example.com; HttpOnly=false' },
      { ...base, name: 'sid', path: '/\r\nX-Evil: 1' },
      { ...base, name: 'sid', path: '/a;b' },
      { ...base, name: 'sid', path: 'relative' },
      { ...base, domain: 'example.com' },
      { ...base, path: '/app' },
      { ...base, secure: false },
      { ...base, name: 'sid', secure: false, sameSite: 'none' as const },
      { ...base, name: 'sid', secure: false, partitioned: true },
    ];
    for (const attrs of bad) {
      expect(cookieAttributesProblem(attrs), JSON.stringify(attrs)).not.toBeNull();
      expect(() => compileCookie(attrs)).toThrow(TypeError);
    }
  });

  it('refuses values that would break the header, instead of truncating them', () => {
    const c = compileCookie(base);
    for (const v of ['a;b', 'a b', 'a,b', 'a"b', 'a\\b', 'é', 'a\r\nb']) expect(() => c.serialize(v)).toThrow(TypeError);
  });

  it('round-trips any valid value through readCookie', () => {
    const c = compileCookie(base);
    fc.assert(
      fc.property(value, (v) => {
        const pair = c.serialize(v).split('; ')[0] as string;
        expect(readCookie(pair, NAME)).toEqual([v]);
      }),
    );
  });
});
