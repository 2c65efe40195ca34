import { createHmac, timingSafeEqual } from 'node:crypto';

/** A secret as express-session accepts it (cookie-signature passes it to `createHmac`). */
export type Secret = string | Buffer;

/**
 * Sign `value` the way cookie-signature 1.x does: `value + "." + base64(HMAC-SHA256(value))`
 * with the trailing `=` padding removed.
 */
export function sign(value: string, secret: Secret): string {
  const mac = createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '');
  return `${value}.${mac}`;
}

/**
 * Check a signed value (`value.mac`) against one secret, in constant time. Returns the value, or
 * `false` when the signature does not match.
 */
export function unsign(input: string, secret: Secret): string | false {
  const value = input.slice(0, input.lastIndexOf('.'));
  const expected = Buffer.from(sign(value, secret));
  const given = Buffer.from(input);
  return expected.length === given.length && timingSafeEqual(expected, given) ? value : false;
}

/** Try each secret in order (the first one signs, the others still verify). */
export function unsignAny(input: string, secrets: readonly Secret[]): string | false {
  for (const secret of secrets) {
    const result = unsign(input, secret);
    if (result !== false) return result;
  }
  return false;
}
