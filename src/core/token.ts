import { hmac, type KeyRing, sha256, verifyHmac } from '../crypto/index.js';

/**
 * Session cookie format: `v1.<id>.<mac>`, where `id` is 32 random bytes and `mac` is
 * HMAC-SHA256(k_mac, "session:v1:" + id), both unpadded base64url (43 characters). The strict
 * pattern runs before any decoding, because Node's base64url decoder silently skips illegal
 * characters and would accept many spellings of the same bytes.
 */
const TOKEN = /^v1\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/;

/** Longest value the engine examines at all; longer ones are rejected before any crypto. */
export const MAX_TOKEN_LENGTH = 256;

/** Build the signed cookie value for a session ID. */
export function signToken(ring: KeyRing, id: string): string {
  return `v1.${id}.${hmac(ring.keys[0] as Buffer, `session:v1:${id}`)}`;
}

/** Result of checking a cookie value. */
export type TokenCheck = { ok: true; id: string; keyIndex: number } | { ok: false; reason: 'malformed_cookie' | 'invalid_signature' };

/** Check a cookie value: strict format first, then the MAC in constant time against the ring. */
export function verifyToken(ring: KeyRing, value: string): TokenCheck {
  if (value.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed_cookie' };
  const m = TOKEN.exec(value);
  if (!m) return { ok: false, reason: 'malformed_cookie' };
  const id = m[1] as string;
  const keyIndex = verifyHmac(ring, `session:v1:${id}`, m[2] as string);
  return keyIndex < 0 ? { ok: false, reason: 'invalid_signature' } : { ok: true, id, keyIndex };
}

/** The store key of a session ID: SHA-256, so a leaked store holds no usable session IDs. */
export function storeKeyOf(id: string): string {
  return sha256(`sesh:v1:${id}`);
}
