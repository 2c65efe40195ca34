import { SeshError, SessionTooLargeError } from '../errors.js';
import { FORBIDDEN_KEYS } from '../store.js';
import type { DataRecord, StoredSession } from '../types.js';
import { isPlainObject, isTime } from './common.js';

/** Names of the session API on `req.session`; data can never take them. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['id', 'regenerate', 'destroy', 'save', 'reload', 'touch']);

/** Throw a typed error when `key` may not be used as a data key. */
export function assertDataKey(key: string | symbol): asserts key is string {
  if (typeof key === 'symbol') {
    throw new SeshError('RESERVED_KEY', 'Session keys must be strings; symbols cannot be stored.', { status: 500 });
  }
  if (RESERVED_KEYS.has(key) || FORBIDDEN_KEYS.has(key)) {
    throw new SeshError(
      'RESERVED_KEY',
      `"${key}" is reserved by the session API and cannot be written as session data; pick another key name.`,
      { status: 500 },
    );
  }
}

/** JSON.stringify replacer that refuses values JSON would silently drop or mangle. */
function strictReplacer(this: unknown, key: string, value: unknown): unknown {
  const t = typeof value;
  if (t === 'function' || t === 'symbol' || t === 'bigint') {
    throw new SeshError('UNSERIALIZABLE_VALUE', `Session value at "${key}" is a ${t}, which cannot be stored; store plain JSON data.`);
  }
  if (value instanceof Map || value instanceof Set) {
    throw new SeshError(
      'UNSERIALIZABLE_VALUE',
      `Session value at "${key}" is a ${value instanceof Map ? 'Map' : 'Set'}; convert it to an array or object first.`,
    );
  }
  return value;
}

/** Nesting depth past which `isPlainJson` gives up (the replacer path then decides, cycles included). */
const PLAIN_DEPTH = 32;

/**
 * True when `value` is made only of strings, finite or non-finite numbers, booleans, null,
 * undefined, and arrays and plain objects of those, none with a `toJSON`, nested at most
 * `PLAIN_DEPTH` deep. For such a value the strict replacer can never throw, so plain
 * `JSON.stringify` gives the same text.
 */
function isPlainJson(value: unknown, depth: number): boolean {
  if (value === null) return true;
  const t = typeof value;
  if (t === 'string' || t === 'number' || t === 'boolean' || t === 'undefined') return true;
  if (t !== 'object' || depth >= PLAIN_DEPTH) return false;
  const o = value as Record<string, unknown>;
  if (o.toJSON !== undefined) return false;
  const proto = Object.getPrototypeOf(o);
  if (proto === Array.prototype) {
    const a = o as unknown as unknown[];
    for (let i = 0; i < a.length; i++) if (!isPlainJson(a[i], depth + 1)) return false;
    return true;
  }
  if (proto !== Object.prototype && proto !== null) return false;
  for (const k of Object.keys(o)) if (!isPlainJson(o[k], depth + 1)) return false;
  return true;
}

/**
 * Serialize session data as JSON, enforcing that every value is JSON data and that the result fits
 * `maxSize` bytes. Dates become ISO strings (their JSON form); `undefined` members are dropped.
 */
export function serializeData(data: DataRecord, maxSize: number): string {
  let json: string;
  try {
    // A replacer takes V8 off its fast path (a call into JS per value: ~5 µs for a one-key session);
    // data made only of JSON's own types is checked by a walk instead, and anything else goes through
    // the replacer, which names the offending key.
    json = isPlainJson(data, 0) ? JSON.stringify(data) : JSON.stringify(data, strictReplacer);
  } catch (err) {
    if (err instanceof SeshError) throw err;
    // Circular structures (TypeError) and too-deep nesting (RangeError) end up here.
    throw new SeshError('UNSERIALIZABLE_VALUE', `Session data cannot be stored as JSON: ${(err as Error).message}`, { cause: err });
  }
  // Length in UTF-16 units is a lower bound of the UTF-8 size; only measure bytes when close.
  if (json.length * 3 > maxSize) {
    const size = Buffer.byteLength(json);
    if (size > maxSize) throw new SessionTooLargeError(size, maxSize);
  }
  return json;
}

/** JSON text of one value, or undefined when it is not representable (such keys count as changed). */
export function snapshotOf(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/**
 * Check the shape of a record a store returned. Anything odd (missing or non-finite times, data
 * that is not an object, a user ID that is not a string) fails closed: the record is treated as
 * corrupt, never as a session without expiry.
 */
export function isValidRecord(r: unknown): r is StoredSession {
  if (!isPlainObject(r)) return false;
  return (
    isPlainObject(r.data) &&
    isPlainObject(r.meta) &&
    isTime(r.createdAt) &&
    isTime(r.lastSeen) &&
    isTime(r.expiresAt) &&
    (r.userId === null || r.userId === undefined || typeof r.userId === 'string')
  );
}

/** Copy loaded data into a fresh object, dropping prototype and API names. */
export function adoptData(source: DataRecord): DataRecord {
  const out: DataRecord = {};
  for (const k of Object.keys(source)) {
    if (!FORBIDDEN_KEYS.has(k) && !RESERVED_KEYS.has(k)) out[k] = source[k];
  }
  return out;
}
