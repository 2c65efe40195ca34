import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { deferUntilCommitted } from '../adapters/express/response.js';
import { OptionsError } from '../index.js';
import { Cookie, type CookieOptions } from './cookie.js';
import { parseCookieHeader } from './cookie-header.js';
import { type Callback, Session, type SessionJson, type StoreLike, setRequestHooks } from './session.js';
import { type Secret, sign, unsignAny } from './signature.js';
import { inflateSession, MemoryStore, Store, type StoreConstructor } from './store.js';
import { deprecate } from './warn.js';

export type { CookieOptions } from './cookie.js';
export type { Callback, SessionJson, StoreLike } from './session.js';
export type { StoreConstructor } from './store.js';
export { Cookie, MemoryStore, Session, Store };

/** Options of {@link session}: exactly express-session 1.19's. */
export interface SessionOptions {
  /** Secret(s) that sign the cookie; the first signs, all verify (rotation). Required (or `req.secret` from cookie-parser). */
  secret?: Secret | Secret[] | undefined;
  /** Cookie name. Default `'connect.sid'`. */
  name?: string | undefined;
  /** Old alias of `name`. */
  key?: string | undefined;
  /** Any express-session store. Default a new {@link MemoryStore}. */
  store?: StoreLike | Store | undefined;
  /** Cookie attributes, or a function of the request returning them. */
  cookie?: CookieOptions | ((req: IncomingMessage) => CookieOptions) | undefined;
  /** Generates new session IDs. Default 24 random bytes in base64url (32 characters). */
  genid?: ((req: IncomingMessage) => string) | undefined;
  /** Trust `X-Forwarded-Proto` (`true`), never (`false`), or follow Express' `trust proxy` (unset). */
  proxy?: boolean | undefined;
  /** Save the session at the end of every request even when unmodified. Default `true` (with a deprecation warning). */
  resave?: boolean | undefined;
  /** Send the cookie (and so reset its expiry) on every response. Default `false`. */
  rolling?: boolean | undefined;
  /** Save (and send a cookie for) a new session nobody modified. Default `true` (with a deprecation warning). */
  saveUninitialized?: boolean | undefined;
  /** What `req.session = null` / `delete req.session` does: `'keep'` (default) or `'destroy'`. */
  unset?: 'destroy' | 'keep' | undefined;
}

type Req = IncomingMessage & {
  session?: Session | null | undefined;
  sessionID?: string | undefined;
  sessionStore?: StoreLike;
  originalUrl?: string;
  secret?: Secret;
  secure?: boolean;
  signedCookies?: Record<string, unknown>;
  cookies?: Record<string, unknown>;
};
type Next = (err?: unknown) => void;

/** The middleware {@link session} returns (Connect/Express signature). */
export type SessionMiddleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

/** `session` with the constructors attached, as `require('express-session')` exposes them. */
export interface SessionFunction {
  (options?: SessionOptions): SessionMiddleware;
  Store: StoreConstructor;
  MemoryStore: typeof MemoryStore;
  Cookie: typeof Cookie;
  Session: typeof Session;
}

/**
 * express-session 1.19, reimplemented on sesh's response handling: same options, defaults,
 * warnings, cookie format (`s:` + ID + `.` + HMAC-SHA256, so existing cookies stay valid in both
 * directions), same `req.session` API and same store calls, so every express-session store works
 * unchanged. Differences (each a fix) are listed in docs/migration.md; the main one is that the
 * store write finishes before the response headers leave, so a redirect never races the save.
 */
function sessionMiddleware(options?: SessionOptions): SessionMiddleware {
  const opts = options || {};
  const cookieOptions = opts.cookie || {};
  const generateId = opts.genid || generateSessionId;
  const name = opts.name || opts.key || 'connect.sid';
  const store = (opts.store || new MemoryStore()) as StoreLike;
  const trustProxy = opts.proxy;
  let resaveSession = opts.resave;
  const rollingSessions = Boolean(opts.rolling);
  let saveUninitializedSession = opts.saveUninitialized;
  let secret = opts.secret as Secret | Secret[] | undefined;

  if (typeof generateId !== 'function') throw new OptionsError('genid option must be a function');
  if (resaveSession === undefined) {
    deprecate('undefined resave option; provide resave option');
    resaveSession = true;
  }
  if (saveUninitializedSession === undefined) {
    deprecate('undefined saveUninitialized option; provide saveUninitialized option');
    saveUninitializedSession = true;
  }
  if (opts.unset && opts.unset !== 'destroy' && opts.unset !== 'keep') {
    throw new OptionsError('unset option must be "destroy" or "keep"');
  }
  const unsetDestroy = opts.unset === 'destroy';
  if (Array.isArray(secret) && secret.length === 0) {
    throw new OptionsError('secret option array must contain one or more strings');
  }
  const secretList: Secret[] | undefined = secret ? (Array.isArray(secret) ? secret : [secret]) : undefined;
  secret = undefined;
  if (!secretList) deprecate('req.secret; provide secret option');
  if (
    typeof store.get !== 'function' ||
    typeof store.set !== 'function' ||
    typeof store.destroy !== 'function' ||
    typeof store.on !== 'function'
  ) {
    throw new OptionsError('store option must be an express-session store (an EventEmitter with get, set and destroy methods)');
  }
  if (process.env.NODE_ENV === 'production' && store instanceof MemoryStore) {
    console.warn(
      'Warning: connect.session() MemoryStore is not\ndesigned for a production environment, as it will leak\nmemory, and will not scale past a single process.',
    );
  }

  const resolveCookieOptions = (req: Req): CookieOptions => (typeof cookieOptions === 'function' ? cookieOptions(req) : cookieOptions);

  const generateOn = (req: Req): void => {
    // express-session reads `secure`/`sameSite: 'auto'` from the option object even when `cookie`
    // is a function (and then sends `Secure` as if it were `true`); we resolve the function's result.
    const resolved = resolveCookieOptions(req);
    req.sessionID = generateId(req);
    req.session = new Session(req);
    req.session.cookie = new Cookie(resolved);
    const isSecure = issecure(req, trustProxy);
    if (resolved.secure === 'auto') req.session.cookie.secure = isSecure;
    if (resolved.sameSite === 'auto') req.session.cookie.sameSite = isSecure ? 'none' : 'lax';
  };

  // Same as express-session: the store gets a generate(req); kept when another middleware set one.
  if (typeof store.generate !== 'function') store.generate = generateOn;
  const storeImplementsTouch = typeof store.touch === 'function';

  let storeReady = true;
  store.on('disconnect', () => {
    storeReady = false;
  });
  store.on('connect', () => {
    storeReady = true;
  });

  return function session(request: IncomingMessage, res: ServerResponse, next: Next): void {
    const req = request as Req;
    if (req.session) {
      next();
      return;
    }
    // A disconnected store means "no session" for this request, as in express-session.
    if (!storeReady) {
      next();
      return;
    }
    const originalPath = originalPathname(req);
    const resolvedCookieOptions = resolveCookieOptions(req);
    if (originalPath.indexOf(resolvedCookieOptions.path || '/') !== 0) {
      next();
      return;
    }
    if (!secretList && !req.secret) {
      next(new Error('secret option required for sessions'));
      return;
    }
    const secrets = secretList || [req.secret as Secret];

    let originalHash: string | undefined;
    let originalId: string | undefined;
    let savedHash: string | undefined;
    let touched = false;
    let loaded = false;
    let committed = false;
    let gone = false;
    let atCommit: { session: Session | null | undefined; hash: string | null } | undefined;

    req.sessionStore = store;
    const cookieId = getcookie(req, name, secrets);
    req.sessionID = cookieId;

    const hash = (sess: Session): string => hashSession(sess);
    const isModified = (sess: Session) => originalId !== sess.id || originalHash !== hash(sess);
    const isSaved = (sess: Session) => originalId === sess.id && savedHash === hash(sess);
    const shouldDestroy = () => Boolean(req.sessionID) && unsetDestroy && req.session == null;
    const shouldSave = (): boolean => {
      if (typeof req.sessionID !== 'string' || !req.session) return false;
      return !saveUninitializedSession && !savedHash && cookieId !== req.sessionID ? isModified(req.session) : !isSaved(req.session);
    };
    const shouldTouch = () => typeof req.sessionID === 'string' && cookieId === req.sessionID && !shouldSave();
    const shouldSetCookie = (): boolean => {
      if (typeof req.sessionID !== 'string' || !req.session) return false;
      return cookieId !== req.sessionID
        ? Boolean(saveUninitializedSession) || isModified(req.session)
        : rollingSessions || (req.session.cookie.expires != null && isModified(req.session));
    };

    const wrapmethods = (sess: Session): void => {
      const origReload = sess.reload;
      const origSave = sess.save;
      Object.defineProperty(sess, 'reload', {
        configurable: true,
        enumerable: false,
        writable: true,
        value: function reload(this: Session, callback: Callback) {
          const self = this;
          origReload.call(this, function rewrapped(this: unknown, ...args: unknown[]) {
            if (req.session && req.session !== self) wrapmethods(req.session);
            (callback as (...a: unknown[]) => void).apply(this, args);
          });
          return this;
        },
      });
      Object.defineProperty(sess, 'save', {
        configurable: true,
        enumerable: false,
        writable: true,
        value: function save(this: Session, callback?: Callback) {
          savedHash = hash(this);
          origSave.call(this, callback);
          return this;
        },
      });
    };

    const generate = (): void => {
      generateOn(req);
      const sess = req.session as Session;
      originalId = req.sessionID;
      originalHash = hash(sess);
      wrapmethods(sess);
    };
    const inflate = (sess: SessionJson): void => {
      inflateSession(req, sess);
      originalId = req.sessionID;
      originalHash = hash(req.session as Session);
      if (!resaveSession) savedHash = originalHash;
      wrapmethods(req.session as Session);
    };
    setRequestHooks(req, {
      // Session#regenerate: a new session, methods wrapped like the first one.
      generate: () => {
        generateOn(req);
        wrapmethods(req.session as Session);
      },
      createSession: (sess) => inflateSession(req, sess),
    });

    /** The end-of-request store write: destroy (unset), save, or touch, as express-session decides. */
    const persist = async (final: boolean): Promise<void> => {
      if (shouldDestroy()) {
        await call((cb) => store.destroy(req.sessionID as string, cb));
        return;
      }
      if (!req.session) return;
      if (!touched) {
        req.session.touch();
        touched = true;
      }
      if (shouldSave()) {
        const sess = req.session;
        // A session this request loaded may have been destroyed meanwhile (logout in another
        // request): writing it back would resurrect it. Check it still exists first.
        if (loaded && sess.id === cookieId && originalId === sess.id) {
          const current = await call<SessionJson | null | undefined>((cb) => store.get(sess.id, cb));
          if (!current) {
            gone = true;
            return;
          }
        }
        await call((cb) => sess.save(cb));
      } else if (!final && storeImplementsTouch && shouldTouch()) {
        const sess = req.session;
        await call((cb) => (store.touch as NonNullable<StoreLike['touch']>)(req.sessionID as string, sess, cb));
      }
    };

    const cookieHeader = (): string[] => {
      if (gone || !req.session) return [];
      if (!shouldSetCookie()) return [];
      if (req.session.cookie.secure && !issecure(req, trustProxy)) return [];
      if (!touched) {
        req.session.touch();
        touched = true;
      }
      const signed = `s:${sign(req.sessionID as string, secrets[0] as Secret)}`;
      return [req.session.cookie.serialize(name, signed)];
    };

    // Streaming responses commit at their first write; a change made after it is saved at the end.
    const origEnd = res.end;
    res.end = function end(this: ServerResponse, ...args: unknown[]) {
      const finish = () => (origEnd as (...a: unknown[]) => ServerResponse).apply(res, args);
      if (!committed || !atCommit) return finish();
      const sess = req.session;
      const changed = sess !== atCommit.session || (sess ? hash(sess) : null) !== atCommit.hash;
      if (!changed) return finish();
      persist(true).then(finish, () => {
        res.destroy();
      });
      return this;
    } as typeof res.end;

    deferUntilCommitted(
      res,
      async () => {
        // What the store write below is based on; a change after this point is saved at `end`.
        atCommit = { session: req.session, hash: req.session ? hash(req.session) : null };
        await persist(false);
        const setCookie = cookieHeader();
        committed = true;
        return { setCookie };
      },
      undefined,
      (err) => {
        committed = true;
        const status = (err as { status?: unknown } | null)?.status;
        return status === 503 ? 503 : 500;
      },
    );

    if (!req.sessionID) {
      generate();
      next();
      return;
    }
    store.get(req.sessionID, (err: { code?: unknown } | null | undefined, sess) => {
      if (err && err.code !== 'ENOENT') {
        next(err);
        return;
      }
      try {
        if (err || !sess) {
          generate();
        } else {
          inflate(sess);
          loaded = true;
        }
      } catch (e) {
        next(e);
        return;
      }
      next();
    });
  };
}

/** Promisify one store call; a callback error rejects. */
function call<T = void>(fn: (cb: (err?: unknown, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    fn((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}

/** Default ID: 24 random bytes, base64url (what uid-safe(24) produces). */
function generateSessionId(): string {
  return randomBytes(24).toString('base64url');
}

/** The pathname of the original request URL (before Express strips mount paths). */
function originalPathname(req: Req): string {
  let url = req.originalUrl ?? req.url ?? '';
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url);
  if (scheme) url = url.slice(scheme[0].length);
  const cut = url.search(/[?#]/);
  const pathname = cut === -1 ? url : url.slice(0, cut);
  return pathname || '/';
}

/** The session ID from the (first) cookie of that name, when its signature verifies. */
function getcookie(req: Req, name: string, secrets: readonly Secret[]): string | undefined {
  const header = req.headers.cookie;
  let val: string | undefined;
  if (header) {
    const raw = parseCookieHeader(header)[name];
    if (raw && raw.slice(0, 2) === 's:') val = unsignAny(raw.slice(2), secrets) || undefined;
  }
  // Back-compat with cookie-parser's parsed cookies, as in express-session.
  if (!val && req.signedCookies) {
    const signed = req.signedCookies[name];
    if (typeof signed === 'string' && signed) {
      val = signed;
      deprecate('cookie should be available in req.headers.cookie');
    }
  }
  if (!val && req.cookies) {
    const raw = req.cookies[name];
    if (typeof raw === 'string' && raw.slice(0, 2) === 's:') {
      val = unsignAny(raw.slice(2), secrets) || undefined;
      if (val) deprecate('cookie should be available in req.headers.cookie');
    }
  }
  return val;
}

/** Hash of the session's data, ignoring `cookie` (a cookie-only change is not a modification). */
function hashSession(sess: Session): string {
  const str = JSON.stringify(sess, function (this: unknown, key, val) {
    if (this === sess && key === 'cookie') return undefined;
    return val;
  });
  return createHash('sha1').update(str, 'utf8').digest('hex');
}

/** Whether the request came over TLS (directly, or per `proxy`/`trust proxy`). */
function issecure(req: Req, trustProxy: boolean | undefined): boolean {
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted) return true;
  if (trustProxy === false) return false;
  if (trustProxy !== true) return req.secure === true;
  const header = req.headers['x-forwarded-proto'];
  const value = (Array.isArray(header) ? header[0] : header) || '';
  const index = value.indexOf(',');
  const proto = index !== -1 ? value.slice(0, index).toLowerCase().trim() : value.toLowerCase().trim();
  return proto === 'https';
}

/**
 * `require('sesh/express-session')` / `import session from 'sesh/express-session'`: the
 * middleware factory, with `Store`, `MemoryStore`, `Cookie` and `Session` attached as in
 * express-session.
 */
export const session: SessionFunction = Object.assign(sessionMiddleware, {
  Store,
  MemoryStore,
  Cookie,
  Session,
});

export default session;

// CommonJS build: make `require('sesh/express-session')` return the factory itself, as
// `require('express-session')` does. `default` and `session` point back at it, so
// `require(...).default` and compiled `import session from` keep working. Skipped in the ESM build.
// (Test runners that emulate `module` around an ES module namespace are left alone.)
if (
  typeof module !== 'undefined' &&
  module !== null &&
  typeof module.exports === 'object' &&
  module.exports !== null &&
  Object.prototype.toString.call(module.exports) !== '[object Module]'
) {
  Object.assign(session, { default: session, session });
  module.exports = session;
}
