import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

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
  const given = Buffer.from(tag, 'base64url');
  // 43 base64url characters carry 258 bits: the last one has 2 spare bits, so four spellings decode
  // to the same 32 bytes. Only the canonical spelling is accepted (no malleable cookie values).
  if (given.length !== 32 || given.toString('base64url') !== tag) return -1;
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

/** SHA-256 of a string, as unpadded base64url (43 characters). */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** A new random identifier of `bytes` bytes (default 32 = 256 bits), as base64url. */
export function randomId(random: RandomSource = secureRandom, bytes = 32): string {
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
