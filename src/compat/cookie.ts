import { type SerializeOptions, serializeCookie } from './cookie-header.js';
import { deprecate } from './warn.js';

/** Cookie options of `session({ cookie })`, as in express-session. */
export interface CookieOptions {
  /** Lifetime in ms from now; sets `expires`. Default `null` (a browser-session cookie). */
  maxAge?: number | null | undefined;
  /** Rarely wanted: prefer `maxAge`. */
  expires?: Date | null | undefined;
  /** Kept as-is when a stored cookie is inflated. */
  originalMaxAge?: number | null | undefined;
  /** Default `true`. */
  httpOnly?: boolean | undefined;
  /** `true`, `false` or `'auto'` (secure when the request is). Default unset (not secure). */
  secure?: boolean | 'auto' | undefined;
  /** `true`/`'strict'`, `'lax'`, `'none'`, or `'auto'` (`none` on secure requests, else `lax`). */
  sameSite?: boolean | 'lax' | 'strict' | 'none' | 'auto' | undefined;
  /** Default unset (host-only cookie). */
  domain?: string | undefined;
  /** Default `'/'`. Requests outside the path get no session. */
  path?: string | undefined;
  /** CHIPS partitioned cookie attribute. */
  partitioned?: boolean | undefined;
  /** `'low'`, `'medium'` or `'high'`. */
  priority?: 'low' | 'medium' | 'high' | undefined;
}

/**
 * The session cookie, as `req.session.cookie`: the same class and behaviour as express-session's
 * `Cookie`. `maxAge` is the remaining lifetime in ms (read live from `expires`), `originalMaxAge`
 * the lifetime it was given, and `expires` the absolute expiry (`null` for a browser-session cookie).
 * It serializes to the same JSON stores already hold.
 */
export class Cookie {
  declare path: string;
  declare httpOnly: boolean;
  declare originalMaxAge: number | null;
  declare secure: boolean | 'auto' | undefined;
  declare sameSite: boolean | 'lax' | 'strict' | 'none' | 'auto' | undefined;
  declare domain: string | undefined;
  declare partitioned: boolean | undefined;
  declare priority: 'low' | 'medium' | 'high' | undefined;
  declare _expires: Date | null | undefined;
  [key: string]: unknown;

  /** Create a cookie from options (or from the `cookie` object a store returned). */
  constructor(options?: CookieOptions | Record<string, unknown>) {
    this.path = '/';
    this.maxAge = null;
    this.httpOnly = true;
    if (options) {
      if (typeof options !== 'object') throw new TypeError('argument options must be a object');
      for (const key in options) {
        if (key !== 'data') this[key] = (options as Record<string, unknown>)[key];
      }
    }
    if (this.originalMaxAge === undefined || this.originalMaxAge === null) this.originalMaxAge = this.maxAge;
  }

  /** Absolute expiry, or `null` for a cookie that lasts as long as the browser session. */
  set expires(date: Date | null | undefined) {
    this._expires = date;
    this.originalMaxAge = this.maxAge;
  }

  get expires(): Date | null | undefined {
    return this._expires;
  }

  /** Remaining lifetime in ms (negative once expired), or `null`. Setting it moves `expires`. */
  set maxAge(ms: number | Date | null | undefined) {
    if (ms && typeof ms !== 'number' && !(ms instanceof Date)) throw new TypeError('maxAge must be a number or Date');
    if (ms instanceof Date) deprecate('maxAge as Date; pass number of milliseconds instead');
    this.expires = typeof ms === 'number' ? new Date(Date.now() + ms) : ms;
  }

  get maxAge(): number | null {
    const expires = this.expires;
    return expires instanceof Date ? expires.valueOf() - Date.now() : (expires as null);
  }

  /** The attributes, in the order express-session writes them. */
  get data(): {
    originalMaxAge: number | null;
    partitioned: boolean | undefined;
    priority: 'low' | 'medium' | 'high' | undefined;
    expires: Date | null | undefined;
    secure: boolean | 'auto' | undefined;
    httpOnly: boolean;
    domain: string | undefined;
    path: string;
    sameSite: boolean | 'lax' | 'strict' | 'none' | 'auto' | undefined;
  } {
    return {
      originalMaxAge: this.originalMaxAge,
      partitioned: this.partitioned,
      priority: this.priority,
      expires: this._expires,
      secure: this.secure,
      httpOnly: this.httpOnly,
      domain: this.domain,
      path: this.path,
      sameSite: this.sameSite,
    };
  }

  /** Serialize as a Set-Cookie value. */
  serialize(name: string, val: string): string {
    return serializeCookie(name, val, this.data as SerializeOptions);
  }

  /** What stores persist (`cookie.expires` is what they derive their TTL from). */
  toJSON(): Cookie['data'] {
    return this.data;
  }
}

// express-session's Cookie has its accessors and methods enumerable on the prototype (an object
// literal); `for...in` over a cookie sees them there too. Nothing observable depends on it, so the
// class keeps the usual non-enumerable members.
