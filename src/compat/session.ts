import type { Cookie } from './cookie.js';

/** Callback of the express-session store and session methods. */
// biome-ignore lint/suspicious/noExplicitAny: express-session stores call back with any error value.
export type Callback = (err?: any) => void;

/**
 * The session object as a store returns it: plain JSON with a `cookie` object (whose `expires` is
 * an ISO string or a Date) and the app's keys.
 */
export interface SessionJson {
  cookie: Record<string, unknown>;
  [key: string]: unknown;
}

/** What the session machinery needs from a request. */
export interface CompatRequestLike {
  sessionID?: string | undefined;
  session?: Session | null | undefined;
  sessionStore?: StoreLike | undefined;
}

/**
 * The callback API every express-session store implements (connect-redis, connect-pg-simple,
 * memorystore, connect-mongo, ...): `get`, `set`, `destroy`, optionally `touch`, `all`, `length`,
 * `clear`, and the EventEmitter `on` for `connect`/`disconnect`.
 */
export interface StoreLike {
  // The session parameters are `any` so stores typed against @types/express-session (whose
  // SessionData and Cookie types are their own) are accepted as they are.
  // biome-ignore lint/suspicious/noExplicitAny: see above.
  get(sid: string, callback: (err: any, session?: any) => void): void;
  // biome-ignore lint/suspicious/noExplicitAny: see above.
  set(sid: string, session: any, callback?: (err?: any) => void): void;
  // biome-ignore lint/suspicious/noExplicitAny: see above.
  destroy(sid: string, callback?: (err?: any) => void): void;
  // biome-ignore lint/suspicious/noExplicitAny: see above.
  touch?(sid: string, session: any, callback?: (err?: any) => void): void;
  // biome-ignore lint/suspicious/noExplicitAny: the result maps IDs to sessions, or is an array in some stores.
  all?(callback: (err: any, sessions?: any) => void): void;
  // biome-ignore lint/suspicious/noExplicitAny: see above.
  length?(callback: (err: any, length?: number) => void): void;
  // biome-ignore lint/suspicious/noExplicitAny: see above.
  clear?(callback?: (err?: any) => void): void;
  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter listener signature.
  on(event: string | symbol, listener: (...args: any[]) => void): unknown;
  /** Set by the middleware (as express-session does) when the store has none. */
  // biome-ignore lint/suspicious/noExplicitAny: the request type of whichever middleware set it.
  generate?: (req: any) => void;
  /** Present on stores that extend express-session's (or our) `Store`. */
  // biome-ignore lint/suspicious/noExplicitAny: see above.
  createSession?: (req: any, session: any) => unknown;
  /** Present on stores that extend express-session's (or our) `Store`. */
  // biome-ignore lint/suspicious/noExplicitAny: see above.
  regenerate?: (req: any, callback: (err?: any) => void) => void;
}

/** The middleware's hooks for a request, so session methods build our objects with its options. */
export interface RequestHooks {
  generate(): void;
  createSession(sess: SessionJson): Session;
}

/**
 * Where the middleware leaves a request's hooks: a non-enumerable own property of the request
 * (which already carries `session`, `sessionID` and `sessionStore` of its own). Not a WeakMap
 * keyed by the request: the hooks' closures hold the request, and V8's scavenger treats WeakMap
 * values as strong, which would keep every request alive until a full GC.
 */
const HOOKS: unique symbol = Symbol('sesh.compat.hooks');

/** Install the middleware's hooks on a request. */
export function setRequestHooks(req: object, hooks: RequestHooks): void {
  Object.defineProperty(req, HOOKS, { value: hooks, configurable: true, enumerable: false, writable: true });
}

/** The hooks the middleware installed on a request, if any. */
export function requestHooks(req: object): RequestHooks | undefined {
  return (req as { [HOOKS]?: RequestHooks })[HOOKS];
}

const noop = () => {};

/**
 * `req.session`: the app's data as own enumerable properties, plus the callback-style methods of
 * express-session (`regenerate`, `destroy`, `reload`, `save`, `touch`, `resetMaxAge`) on the
 * prototype. `id` and `req` are read-only and not enumerable, so they are never stored.
 */
export class Session {
  /** The session ID (the value signed in the cookie). */
  declare readonly id: string;
  /** The request this session belongs to. */
  declare readonly req: CompatRequestLike;
  /** The session cookie (`maxAge`, `originalMaxAge`, `expires`, attributes). */
  declare cookie: Cookie;
  [key: string]: unknown;

  /** Create a session for `req` (with `req.sessionID` as its ID), copying the data's own keys. */
  constructor(req: CompatRequestLike, data?: Record<string, unknown> | null) {
    Object.defineProperty(this, 'req', { value: req });
    Object.defineProperty(this, 'id', { value: req.sessionID });
    if (typeof data === 'object' && data !== null) {
      // Keys that name a method or a prototype member (`save`, `__proto__`, `constructor`) are skipped.
      for (const prop in data) {
        if (!(prop in this)) this[prop] = data[prop];
      }
    }
  }

  /** Reset the cookie's `maxAge` to `originalMaxAge` (done for you on every request). */
  touch(): this {
    return this.resetMaxAge();
  }

  /** Reset the cookie's `maxAge` to `originalMaxAge`. */
  resetMaxAge(): this {
    this.cookie.maxAge = this.cookie.originalMaxAge;
    return this;
  }

  /** Write the session to the store now (it is also saved at the end of the request when needed). */
  save(callback?: Callback): this {
    (this.req.sessionStore as StoreLike).set(this.id, this, callback || noop);
    return this;
  }

  /** Re-read the session from the store into `req.session`; an error when it no longer exists. */
  reload(callback: Callback): this {
    const req = this.req;
    const store = req.sessionStore as StoreLike;
    store.get(this.id, (err, sess) => {
      if (err) return callback(err);
      if (!sess) return callback(new Error('failed to load session'));
      const hooks = requestHooks(req);
      if (hooks) hooks.createSession(sess);
      else if (typeof store.createSession === 'function') (store.createSession as (r: unknown, s: unknown) => unknown)(req, sess);
      callback();
    });
    return this;
  }

  /** Delete the session from the store and remove `req.session`. */
  destroy(callback?: Callback): this {
    delete this.req.session;
    (this.req.sessionStore as StoreLike).destroy(this.id, callback);
    return this;
  }

  /** Destroy this session and put a new one, with a new ID, in `req.session`. */
  regenerate(callback: Callback): this {
    const req = this.req;
    const store = req.sessionStore as StoreLike;
    const hooks = requestHooks(req);
    if (hooks) {
      store.destroy(req.sessionID as string, (err) => {
        hooks.generate();
        callback(err);
      });
    } else {
      (store.regenerate as (r: unknown, fn: Callback) => void)(req, callback);
    }
    return this;
  }
}
