import type { Request, RequestHandler } from 'express';
import { sessionHandler } from '../adapters/express/mount.js';
import {
  createStatelessSessions,
  type Session,
  type SessionData,
  type SessionState,
  type StatelessOptions,
  type StatelessSessions,
} from '../index.js';

declare global {
  namespace Express {
    interface Request {
      /**
       * The session of this request (sesh). Read and write it like a plain object; type its keys
       * by augmenting `SessionData` in the `sesh` module. (Same declaration as in `sesh/express`,
       * so an app importing only `sesh/stateless` gets it too.)
       */
      session: Session<SessionData>;
    }
  }
}

/** Options of the stateless Express middleware: the stateless engine options plus adapter hooks. */
export interface StatelessExpressOptions extends StatelessOptions {
  /**
   * Called when sealing the session failed after the route finished (session too large, revocation
   * store outage); the response becomes a 500 or 503. Default: log to `console.error`.
   */
  onError?: (error: unknown, req: Request) => void;
}

/** The middleware, with the engine it runs on. */
export interface StatelessMiddleware extends RequestHandler {
  /** The stateless engine (options, `revokeUser`, `openCookie`...). */
  readonly sessions: StatelessSessions<SessionData>;
  /**
   * Reject every sealed cookie of `userId` issued before now ("log out everywhere", password
   * change, demotion). Needs the revocation `store` option.
   */
  revokeUser(userId: string): Promise<void>;
  /** Close the revocation store, if any. */
  close(): Promise<void>;
}

/**
 * Express 4 and 5 middleware for stateless sessions: the whole session is sealed with AES-256-GCM
 * into the cookie, and `req.session` behaves exactly as with `session()` from `sesh/express`, so an
 * app switches with one import line. The auth helpers of `sesh/express` (`getSessionState`, login,
 * logout, guards, CSRF) work on it unchanged.
 *
 * ```ts
 * import { session } from 'sesh/stateless';
 * app.use(session({ secret: process.env.SESSION_SECRET!, appId: 'shop' }));
 * app.get('/', (req, res) => {
 *   req.session.views = (req.session.views ?? 0) + 1;
 *   res.send(`views: ${req.session.views}`);
 * });
 * ```
 *
 * Without a revocation `store`, logout only deletes the cookie in this browser: a copied cookie
 * stays valid until its idle or absolute timeout. Pass a store to deny-list it on logout. Like
 * cookie-session, `req.session = null` ends the session.
 */
export function session(options: StatelessExpressOptions): StatelessMiddleware {
  const sessions = createStatelessSessions<SessionData>(options);
  const onError =
    options.onError ??
    ((error: unknown) => {
      console.error('[sesh] could not seal the session:', error);
    });

  // `req.session = null` ends the session, as with cookie-session; the destroy runs at once and
  // the commit waits for it (a failure to revoke surfaces there as a 503).
  const ending = new WeakMap<SessionState<SessionData>, Promise<void>>();
  const assign = (state: SessionState<SessionData>, value: unknown): void => {
    if (value !== null && value !== undefined && value !== state.session) {
      throw new TypeError('req.session cannot be replaced; assign its keys, or set it to null to end the session.');
    }
    if (value === state.session) return;
    const p = state.destroy();
    p.catch(() => undefined); // Surfaced at commit.
    ending.set(state, p);
  };
  // Registered like the server-side middleware, so getSessionState(req), getSessions(req) and
  // the auth helpers of sesh/express work unchanged.
  const middleware = sessionHandler(
    sessions,
    onError,
    (state) => {
      const pending = ending.get(state);
      return pending ? pending.then(() => sessions.commit(state)) : sessions.commitNow(state);
    },
    assign,
  );
  return Object.assign(middleware as RequestHandler, {
    sessions,
    revokeUser: (userId: string) => sessions.revokeUser(userId),
    close: () => sessions.close(),
  });
}

export { getSessionState, getSessions } from '../adapters/express/registry.js';
export type {
  Session,
  SessionApi,
  SessionData,
  StatelessOpenResult,
  StatelessOptions,
  StatelessPayload,
  StatelessRejection,
  StatelessSessions,
} from '../index.js';
export { createStatelessSessions, MAX_CHUNKS, MAX_COOKIE_BYTES } from '../index.js';
