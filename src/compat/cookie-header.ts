/**
 * Cookie header parsing and Set-Cookie serialization with exactly the behaviour of the `cookie`
 * 0.7 package that express-session 1.19 uses, so headers come out byte for byte the same.
 */

/** Attributes accepted by {@link serializeCookie} (the shape of `Cookie#data`). */
export interface SerializeOptions {
  maxAge?: number | null | undefined;
  domain?: string | undefined;
  path?: string | undefined;
  expires?: Date | null | undefined;
  httpOnly?: boolean | undefined;
  secure?: boolean | 'auto' | undefined;
  partitioned?: boolean | undefined;
  priority?: 'low' | 'medium' | 'high' | string | undefined;
  sameSite?: boolean | 'lax' | 'strict' | 'none' | 'auto' | string | undefined;
}

const cookieNameRegExp = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const cookieValueRegExp = /^("?)[\u0021\u0023-\u002B\u002D-\u003A\u003C-\u005B\u005D-\u007E]*\1$/;
const domainValueRegExp = /^([.]?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const pathValueRegExp = /^[\u0020-\u003A\u003D-\u007E]*$/;

/** Parse a Cookie header: the first value of each name wins; values are URI-decoded when possible. */
export function parseCookieHeader(str: string): Record<string, string> {
  const obj: Record<string, string> = Object.create(null);
  const len = str.length;
  if (len < 2) return obj;
  let index = 0;
  do {
    const eqIdx = str.indexOf('=', index);
    if (eqIdx === -1) break;
    let endIdx = str.indexOf(';', index);
    if (endIdx === -1) {
      endIdx = len;
    } else if (eqIdx > endIdx) {
      index = str.lastIndexOf(';', eqIdx - 1) + 1;
      continue;
    }
    const keyStart = startIndex(str, index, eqIdx);
    const keyEnd = endIndex(str, eqIdx, keyStart);
    const key = str.slice(keyStart, keyEnd);
    if (!Object.hasOwn(obj, key)) {
      let valStart = startIndex(str, eqIdx + 1, endIdx);
      let valEnd = endIndex(str, endIdx, valStart);
      if (str.charCodeAt(valStart) === 0x22 && str.charCodeAt(valEnd - 1) === 0x22) {
        valStart++;
        valEnd--;
      }
      obj[key] = tryDecode(str.slice(valStart, valEnd));
    }
    index = endIdx + 1;
  } while (index < len);
  return obj;
}

function startIndex(str: string, index: number, max: number): number {
  let i = index;
  do {
    const code = str.charCodeAt(i);
    if (code !== 0x20 && code !== 0x09) return i;
  } while (++i < max);
  return max;
}

function endIndex(str: string, index: number, min: number): number {
  let i = index;
  while (i > min) {
    const code = str.charCodeAt(--i);
    if (code !== 0x20 && code !== 0x09) return i + 1;
  }
  return min;
}

function tryDecode(str: string): string {
  if (str.indexOf('%') === -1) return str;
  try {
    return decodeURIComponent(str);
  } catch {
    return str;
  }
}

/** Serialize one Set-Cookie value; throws `TypeError` on invalid attributes, as the cookie package. */
export function serializeCookie(name: string, val: string, opt?: SerializeOptions): string {
  if (!cookieNameRegExp.test(name)) throw new TypeError('argument name is invalid');
  const value = encodeURIComponent(val);
  if (!cookieValueRegExp.test(value)) throw new TypeError('argument val is invalid');
  let str = `${name}=${value}`;
  if (!opt) return str;
  if (opt.maxAge != null) {
    const maxAge = Math.floor(opt.maxAge);
    if (!Number.isFinite(maxAge)) throw new TypeError('option maxAge is invalid');
    str += `; Max-Age=${maxAge}`;
  }
  if (opt.domain) {
    if (!domainValueRegExp.test(opt.domain)) throw new TypeError('option domain is invalid');
    str += `; Domain=${opt.domain}`;
  }
  if (opt.path) {
    if (!pathValueRegExp.test(opt.path)) throw new TypeError('option path is invalid');
    str += `; Path=${opt.path}`;
  }
  if (opt.expires) {
    const expires = opt.expires;
    if (!(expires instanceof Date) || Number.isNaN(expires.valueOf())) throw new TypeError('option expires is invalid');
    str += `; Expires=${expires.toUTCString()}`;
  }
  if (opt.httpOnly) str += '; HttpOnly';
  if (opt.secure) str += '; Secure';
  if (opt.partitioned) str += '; Partitioned';
  if (opt.priority) {
    const priority = typeof opt.priority === 'string' ? opt.priority.toLowerCase() : opt.priority;
    if (priority === 'low') str += '; Priority=Low';
    else if (priority === 'medium') str += '; Priority=Medium';
    else if (priority === 'high') str += '; Priority=High';
    else throw new TypeError('option priority is invalid');
  }
  if (opt.sameSite) {
    const sameSite = typeof opt.sameSite === 'string' ? opt.sameSite.toLowerCase() : opt.sameSite;
    if (sameSite === true || sameSite === 'strict') str += '; SameSite=Strict';
    else if (sameSite === 'lax') str += '; SameSite=Lax';
    else if (sameSite === 'none') str += '; SameSite=None';
    else throw new TypeError('option sameSite is invalid');
  }
  return str;
}
