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

/** One-shot `crypto.hash` (Node 20.12+): about twice as fast as a Hash object for short inputs. */
const oneShotHash = (
  nodeCrypto as {
    hash?: (algorithm: string, data: string | NodeJS.ArrayBufferView, encoding: 'base64url' | 'latin1') => string;
  }
).hash;

const BLOCK = 64;
/** Longest message (in UTF-8 bytes) the one-shot HMAC handles; longer ones use a Hmac object. */
const MAX_ONE_SHOT = 1024;
/** Scratch space for the inner hash: the key's ipad block, then the message (zeroed after use). */
const innerScratch = Buffer.allocUnsafeSlow(BLOCK + MAX_ONE_SHOT);
/** Views of `innerScratch` by message length, so a call allocates no Buffer view. */
const innerViews: Buffer[] = [];
/** Scratch space for the outer hash: the key's opad block, then the inner digest. */
const outerScratch = Buffer.allocUnsafeSlow(BLOCK + 32);
/**
 * The K ⊕ ipad and K ⊕ opad blocks of a key (RFC 2104), each a whole buffer: copying a whole
 * buffer with `set` allocates nothing, where `buf.copy` of a sub-range builds a view each call.
 */
interface Pads {
  readonly ipad: Buffer;
  readonly opad: Buffer;
}
/** The pads of each key, computed once per key. */
const padCache = new WeakMap<Buffer, Pads>();

function padsOf(key: Buffer): Pads {
  let pads = padCache.get(key);
  if (pads === undefined) {
    const k = key.length > BLOCK ? createHash('sha256').update(key).digest() : key;
    const ipad = Buffer.alloc(BLOCK);
    const opad = Buffer.alloc(BLOCK);
    for (let i = 0; i < BLOCK; i++) {
      const b = i < k.length ? (k[i] as number) : 0;
      ipad[i] = b ^ 0x36;
      opad[i] = b ^ 0x5c;
    }
    pads = { ipad, opad };
    padCache.set(key, pads);
  }
  return pads;
}

/**
 * HMAC-SHA256 of `message` under `key`, as unpadded base64url (43 characters).
 *
 * Computed as RFC 2104 spells it, H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)), with two one-shot
 * `crypto.hash` calls over preallocated buffers: a `createHmac` object per call costs several
 * times more, mostly in building the object (it runs on every request that carries a session
 * cookie). Property-tested against `createHmac`; falls back to it where `crypto.hash` is missing
 * (Node < 20.12) or the message is long.
 */
export function hmac(key: Buffer, message: string): string {
  if (!oneShotFits(message)) return createHmac('sha256', key).update(message).digest('base64url');
  return (oneShotHash as NonNullable<typeof oneShotHash>)('sha256', outerBlock(key, message), 'base64url');
}

/** True when the one-shot path applies: `crypto.hash` exists and the message fits the scratch. */
function oneShotFits(message: string): boolean {
  return oneShotHash !== undefined && message.length <= MAX_ONE_SHOT / 3;
}

/**
 * The outer hash's input for `hmac(key, message)`: `outerScratch` holding K ⊕ opad and the inner
 * digest. Only called when {@link oneShotFits}.
 */
function outerBlock(key: Buffer, message: string): Buffer {
  const hash = oneShotHash as NonNullable<typeof oneShotHash>;
  const pads = padsOf(key);
  innerScratch.set(pads.ipad, 0);
  const n = innerScratch.write(message, BLOCK, 'utf8');
  let view = innerViews[n];
  if (view === undefined) {
    view = innerScratch.subarray(0, BLOCK + n);
    innerViews[n] = view;
  }
  const inner = hash('sha256', view, 'latin1');
  innerScratch.fill(0, BLOCK, BLOCK + n);
  outerScratch.set(pads.opad, 0);
  outerScratch.write(inner, BLOCK, 'latin1');
  return outerScratch;
}

/** The expected and the given MAC in `verifyHmac`, decoded (32 bytes each, reused). */
const expectedMac = Buffer.allocUnsafeSlow(32);
const givenMac = Buffer.allocUnsafeSlow(32);

/**
 * Check `tag` (base64url, already format-checked) against `message` under each key of the ring:
 * `timingSafeEqual` over the fixed-length decoded MACs. Returns the index of the key that
 * verifies, or -1.
 */
export function verifyHmac(ring: KeyRing, message: string, tag: string): number {
  // 43 base64url characters carry 258 bits: the last one has 2 spare bits, so four spellings decode
  // to the same 32 bytes. Only the canonical spelling (spare bits zero) is accepted (no malleable
  // cookie values). Node's decoder skips illegal characters: the decoded length catches those.
  if (tag.length !== 43 || !CANONICAL_LAST.has(tag.charCodeAt(42))) return -1;
  if (givenMac.write(tag, 0, 'base64url') !== 32) return -1;
  const oneShot = oneShotFits(message);
  let found = -1;
  for (let i = 0; i < ring.keys.length; i++) {
    const key = ring.keys[i] as Buffer;
    if (oneShot) {
      const digest = (oneShotHash as NonNullable<typeof oneShotHash>)('sha256', outerBlock(key, message), 'latin1');
      expectedMac.write(digest, 0, 'latin1');
    } else {
      createHmac('sha256', key).update(message).digest().copy(expectedMac);
    }
    // Every key is tried even after a match, so timing does not reveal which key signed.
    if (timingSafeEqual(expectedMac, givenMac) && found === -1) found = i;
  }
  givenMac.fill(0);
  expectedMac.fill(0);
  return found;
}

/** Base64url characters whose 6-bit value has its two low bits zero (a canonical 43rd character). */
const CANONICAL_LAST: ReadonlySet<number> = new Set([...'AEIMQUYcgkosw048'].map((c) => c.charCodeAt(0)));

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
