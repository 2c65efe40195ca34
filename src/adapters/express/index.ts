import type { Request, RequestHandler } from 'express';
import {
  createSessions,
  isSeshError,
  resolveOptions,
  SeshError,
  type Session,
  type SessionData,
  type SessionOptions,
  type Sessions,
  type Store,
} from '../../index.js';
import { DEFAULT_SQLITE_PATH, SqliteStore } from '../../stores/sqlite/index.js';
import { sessionHandler } from './mount.js';
import { attachSessionState, getSessionState, getSessions, hasSessionState } from './registry.js';

export { attachSessionState, getSessionState, getSessions, hasSessionState };

declare global {
  namespace Express {
    interface Request {
      /**
       * The session of this request (sesh). Read and write it like a plain object; type its keys
       * by augmenting `SessionData` in the `sesh` module.
       */
      session: Session<SessionData>;
    }
  }
}

/** Options of the Express middleware: the engine options plus adapter hooks. */
export interface ExpressSessionOptions extends SessionOptions {
  /**
   * Called when writing the session failed after the route finished (store outage, session too
   * large); the response becomes a 503 (store) or 500. Default: log to `console.error`.
   */
  onError?: (error: unknown, req: Request) => void;
}

/** The middleware, with the engine it runs on. */
export interface SessionMiddleware extends RequestHandler {
  /** The engine (store, options, key helpers). */
  readonly sessions: Sessions<SessionData>;
  /** Close the store (timers, connections). */
  close(): Promise<void>;
}

/**
 * The store used when the app names none: the embedded SQLite store at its default path
 * (`./.sesh/sessions.db`, or `$SESH_SQLITE_PATH`), opened when `session()` is called.
 */
function defaultStore(options: ExpressSessionOptions): Store {
  // Validate the options first, so a misconfigured app fails before a database file is created.
  resolveOptions(options);
  try {
    return new SqliteStore(options.clock ? { clock: options.clock } : {});
  } catch (err) {
    if (isSeshError(err, 'DRIVER_MISSING')) {
      throw new SeshError(
        'DRIVER_MISSING',
        `session() keeps sessions in an embedded SQLite database (${DEFAULT_SQLITE_PATH}) when no \`store\` is given, and that needs better-sqlite3: run \`npm install better-sqlite3@12\` (13.x requires Node 22). Or pass a store, e.g. \`store: new MemoryStore()\` from 'sesh/stores/memory' (memory only: lost on restart, not shared between processes).`,
        { cause: err },
      );
    }
    throw err;
  }
}

/**
 * Express 4 and 5 session middleware.
 *
 * ```ts
 * import express from 'express';
 * import { session } from 'sesh/express';
 * const app = express();
 * app.use(session({ secret: process.env.SESSION_SECRET! }));
 * app.get('/', (req, res) => {
 *   req.session.views = (req.session.views ?? 0) + 1;
 *   res.send(`views: ${req.session.views}`);
 * });
 * ```
 *
 * The session is loaded before your routes run and written, per changed key, before the response
 * headers are sent, so a redirect right after a write is safe. A store outage answers 503 (the
 * error goes to your error handlers with `status: 503`), never an anonymous session.
 *
 * Without a `store`, sessions go to the embedded SQLite store (`sesh/stores/sqlite`) in
 * `./.sesh/sessions.db` (or `$SESH_SQLITE_PATH`), which needs `better-sqlite3`; when it is not
 * installed this throws `DRIVER_MISSING` saying what to install.
 */
export function session(options: ExpressSessionOptions): SessionMiddleware {
  const ownStore = !options?.store;
  const store = options?.store ?? defaultStore(options);
  let sessions: Sessions<SessionData>;
  try {
    sessions = createSessions<SessionData>({ ...options, store });
  } catch (err) {
    if (ownStore) void store.close?.();
    throw err;
  }
  const onError =
    options.onError ??
    ((error: unknown) => {
      console.error('[sesh] could not save the session:', error);
    });

  const middleware = sessionHandler(sessions, onError, sessions.commitNow, null);
  return Object.assign(middleware as RequestHandler, {
    sessions,
    close: () => sessions.close(),
  });
}

export type { Session, SessionApi, SessionData, SessionOptions } from '../../index.js';
export {
  type AuthFailure,
  type AuthResult,
  type AuthUser,
  authenticate,
  deviceLabel,
  type LoginOptions,
  type LogoutOptions,
  listSessions,
  login,
  logout,
  type RequireAuthOptions,
  requireAuth,
  requireRole,
  revokeAllSessions,
  revokeOtherSessions,
  revokeSession,
  type SessionInfo,
  type StoreHolder,
  setUserRoles,
} from './auth.js';
export { type CsrfOptions, csrf, csrfToken } from './csrf.js';
