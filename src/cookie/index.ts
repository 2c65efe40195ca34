/**
 * Cookie header parsing (lenient, targeted) and Set-Cookie serialization (strict).
 *
 * The parser only looks for one cookie name and returns every value sent under it, because a
 * session layer must see duplicates (cookie tossing, path shadowing) that a general parser such as
 * `cookie.parse` hides by keeping the first. It never decodes percent-escapes and never builds an
 * object keyed by attacker-chosen names.
 */

/**
 * Every value sent under exactly `name` (case-sensitive) in a Cookie header, in header order. One
 * pair of surrounding double quotes is stripped. Values longer than `maxLength` are returned as
 * the empty string so callers reject them without further work.
 */
export function readCookie(header: string | undefined, name: string, maxLength = 4096): string[] {
  const out: string[] = [];
  if (!header) return out;
  const len = header.length;
  const nlen = name.length;
  let pos = 0;
  while (pos < len) {
    // Skip the optional whitespace after a separator.
    let c = header.charCodeAt(pos);
    while (c === 0x20 || c === 0x09) c = header.charCodeAt(++pos);
    let end = header.indexOf(';', pos);
    if (end === -1) end = len;
    if (end - pos > nlen && header.charCodeAt(pos + nlen) === 0x3d /* = */ && header.startsWith(name, pos)) {
      let vs = pos + nlen + 1;
      let ve = end;
      // Trailing whitespace before ';' is not part of the value.
      while (ve > vs && (header.charCodeAt(ve - 1) === 0x20 || header.charCodeAt(ve - 1) === 0x09)) ve--;
      if (ve - vs >= 2 && header.charCodeAt(vs) === 0x22 && header.charCodeAt(ve - 1) === 0x22) {
        vs++;
        ve--;
      }
      out.push(ve - vs > maxLength ? '' : header.slice(vs, ve));
    } else if (end - pos === nlen && header.startsWith(name, pos)) {
      out.push(''); // `name` with no '=': treat as an empty value (A02).
    }
    pos = end + 1;
  }
  return out;
}

/** SameSite attribute values. */
export type SameSite = 'lax' | 'strict' | 'none';

/** Set-Cookie attributes of the session cookie. */
export interface CookieAttributes {
  name: string;
  path: string;
  domain?: string | undefined;
  secure: boolean;
  httpOnly: boolean;
  sameSite: SameSite | false;
  partitioned?: boolean | undefined;
  priority?: 'low' | 'medium' | 'high' | undefined;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;
const PATH_VALUE = /^\/[\x20-\x3A\x3C-\x7E]*$/;
const DOMAIN_VALUE = /^\.?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * Check attributes against the RFC 6265 grammar and the cookie prefix rules. Returns the problem
 * as a sentence, or null when the attributes are valid.
 */
export function cookieAttributesProblem(a: CookieAttributes): string | null {
  if (!TOKEN.test(a.name)) {
    return `cookie name ${JSON.stringify(a.name)} is not a valid token (letters, digits and !#$%&'*+-.^_\`|~ only).`;
  }
  if (!PATH_VALUE.test(a.path)) {
    return `cookie path ${JSON.stringify(a.path)} must start with "/" and contain no ";" or control characters.`;
  }
  if (a.domain !== undefined && !DOMAIN_VALUE.test(a.domain)) {
    return `cookie domain ${JSON.stringify(a.domain)} is not a valid host name.`;
  }
  const lower = a.name.toLowerCase();
  if (lower.startsWith('__host-') && (!a.secure || a.path !== '/' || a.domain !== undefined)) {
    return `a "__Host-" cookie must be Secure, have Path=/ and no Domain; change the cookie name or those options.`;
  }
  if (lower.startsWith('__secure-') && !a.secure) {
    return `a "__Secure-" cookie must be Secure.`;
  }
  if (a.sameSite === 'none' && !a.secure) return `SameSite=None requires Secure.`;
  if (a.partitioned && !a.secure) return `a Partitioned cookie must be Secure.`;
  return null;
}

/** A compiled cookie: the attribute suffix is built once, so each Set-Cookie is one concatenation. */
export interface CompiledCookie {
  readonly attributes: Readonly<CookieAttributes>;
  /** `Set-Cookie` value carrying `value`; `maxAge` in seconds makes it persistent (`Expires` from `now`). */
  serialize(value: string, maxAge?: number, now?: number): string;
  /** `Set-Cookie` value that deletes the cookie. */
  clear(): string;
}

/** Validate and compile cookie attributes. Throws a TypeError naming the problem. */
export function compileCookie(attributes: CookieAttributes): CompiledCookie {
  const problem = cookieAttributesProblem(attributes);
  if (problem) throw new TypeError(problem);
  let suffix = `; Path=${attributes.path}`;
  if (attributes.domain !== undefined) suffix += `; Domain=${attributes.domain}`;
  if (attributes.secure) suffix += '; Secure';
  if (attributes.httpOnly) suffix += '; HttpOnly';
  if (attributes.sameSite) {
    suffix += `; SameSite=${attributes.sameSite[0]?.toUpperCase()}${attributes.sameSite.slice(1)}`;
  }
  if (attributes.partitioned) suffix += '; Partitioned';
  if (attributes.priority) suffix += `; Priority=${attributes.priority[0]?.toUpperCase()}${attributes.priority.slice(1)}`;
  const prefix = `${attributes.name}=`;
  const cleared = `${prefix}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT${suffix}`;
  // `Expires` has a resolution of one second, and formatting a date costs about a microsecond: the
  // last `; Max-Age=…; Expires=…` part is kept for as long as the second and the max age stay put.
  let lastSecs = Number.NaN;
  let lastSecond = Number.NaN;
  let lastLifetime = '';
  return {
    attributes: Object.freeze({ ...attributes }),
    serialize(value, maxAge, now = Date.now()) {
      // Re-validated on every write: a value with ';' or a control character is refused, never cut.
      if (!COOKIE_VALUE.test(value)) throw new TypeError('cookie value contains characters not allowed in a cookie.');
      if (maxAge === undefined) return prefix + value + suffix;
      const secs = Math.max(0, Math.floor(maxAge));
      const second = Math.floor((now + secs * 1000) / 1000);
      if (second !== lastSecond || secs !== lastSecs) {
        lastLifetime = `; Max-Age=${secs}; Expires=${new Date(second * 1000).toUTCString()}`;
        lastSecond = second;
        lastSecs = secs;
      }
      return prefix + value + lastLifetime + suffix;
    },
    clear: () => cleared,
  };
}
