import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { deriveKey, type RandomSource, secureRandom } from './index.js';

/**
 * Sealed values: AES-256-GCM with a random 96-bit nonce, under a key ring derived per purpose.
 *
 * Token format (all parts unpadded base64url):
 *
 * ```
 * s1.<kid:8>.<nonce:16>.<ciphertext || tag>
 * ```
 *
 * - `s1` is the format version; anything else is refused before decoding.
 * - `kid` (6 bytes) names the key of the ring that sealed the value, so opening needs one AES
 *   attempt, not one per key: the work per cookie is constant whatever the ring size, and an
 *   attacker cannot make the server try every key. It is an HMAC of a constant under the derived
 *   key, so it says nothing about the key itself.
 * - The additional authenticated data binds the format version, the key ID, the purpose and the
 *   caller's context (app ID, cookie name), so a value sealed for another purpose, app or cookie
 *   fails authentication even under the same secret. The purpose also enters the HKDF `info`, so
 *   each purpose has its own key.
 */

/** Version prefix of sealed values. */
export const SEAL_VERSION = 's1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Smallest sealed value: an empty plaintext still carries the 16-byte tag (22 characters). */
const SEALED = /^s1\.([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,})$/;

/** One key of an {@link AeadRing}. */
export interface AeadKey {
  /** Public 8-character key ID written into sealed values. */
  readonly id: string;
  /** The derived 32-byte AES key. */
  readonly key: Buffer;
}

/** Keys of one purpose: the first seals, every key opens. */
export interface AeadRing {
  readonly purpose: string;
  readonly keys: readonly AeadKey[];
}

/**
 * Derive the AES-256-GCM key ring of `purpose` from the app's secrets (current first) with
 * HKDF-SHA256, `info` = `<purpose>-aead` (e.g. `session-aead`).
 */
export function aeadRing(secrets: readonly string[], purpose: string): AeadRing {
  if (secrets.length === 0) throw new TypeError('aeadRing needs at least one secret.');
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(purpose)) throw new TypeError(`Invalid purpose ${JSON.stringify(purpose)}.`);
  const keys = secrets.map((secret) => {
    const key = deriveKey(secret, `${purpose}-aead`);
    const id = createHmac('sha256', key).update('sesh/v1 key id').digest().subarray(0, 6).toString('base64url');
    return Object.freeze({ id, key });
  });
  return Object.freeze({ purpose, keys: Object.freeze(keys) });
}

function aad(version: string, kid: string, purpose: string, context: readonly string[]): Buffer {
  // JSON of an array of strings is unambiguous: no choice of context strings collides with another.
  return Buffer.from(JSON.stringify(['sesh', version, kid, purpose, ...context]));
}

/** Length in characters of the sealed value of a `plaintextBytes`-byte plaintext. */
export function sealedLength(plaintextBytes: number): number {
  return SEAL_VERSION.length + 1 + 8 + 1 + 16 + 1 + Math.ceil(((plaintextBytes + TAG_BYTES) * 4) / 3);
}

/**
 * Seal `plaintext` under the ring's current key. `context` (e.g. app ID and cookie name) is
 * authenticated, not encrypted: {@link openSealed} must be given the same strings.
 */
export function seal(
  ring: AeadRing,
  plaintext: Uint8Array | string,
  context: readonly string[],
  random: RandomSource = secureRandom,
): string {
  const current = ring.keys[0] as AeadKey;
  const nonce = random(NONCE_BYTES);
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) {
    throw new TypeError(`The random source must return ${NONCE_BYTES} bytes.`);
  }
  const cipher = createCipheriv('aes-256-gcm', current.key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(SEAL_VERSION, current.id, ring.purpose, context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return `${SEAL_VERSION}.${current.id}.${Buffer.from(nonce).toString('base64url')}.${body.toString('base64url')}`;
}

/** Why a sealed value was refused. */
export type OpenFailure =
  /** Not the `s1.<kid>.<nonce>.<body>` shape, too long, or non-canonical base64url. */
  | 'malformed'
  /** The key ID names no key of the ring (sealed under a removed key, or forged). */
  | 'unknown_key'
  /** Authentication failed: tampered, truncated, other purpose/app/cookie, or wrong key. */
  | 'auth_failed';

/** Result of {@link openSealed}. */
export type OpenResult = { ok: true; plaintext: Buffer; keyIndex: number } | { ok: false; reason: OpenFailure };

/** Decode base64url only when `text` is its canonical spelling (Node's decoder is lenient). */
function strictBase64url(text: string): Buffer | null {
  if (text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}

/**
 * Open a sealed value: strict format check first (no decoding of anything that is not exactly
 * the expected shape), then one AES-GCM attempt with the key its ID names. Never throws.
 */
export function openSealed(ring: AeadRing, token: unknown, context: readonly string[], maxLength = 16_384): OpenResult {
  if (typeof token !== 'string' || token.length > maxLength) return { ok: false, reason: 'malformed' };
  const m = SEALED.exec(token);
  if (!m) return { ok: false, reason: 'malformed' };
  const kid = m[1] as string;
  const nonce = strictBase64url(m[2] as string);
  const body = strictBase64url(m[3] as string);
  if (!nonce || nonce.length !== NONCE_BYTES || !body || body.length < TAG_BYTES) return { ok: false, reason: 'malformed' };
  let tried = false;
  for (let i = 0; i < ring.keys.length; i++) {
    const k = ring.keys[i] as AeadKey;
    if (k.id !== kid) continue;
    tried = true;
    try {
      const decipher = createDecipheriv('aes-256-gcm', k.key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(SEAL_VERSION, kid, ring.purpose, context));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      const plaintext = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
      return { ok: true, plaintext, keyIndex: i };
    } catch {
      // Wrong tag. Another ring key could share the 48-bit ID only by accident; try it too.
    }
  }
  return { ok: false, reason: tried ? 'auth_failed' : 'unknown_key' };
}
