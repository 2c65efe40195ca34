import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSeshError } from '../errors.js';
import type { DataRecord } from '../types.js';
import { serializeData } from './data.js';

const MAX = 1 << 30;

/** What the strict serialization must equal for data JSON can hold as it is. */
const reference = (data: unknown): string => JSON.stringify(data);

/** A value JSON cannot store, which must be refused wherever it sits. */
const unstorable = fc.constantFrom<unknown>(() => 1, Symbol('s'), 10n, new Map([[1, 2]]), new Set([1]), { toJSON: () => () => 1 });

/** Put `bad` somewhere inside `data` (at the end of a path of objects and arrays). */
function plant(data: unknown, bad: unknown, path: number[]): unknown {
  if (path.length === 0 || data === null || typeof data !== 'object') return { deep: bad };
  const [step, ...rest] = path as [number, ...number[]];
  if (Array.isArray(data)) {
    const copy = [...data];
    copy.push(plant(copy[step % (copy.length || 1)], bad, rest));
    return copy;
  }
  const keys = Object.keys(data);
  const key = keys.length ? (keys[step % keys.length] as string) : 'k';
  return { ...(data as object), [key]: plant((data as Record<string, unknown>)[key], bad, rest) };
}

describe('serializeData', () => {
  it('gives JSON.stringify’s text for any JSON data, however deep (the walk and the replacer agree)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ depthSize: 'medium', maxDepth: 40 })), (data) => {
        expect(serializeData(data as DataRecord, MAX)).toBe(reference(data));
      }),
      { numRuns: 300 },
    );
  });

  it('turns Dates, undefined members and objects with toJSON into their JSON form', () => {
    fc.assert(
      fc.property(fc.date({ noInvalidDate: true }), fc.jsonValue(), (date, v) => {
        const data = { at: date, nested: { at: [date], v }, gone: undefined, custom: { toJSON: () => v } };
        expect(serializeData(data as DataRecord, MAX)).toBe(reference(data));
      }),
    );
  });

  it('refuses a function, symbol, BigInt, Map or Set at any depth with UNSERIALIZABLE_VALUE', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 5 })),
        unstorable,
        fc.array(fc.nat(), { maxLength: 6 }),
        (data, bad, path) => {
          const planted = plant(data, bad, path) as DataRecord;
          let error: unknown;
          try {
            serializeData(planted, MAX);
          } catch (err) {
            error = err;
          }
          expect(isSeshError(error, 'UNSERIALIZABLE_VALUE')).toBe(true);
        },
      ),
    );
  });

  it('refuses circular data, nested deeper than the walk goes or not', () => {
    for (const depth of [0, 5, 100]) {
      const root: Record<string, unknown> = {};
      let o = root;
      for (let i = 0; i < depth; i++) {
        const n: Record<string, unknown> = {};
        o.n = n;
        o = n;
      }
      o.loop = root;
      expect(() => serializeData(root, MAX)).toThrow(expect.objectContaining({ code: 'UNSERIALIZABLE_VALUE' }));
    }
  });

  it('measures the size in UTF-8 bytes against maxSize', () => {
    expect(() => serializeData({ v: 'é'.repeat(600) }, 1024)).toThrow(expect.objectContaining({ code: 'SESSION_TOO_LARGE' }));
    expect(serializeData({ v: 'e'.repeat(600) }, 1024)).toBe(reference({ v: 'e'.repeat(600) }));
  });
});
