import type { NextFunction, Request, Response } from 'express';
import { type CommitResult, isSeshError, type SessionData, type SessionState, type Sessions } from '../../index.js';
import { isRegistered, register } from './registry.js';
import { deferUntilCommitted } from './response.js';

/**
 * @internal The request handler shared by the server-side and the stateless Express middlewares:
 * load the session from the request, register it (so `getSessionState`, `getSessions` and the auth
 * helpers find it), let `expose` put it on `req` and say how to commit it, and commit it before
 * the response's headers leave. A second session middleware on the same request is a no-op.
 */
export function sessionHandler(
  sessions: Sessions<SessionData>,
  onError: (error: unknown, req: Request) => void,
  expose: (req: Request, state: SessionState<SessionData>) => () => Promise<CommitResult>,
): (req: Request, res: Response, next: NextFunction) => void {
  // Not an async function, and nothing returned to Express: an async middleware costs its own
  // promise and generator, plus the `.then` Express 5 attaches to every promise a middleware
  // returns. Failures go to `next(err)` here instead, as they did from the async version.
  return (req, res, next) => {
    if (isRegistered(req)) {
      next();
      return;
    }
    let loading: Promise<SessionState<SessionData>>;
    try {
      loading = sessions.load({
        cookie: req.headers.cookie,
        secure: req.secure,
        host: req.headers.host,
        ip: req.ip,
        userAgent: req.headers['user-agent'],
        // Declared up front: the engine sets it on every request with a cookie, and a property
        // added to an object literal later goes to a separately allocated backing store.
        hadCookie: false,
      });
    } catch (err) {
      next(err);
      return;
    }
    loading.then((state) => {
      try {
        register(req, state, sessions);
        deferUntilCommitted(res, expose(req, state), (err) => {
          onError(err, req);
          return isSeshError(err) && err.status >= 500 ? err.status : 500;
        });
        next();
      } catch (err) {
        // As Express 5 does with a rejected middleware promise (the async version's behaviour).
        next(err);
      }
    }, next);
  };
}
