import { randomBytes, timingSafeEqual } from 'node:crypto';
import { OptionsError, type SessionData, type SessionState } from '../index.js';

/** Metadata key of the per-session CSRF secret. */
export const CSRF_META_KEY = 'csrf';

const SECRET_BYTES = 32;
const SECRET = /^[A-Za-z0-9_-]{43}$/;
/** A masked token: base64url of `pad || (pad XOR secret)`, 64 bytes. */
const TOKEN = /^[A-Za-z0-9_-]{86}$/;

/** Methods that must not change state, so they are never CSRF-checked (RFC 9110 §9.2.1). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** True for GET, HEAD, OPTIONS and TRACE. */
export function isSafeMethod(method: string | undefined): boolean {
  return SAFE_METHODS.has((method ?? 'GET').toUpperCase());
}

function newSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

function secretOf(state: SessionState<SessionData>): Buffer | null {
  const s = state.getMeta(CSRF_META_KEY);
  return typeof s === 'string' && SECRET.test(s) ? Buffer.from(s, 'base64url') : null;
}

/**
 * Replace the session's CSRF secret with a fresh one, so every token issued before stops working.
 * The auth helpers call it at login; logout destroys the session and the secret with it.
 */
export function renewCsrfSecret(state: SessionState<SessionData>): void {
  state.setMeta(CSRF_META_KEY, newSecret());
}

/**
 * A synchronizer token for this session, masked afresh on every call (BREACH-safe: two calls give
 * different strings for the same secret). Creates the session's secret on first use, which saves
 * the session (an anonymous visitor gets a session cookie, as a login form needs).
 */
export function issueCsrfToken(state: SessionState<SessionData>): string {
  let secret = secretOf(state);
  if (!secret) {
    renewCsrfSecret(state);
    secret = secretOf(state) as Buffer;
  }
  const pad = randomBytes(SECRET_BYTES);
  const masked = Buffer.alloc(SECRET_BYTES);
  for (let i = 0; i < SECRET_BYTES; i++) masked[i] = (pad[i] as number) ^ (secret[i] as number);
  return Buffer.concat([pad, masked]).toString('base64url');
}

/**
 * Check a token presented by the client against the session's secret: strict format first, then
 * unmask and compare with `crypto.timingSafeEqual`. False when the session has no secret.
 */
export function verifyCsrfToken(state: SessionState<SessionData>, token: unknown): boolean {
  if (typeof token !== 'string' || !TOKEN.test(token)) return false;
  const secret = secretOf(state);
  if (!secret) return false;
  const raw = Buffer.from(token, 'base64url');
  // Only the canonical spelling: the last character carries 4 unused bits.
  if (raw.length !== 2 * SECRET_BYTES || raw.toString('base64url') !== token) return false;
  const unmasked = Buffer.alloc(SECRET_BYTES);
  for (let i = 0; i < SECRET_BYTES; i++) unmasked[i] = (raw[i] as number) ^ (raw[i + SECRET_BYTES] as number);
  return timingSafeEqual(unmasked, secret);
}

/** Why the request-origin check refused a request (or `missing`: no header to decide on). */
export type OriginFailure = 'cross_site' | 'same_site' | 'fetch_site_none' | 'origin_mismatch' | 'referer_mismatch' | 'missing';

/** Result of {@link checkRequestOrigin}. */
export type OriginCheck = { ok: true; via: 'fetch-metadata' | 'origin' | 'referer' } | { ok: false; reason: OriginFailure };

/** The request headers the origin check looks at. */
export interface OriginHeaders {
  secFetchSite?: string | undefined;
  origin?: string | undefined;
  referer?: string | undefined;
}

/**
 * Normalise an origin given in configuration (`https://example.com`, default ports dropped,
 * lowercase scheme and host). Throws an `OptionsError` for anything that is not a bare origin.
 */
export function normalizeOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OptionsError(`allowedOrigins: ${JSON.stringify(value)} is not a URL; write it as scheme://host[:port].`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin === 'null') {
    throw new OptionsError(`allowedOrigins: ${JSON.stringify(value)} must be an http(s) origin.`);
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '' || /[?#]/.test(value)) {
    throw new OptionsError(
      `allowedOrigins: ${JSON.stringify(value)} must be a bare origin (${url.origin}), without path, query or credentials.`,
    );
  }
  return url.origin;
}

function originOfReferer(referer: string): string | null {
  try {
    const o = new URL(referer).origin;
    return o === 'null' ? null : o;
  } catch {
    return null;
  }
}

/**
 * The Fetch Metadata / Origin layer of CSRF protection for an unsafe request:
 * `Sec-Fetch-Site` when the browser sent it (`same-origin` passes, `same-site` only when allowed,
 * anything else fails); otherwise an exact match of `Origin`, or failing that of the `Referer`'s
 * origin, against `allowed`. `missing` means none of the three headers was there.
 */
export function checkRequestOrigin(headers: OriginHeaders, allowed: readonly string[], allowSameSite = false): OriginCheck {
  const site = headers.secFetchSite?.trim().toLowerCase();
  if (site) {
    if (site === 'same-origin') return { ok: true, via: 'fetch-metadata' };
    if (site === 'same-site') return allowSameSite ? { ok: true, via: 'fetch-metadata' } : { ok: false, reason: 'same_site' };
    if (site === 'none') return { ok: false, reason: 'fetch_site_none' };
    return { ok: false, reason: 'cross_site' };
  }
  if (headers.origin !== undefined && headers.origin !== '') {
    // Exact comparison: "null", "https://example.com.evil" and case or port variants all fail.
    return allowed.includes(headers.origin) ? { ok: true, via: 'origin' } : { ok: false, reason: 'origin_mismatch' };
  }
  if (headers.referer !== undefined && headers.referer !== '') {
    const o = originOfReferer(headers.referer);
    return o !== null && allowed.includes(o) ? { ok: true, via: 'referer' } : { ok: false, reason: 'referer_mismatch' };
  }
  return { ok: false, reason: 'missing' };
}
