import type { Request } from 'express';
import { SeshError, type SessionData, type SessionState, type Sessions } from '../../index.js';

const states = new WeakMap<object, SessionState<SessionData>>();
const engines = new WeakMap<object, Sessions<SessionData>>();

/** @internal Record the session state and engine of a request (the session middleware does it). */
export function register(req: object, state: SessionState<SessionData>, sessions: Sessions<SessionData>): void {
  states.set(req, state);
  engines.set(req, sessions);
}

/** @internal True when the session middleware already ran for this request. */
export function isRegistered(req: object): boolean {
  return states.has(req);
}

/**
 * The engine-level state behind `req.session` (used by the auth helpers and the compatibility
 * layer). Throws `NO_SESSION` when the session middleware did not run for this request.
 */
export function getSessionState(req: Request): SessionState<SessionData> {
  const state = states.get(req);
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
  const sessions = engines.get(req);
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
  if (states.has(req)) return false;
  states.set(req, state);
  req.session = state.session;
  return true;
}

/** True when a session middleware already ran for this request. */
export function hasSessionState(req: Request): boolean {
  return states.has(req);
}
