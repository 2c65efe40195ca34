import { FORBIDDEN_KEYS, parseStoredJson } from '../../store.js';

/**
 * JSON <-> JSONB text, losslessly.
 *
 * PostgreSQL `jsonb` (like `text`) cannot hold U+0000, and rejects unpaired UTF-16 surrogates, both
 * of which a JavaScript string may contain. Such strings (values and keys) are stored as
 * `MARK + JSON.stringify(s)`: a plain string that PostgreSQL accepts (the JSON escape of NUL is the
 * six characters `\u0000`). Strings that already start with `MARK` are escaped the same way, so
 * decoding is exact. `MARK` is U+FDD0, a Unicode noncharacter that real text does not use.
 */
export const MARK = '\uFDD0';

/** Quick test on JSON text: may it contain a NUL, a lone surrogate escape or the mark? */
const SUSPECT = /\\u0000|\\ud[89a-f]|\uFDD0/i;

/** An unpaired UTF-16 surrogate (what `String.prototype.isWellFormed` detects). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function needsEscape(s: string): boolean {
  return s.includes('\u0000') || s.startsWith(MARK) || LONE_SURROGATE.test(s);
}

function escapeString(s: string): string {
  return needsEscape(s) ? MARK + JSON.stringify(s) : s;
}

function escaper(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return escapeString(value);
  if (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    typeof (value as { toJSON?: unknown }).toJSON !== 'function'
  ) {
    const keys = Object.keys(value);
    if (keys.some(needsEscape)) {
      const out: Record<string, unknown> = {};
      for (const k of keys) out[escapeString(k)] = (value as Record<string, unknown>)[k];
      return out;
    }
  }
  return value;
}

/** `JSON.stringify(value)` in a form PostgreSQL `jsonb` accepts; `undefined` when JSON has no value for it. */
export function toJsonb(value: unknown): string | undefined {
  const plain = JSON.stringify(value);
  if (plain === undefined || !SUSPECT.test(plain)) return plain;
  return JSON.stringify(value, escaper);
}

/** A top-level key as stored (for `jsonb - text[]`). */
export function keyToJsonb(key: string): string {
  return escapeString(key);
}

function unescapeString(s: string): string {
  if (!s.startsWith(MARK)) return s;
  try {
    const v: unknown = JSON.parse(s.slice(MARK.length));
    return typeof v === 'string' ? v : s;
  } catch {
    return s;
  }
}

function unescaper(key: string, value: unknown): unknown {
  if (FORBIDDEN_KEYS.has(key)) return undefined;
  if (typeof value === 'string') return unescapeString(value);
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.some((k) => k.startsWith(MARK))) {
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const real = unescapeString(k);
        if (!FORBIDDEN_KEYS.has(real)) out[real] = (value as Record<string, unknown>)[k];
      }
      return out;
    }
  }
  return value;
}

/**
 * Parse JSONB text from the database into plain data: prototype keys (`__proto__`, `constructor`,
 * `prototype`) are dropped at every depth, escaped strings are restored.
 */
export function fromJsonb(text: string): unknown {
  if (!text.includes(MARK)) return parseStoredJson(text);
  return JSON.parse(text, unescaper);
}
