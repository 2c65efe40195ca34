import * as nodeCrypto from 'node:crypto';
import { createHash, createHmac, hkdfSync, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';

/** Source of cryptographically secure random bytes; injectable for tests. */
export type RandomSource = (size: number) => Uint8Array;

/** Node's CSPRNG. */
export const secureRandom: RandomSource = (size) => randomBytes(size);

/**
 * Derive a 32-byte key for one purpose from a master secret with HKDF-SHA256, so one secret never
 * signs two kinds of value (a CSRF token can never pass as a session MAC).
 */
export function deriveKey(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'sesh/v1', purpose, 32));
}

/** A key ring: the first key signs, every key verifies. */
export interface KeyRing {
  readonly keys: readonly Buffer[];
}

/** Derive the key ring of one purpose from the app's secrets (current first). */
export function keyRing(secrets: readonly string[], purpose: string): KeyRing {
  return { keys: secrets.map((s) => deriveKey(s, purpose)) };
}

/** HMAC-SHA256 of `message` under `key`, as unpadded base64url (43 characters). */
export function hmac(key: Buffer, message: string): string {
  return createHmac('sha256', key).update(message).digest('base64url');
}

/**
 * Check `tag` (base64url, already format-checked) against `message` under each key of the ring, in
 * constant time per comparison. Returns the index of the key that verifies, or -1.
 */
export function verifyHmac(ring: KeyRing, message: string, tag: string): number {
  // 43 base64url characters carry 258 bits: the last one has 2 spare bits, so four spellings decode
  // to the same 32 bytes. Only the canonical spelling (spare bits zero) is accepted (no malleable
  // cookie values); checking the last character spares re-encoding the decoded bytes.
  if (tag.length !== 43 || !CANONICAL_LAST.has(tag.charCodeAt(42))) return -1;
  const given = Buffer.from(tag, 'base64url');
  if (given.length !== 32) return -1;
  let found = -1;
  for (let i = 0; i < ring.keys.length; i++) {
    const expected = createHmac('sha256', ring.keys[i] as Buffer)
      .update(message)
      .digest();
    // Every key is tried even after a match, so timing does not reveal which key signed.
    if (timingSafeEqual(expected, given) && found === -1) found = i;
  }
  return found;
}

/** Base64url characters whose 6-bit value has its two low bits zero (a canonical 43rd character). */
const CANONICAL_LAST: ReadonlySet<number> = new Set([...'AEIMQUYcgkosw048'].map((c) => c.charCodeAt(0)));

/** One-shot `crypto.hash` (Node 20.12+): about twice as fast as a Hash object for short inputs. */
const oneShotHash = (nodeCrypto as { hash?: (algorithm: string, data: string, encoding: 'base64url') => string }).hash;

/** SHA-256 of a string, as unpadded base64url (43 characters). */
export function sha256(value: string): string {
  if (oneShotHash) return oneShotHash('sha256', value, 'base64url');
  return createHash('sha256').update(value).digest('base64url');
}

/**
 * Random bytes for IDs drawn from the default source come from a pool refilled by the CSPRNG, 4 KiB
 * at a time: one `randomBytes` call per ID costs more than the rest of creating a session. Each
 * byte is handed out once and zeroed as soon as it is encoded.
 */
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let poolOffset = POOL_SIZE;

function pooledRandomId(bytes: number): string {
  if (bytes > POOL_SIZE) return randomBytes(bytes).toString('base64url');
  if (poolOffset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const start = poolOffset;
  poolOffset += bytes;
  const id = pool.toString('base64url', start, poolOffset);
  pool.fill(0, start, poolOffset);
  return id;
}

/** A new random identifier of `bytes` bytes (default 32 = 256 bits), as base64url. */
export function randomId(random: RandomSource = secureRandom, bytes = 32): string {
  if (random === secureRandom) return pooledRandomId(bytes);
  const buf = random(bytes);
  if (!(buf instanceof Uint8Array) || buf.length !== bytes) {
    throw new TypeError(`The random source must return ${bytes} bytes.`);
  }
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('base64url');
}

/** Constant-time equality of two strings (false when lengths differ; lengths are public). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
