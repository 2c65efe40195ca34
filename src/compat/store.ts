import { EventEmitter } from 'node:events';
import { Cookie } from './cookie.js';
import { type Callback, type CompatRequestLike, requestHooks, Session, type SessionJson } from './session.js';

/**
 * The base of express-session stores: an EventEmitter with `regenerate`, `load` and
 * `createSession`. Subclasses implement `get`, `set`, `destroy` and optionally `touch`, `all`,
 * `length`, `clear`. Emit `disconnect` while the backend is down (requests then run without a
 * session) and `connect` when it is back.
 *
 * Like express-session's, it is a plain constructor function, so both `class X extends Store` and
 * the older `Store.call(this); util.inherits(X, Store)` pattern (memorystore, session-file-store)
 * work.
 */
export interface Store extends EventEmitter {
  // biome-ignore lint/suspicious/noExplicitAny: third-party stores call back with any error value.
  get(sid: string, callback: (err: any, session?: SessionJson | null) => void): void;
  set(sid: string, session: SessionJson | Session, callback?: Callback): void;
  destroy(sid: string, callback?: Callback): void;
  touch?(sid: string, session: SessionJson | Session, callback?: Callback): void;
  /** Destroy `req.sessionID` and generate a new session on `req`. */
  regenerate(req: CompatRequestLike, callback: Callback): void;
  /** Load a session by ID as a {@link Session} (undefined when missing). */
  load(sid: string, callback: (err: unknown, session?: Session) => void): void;
  /** Turn the JSON a store returned into `req.session` (a {@link Session} with a {@link Cookie}). */
  createSession(req: CompatRequestLike, session: SessionJson): Session;
  /** Installed by the middleware: put a new session on `req`. */
  generate?: (req: CompatRequestLike) => void;
}

/** The constructor of {@link Store}, callable with `new` or (for old-style subclasses) `.call(this)`. */
export interface StoreConstructor {
  new (): Store;
  (this: Store): void;
  prototype: Store;
}

/** @see {@link Store} */
export const Store = function Store(this: Store) {
  EventEmitter.call(this);
} as unknown as StoreConstructor;

Object.setPrototypeOf(Store.prototype, EventEmitter.prototype);
Object.setPrototypeOf(Store, EventEmitter);
(Store as unknown as { super_: unknown }).super_ = EventEmitter;

function defineMethod(name: string, fn: (...args: never[]) => unknown): void {
  Object.defineProperty(Store.prototype, name, { configurable: true, enumerable: false, writable: true, value: fn });
}

defineMethod('regenerate', function regenerate(this: Store, req: CompatRequestLike, callback: Callback) {
  this.destroy(req.sessionID as string, (err) => {
    const hooks = requestHooks(req);
    if (hooks) hooks.generate();
    else this.generate?.(req);
    callback(err);
  });
});

defineMethod('load', function load(this: Store, sid: string, callback: (err: unknown, session?: Session) => void) {
  this.get(sid, (err, sess) => {
    if (err) return callback(err);
    if (!sess) return callback(undefined);
    const req: CompatRequestLike = { sessionID: sid, sessionStore: this as never };
    callback(null, this.createSession(req, sess));
  });
});

defineMethod('createSession', function createSession(this: Store, req: CompatRequestLike, sess: SessionJson) {
  return inflateSession(req, sess);
});

/**
 * Build `req.session` from stored JSON: the cookie becomes a {@link Cookie} (a string `expires`
 * becomes a Date, `originalMaxAge` is kept) and the data is copied onto a new {@link Session}.
 */
export function inflateSession(req: CompatRequestLike, sess: SessionJson): Session {
  const expires = sess.cookie.expires;
  const originalMaxAge = sess.cookie.originalMaxAge as number | null;
  const cookie = new Cookie(sess.cookie);
  if (typeof expires === 'string') cookie.expires = new Date(expires);
  cookie.originalMaxAge = originalMaxAge;
  sess.cookie = cookie as unknown as Record<string, unknown>;
  const session = new Session(req, sess);
  req.session = session;
  return session;
}

let productionWarned = false;

/**
 * express-session's in-process store, with the same API and stored form (`store.sessions` maps IDs
 * to JSON text). Unlike express-session's, expired sessions are also swept on writes (at most once
 * a minute), so sessions that are never read again do not pile up. Sessions without an expiry
 * (no `cookie.maxAge`) still live until the process ends: for development and tests only.
 */
export class MemoryStore extends (Store as unknown as new () => Store) {
  /** Session ID → JSON text of the session. */
  sessions: Record<string, string> = Object.create(null);
  #lastSweep = Date.now();

  constructor() {
    super();
    if (process.env.NODE_ENV === 'production' && !productionWarned) {
      productionWarned = true;
      console.warn(
        'Warning: connect.session() MemoryStore is not\ndesigned for a production environment, as it will leak\nmemory, and will not scale past a single process.',
      );
    }
  }

  /** All live sessions, as an object keyed by ID. */
  all(callback: (err: unknown, sessions?: Record<string, SessionJson>) => void): void {
    const sessions: Record<string, SessionJson> = Object.create(null);
    for (const sid of Object.keys(this.sessions)) {
      const session = this.#read(sid);
      if (session) sessions[sid] = session;
    }
    if (callback) setImmediate(callback, null, sessions);
  }

  /** Delete every session. */
  clear(callback?: Callback): void {
    this.sessions = Object.create(null);
    if (callback) setImmediate(callback);
  }

  /** Delete one session. */
  override destroy(sid: string, callback?: Callback): void {
    delete this.sessions[sid];
    if (callback) setImmediate(callback);
  }

  /** Read one session (expired ones are deleted and read as missing). */
  override get(sid: string, callback: (err: unknown, session?: SessionJson | null) => void): void {
    setImmediate(callback, null, this.#read(sid));
  }

  /** Store a session as JSON. */
  override set(sid: string, session: SessionJson | Session, callback?: Callback): void {
    this.sessions[sid] = JSON.stringify(session);
    this.#maybeSweep();
    if (callback) setImmediate(callback);
  }

  /** Count live sessions. */
  length(callback: (err: unknown, length?: number) => void): void {
    this.all((err, sessions) => {
      if (err) return callback(err);
      callback(null, Object.keys(sessions ?? {}).length);
    });
  }

  /** Move the expiry of an existing session (its cookie); a missing session stays missing. */
  override touch(sid: string, session: SessionJson | Session, callback?: Callback): void {
    const current = this.#read(sid);
    if (current) {
      current.cookie = session.cookie as Record<string, unknown>;
      this.sessions[sid] = JSON.stringify(current);
    }
    if (callback) setImmediate(callback);
  }

  #read(sid: string): SessionJson | undefined {
    const text = this.sessions[sid];
    if (!text) return undefined;
    const sess = JSON.parse(text) as SessionJson;
    if (sess.cookie) {
      const raw = sess.cookie.expires;
      const expires = typeof raw === 'string' ? new Date(raw) : (raw as Date | null | undefined);
      if (expires && expires.valueOf() <= Date.now()) {
        delete this.sessions[sid];
        return undefined;
      }
    }
    return sess;
  }

  #maybeSweep(): void {
    const now = Date.now();
    if (now - this.#lastSweep < 60_000) return;
    this.#lastSweep = now;
    for (const sid of Object.keys(this.sessions)) this.#read(sid);
  }
}
