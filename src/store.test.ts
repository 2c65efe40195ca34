import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseStoredJson } from './store.js';

/** The reference behaviour: always parse with the key-dropping reviver. */
function reference(text: string): unknown {
  return JSON.parse(text, (key, value) => (key === '__proto__' || key === 'constructor' || key === 'prototype' ? undefined : value));
}

describe('parseStoredJson', () => {
  it('drops forbidden keys at every depth, also when spelled with \\u escapes', () => {
    const text = '{"a":1,"__proto__":{"x":1},"b":{"constructor":2,"c":[{"prototype":3,"d":4}]},"__pro\\u0074o__":5,"e":"__proto__"}';
    const out = parseStoredJson(text) as Record<string, unknown>;
    expect(out).toEqual({ a: 1, b: { c: [{ d: 4 }] }, e: '__proto__' });
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(false);
  });

  it('parses plain data exactly like the reviver path', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(parseStoredJson(text)).toStrictEqual(reference(text));
      }),
      { numRuns: 500 },
    );
  });

  it('agrees with the reviver path on objects with forbidden keys, escaped or not', () => {
    const key = fc.constantFrom('__proto__', 'constructor', 'prototype', 'a', 'b');
    const record = fc.dictionary(key, fc.oneof(fc.integer(), fc.string()), { maxKeys: 4 });
    fc.assert(
      fc.property(record, fc.boolean(), (rec, escaped) => {
        let text = JSON.stringify(rec);
        if (escaped)
          text = text.replace(
            /"(__proto__|constructor|prototype)"/g,
            (_m, k: string) => `"\\u00${k.charCodeAt(0).toString(16)}${k.slice(1)}"`,
          );
        expect(parseStoredJson(text)).toStrictEqual(reference(text));
      }),
      { numRuns: 300 },
    );
  });
});
