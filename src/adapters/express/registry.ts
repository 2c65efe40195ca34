import type { Request } from 'express';
import { SeshError, type SessionData, type SessionState, type Sessions } from '../../index.js';

/*
 * The state and engine of a request live on the request object under private symbols. Two
 * WeakMaps did the same at about 0.4 µs per request plus garbage-collector work (every request
 * object became an ephemeron key); a symbol-keyed property is invisible to Object.keys, for...in
 * and JSON, and to code that does not hold the symbol.
 */
const STATE: unique symbol = Symbol('sesh.state');
const ENGINE: unique symbol = Symbol('sesh.engine');
interface Registered {
  [STATE]?: SessionState<SessionData>;
  [ENGINE]?: Sessions<SessionData>;
}
const stateOf = (req: object) => (req as Registered)[STATE];

/** @internal Record the session state and engine of a request (the session middleware does it). */
export function register(req: object, state: SessionState<SessionData>, sessions: Sessions<SessionData>): void {
  (req as Registered)[STATE] = state;
  (req as Registered)[ENGINE] = sessions;
}

/** @internal True when the session middleware already ran for this request. */
export function isRegistered(req: object): boolean {
  return stateOf(req) !== undefined;
}

/**
 * The engine-level state behind `req.session` (used by the auth helpers and the compatibility
 * layer). Throws `NO_SESSION` when the session middleware did not run for this request.
 */
export function getSessionState(req: Request): SessionState<SessionData> {
  const state = stateOf(req);
  if (!state) {
    throw new SeshError('NO_SESSION', 'No session on this request: add app.use(session({ secret })) before this route.', { status: 500 });
  }
  return state;
}

/**
 * The engine (`Sessions`: store, options, key helpers) that loaded this request's session. Throws
 * `NO_SESSION` when the session middleware did not run for this request.
 */
export function getSessions(req: Request): Sessions<SessionData> {
  const sessions = (req as Registered)[ENGINE];
  if (!sessions) {
    throw new SeshError('NO_SESSION', 'No session on this request: add app.use(session({ secret })) before this route.', { status: 500 });
  }
  return sessions;
}

/**
 * Register the session state of a request so {@link getSessionState} (and the auth helpers) find
 * it, and expose it as `req.session`. Used by other session middlewares such as `sesh/stateless`;
 * returns false (and changes nothing) when a session middleware already ran for this request.
 */
export function attachSessionState(req: Request, state: SessionState<SessionData>): boolean {
  if (stateOf(req) !== undefined) return false;
  (req as Registered)[STATE] = state;
  req.session = state.session;
  return true;
}

/** True when a session middleware already ran for this request. */
export function hasSessionState(req: Request): boolean {
  return stateOf(req) !== undefined;
}
