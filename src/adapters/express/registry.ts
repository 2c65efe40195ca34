import { IncomingMessage } from 'node:http';
import type { Request } from 'express';
import { SeshError, type SessionData, type SessionState, type Sessions } from '../../index.js';
import { anchorOf } from './response.js';

/** What assigning `req.session` does for a registered request, instead of replacing the property. */
export type SessionAssign = (state: SessionState<SessionData>, value: unknown) => void;

/**
 * @internal What a session middleware registered for one request (one WeakMap entry per request,
 * keyed by the request). It holds no reference to the request: a WeakMap value that leads back to
 * its key keeps the request alive through young-generation collections (see `deferUntilCommitted`).
 */
export class Registration {
  constructor(
    readonly state: SessionState<SessionData>,
    /** The engine, or null for a state attached with {@link attachSessionState}. */
    readonly sessions: Sessions<SessionData> | null,
    readonly assign: SessionAssign | null,
  ) {}
}

const registrations = new WeakMap<object, Registration>();
/** Request prototypes that carry the shared `session` accessor. */
const exposing = new WeakSet<object>();

/**
 * The registration of `obj` or of the nearest object it inherits from, below `anchor`: a wrapper
 * made with `Object.create(req)` sees the session of `req`, as it did when `req.session` was an
 * own property of `req`.
 */
function registrationOf(obj: object, anchor: object): Registration | undefined {
  let o: object | null = obj;
  for (let depth = 0; o !== null && o !== anchor && depth < 8; depth++) {
    const r = registrations.get(o);
    if (r !== undefined) return r;
    o = Object.getPrototypeOf(o);
  }
  return undefined;
}

/**
 * Put a `session` accessor on `anchor` (Express's shared request prototype), once: a registered
 * request reads its session through it, so no property is added to each request (Node gives every
 * request its own hidden class, and adding a property copies it: ~1.4 KB more garbage per
 * request). An accessor already there (another copy of sesh, loaded as ESM and CJS) still serves
 * the requests it knows. Assigning `req.session` runs the registration's `assign` hook when it has
 * one, and otherwise gives the object a plain own property, as before. False when `anchor` holds a
 * `session` that cannot be replaced.
 */
function exposeOn(anchor: object): boolean {
  if (exposing.has(anchor)) return true;
  const prev = Object.getOwnPropertyDescriptor(anchor, 'session');
  if (prev && !prev.configurable) return false;
  Object.defineProperty(anchor, 'session', {
    configurable: true,
    enumerable: false,
    get(this: object): unknown {
      const r = registrationOf(this, anchor);
      if (r !== undefined) return r.state.session;
      return prev === undefined ? undefined : prev.get ? prev.get.call(this) : prev.value;
    },
    set(this: object, value: unknown): void {
      const r = registrationOf(this, anchor);
      if (r?.assign) {
        r.assign(r.state, value);
        return;
      }
      if (r === undefined && prev?.set) {
        prev.set.call(this, value);
        return;
      }
      Object.defineProperty(this, 'session', { value, writable: true, enumerable: true, configurable: true });
    },
  });
  exposing.add(anchor);
  return true;
}

/**
 * @internal Record the session of a request (the session middlewares do it) and expose it as
 * `req.session`: through the shared accessor when the request's prototype chain allows it and no
 * `session` of its own hides it, else as an own accessor property.
 */
export function register(
  req: Request,
  state: SessionState<SessionData>,
  sessions: Sessions<SessionData> | null,
  assign: SessionAssign | null,
): Registration {
  const r = new Registration(state, sessions, assign);
  registrations.set(req, r);
  if (Object.hasOwn(req, 'session')) {
    // An earlier middleware put its own `req.session` on the request: replace it, as before.
    delete (req as { session?: unknown }).session;
  }
  const anchor = anchorOf(req, IncomingMessage.prototype);
  if (anchor === null || !exposeOn(anchor)) {
    Object.defineProperty(req, 'session', {
      configurable: true,
      enumerable: true,
      get: () => r.state.session,
      set: (value: unknown) => {
        if (assign) assign(state, value);
        else Object.defineProperty(req, 'session', { value, writable: true, enumerable: true, configurable: true });
      },
    });
  }
  return r;
}

const noSession = () =>
  new SeshError('NO_SESSION', 'No session on this request: add app.use(session({ secret })) before this route.', { status: 500 });

/**
 * The engine-level state behind `req.session` (used by the auth helpers and the compatibility
 * layer). Throws `NO_SESSION` when the session middleware did not run for this request.
 */
export function getSessionState(req: Request): SessionState<SessionData> {
  const r = registrations.get(req);
  if (!r) throw noSession();
  return r.state;
}

/**
 * The engine (`Sessions`: store, options, key helpers) that loaded this request's session. Throws
 * `NO_SESSION` when the session middleware did not run for this request.
 */
export function getSessions(req: Request): Sessions<SessionData> {
  const sessions = registrations.get(req)?.sessions;
  if (!sessions) throw noSession();
  return sessions;
}

/**
 * Register the session state of a request so {@link getSessionState} (and the auth helpers) find
 * it, and expose it as `req.session`. Used by other session middlewares such as `sesh/stateless`;
 * returns false (and changes nothing) when a session middleware already ran for this request.
 */
export function attachSessionState(req: Request, state: SessionState<SessionData>): boolean {
  if (registrations.has(req)) return false;
  register(req, state, null, null);
  return true;
}

/** True when a session middleware already ran for this request. */
export function hasSessionState(req: Request): boolean {
  return registrations.has(req);
}
