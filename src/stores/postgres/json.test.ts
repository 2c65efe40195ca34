import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromJsonb, keyToJsonb, MARK, toJsonb } from './json.js';

/** Any UTF-16 code unit: NUL, lone surrogates and the mark included. */
const unit = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('\u0000', MARK, '\uD800', '\uDC00', '"', '\\'),
);
const anyString = fc.string({ unit, maxLength: 20 });
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    anyString,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(
      anyString.filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k)),
      tie('value'),
      { maxKeys: 4 },
    ),
  ),
})).value;

const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Every string and key inside a parsed JSON value (what PostgreSQL would have to store). */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => [k, ...strings(x)]);
  return [];
}

describe('postgres JSONB codec', () => {
  it('round-trips every JSON value, and never emits NUL or a lone surrogate escape', () => {
    fc.assert(
      fc.property(json, (v) => {
        const text = toJsonb(v) as string;
        expect(text.includes('\u0000')).toBe(false);
        expect(strings(JSON.parse(text)).filter((s) => s.includes('\u0000') || LONE.test(s))).toEqual([]);
        expect(fromJsonb(text)).toEqual(v);
      }),
      { numRuns: 500 },
    );
  });

  it('leaves ordinary strings untouched and escapes strings that start with the mark', () => {
    expect(toJsonb({ a: 'plain é 😀' })).toBe('{"a":"plain é 😀"}');
    expect(toJsonb(`${MARK}x`)).toBe(JSON.stringify(`${MARK}${JSON.stringify(`${MARK}x`)}`));
    expect(fromJsonb(toJsonb(`${MARK}x`) as string)).toBe(`${MARK}x`);
    expect(keyToJsonb('k')).toBe('k');
    expect(keyToJsonb('a\u0000')).toBe(`${MARK}"a\\u0000"`);
  });

  it('drops prototype keys, escaped or not', () => {
    const text = `{"__proto__":{"p":1},"${MARK}\\"__proto__\\"":{"p":2},"${MARK}\\"a\\\\u0000\\"":1,"ok":{"constructor":{"prototype":{}}}}`;
    const v = fromJsonb(text) as Record<string, unknown>;
    expect(v).toEqual({ 'a\u0000': 1, ok: {} });
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).p).toBeUndefined();
  });
});
