import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { type CommitResult, isSeshError, type RequestContext, type SessionData, type SessionState, type Sessions } from '../../index.js';
import { hasSessionState, type Registration, register, type SessionAssign } from './registry.js';
import { deferUntilCommitted } from './response.js';

/**
 * The request as the engine sees it. `secure` and `ip` are Express getters that run the app's
 * trust-proxy rules (proxy-addr parses the socket address and `X-Forwarded-For`); most requests
 * never need them (they serve for events, the client recorded on a new session and the Secure
 * cookie checks), so they are read from `req` on first use and kept, not on every request.
 * `req.headers` is read once: every property read on `req` is slow in V8, as Node's HTTP server
 * gives each request object its own hidden class.
 *
 * The session state, and so this context, is the value of the request's registration (a WeakMap
 * entry keyed by the request), so the reference to `req` is dropped once the response's commit
 * settled ({@link releaseContext}): otherwise every request would survive young-generation
 * collections. By then the commit has read what it needed; a value first asked for later (a
 * session first saved after the response went out) reads as unknown: `ip` undefined, and `secure`
 * true, since its only use then is the insecure-transport check of a Set-Cookie that can no longer
 * be sent (it would warn about a cookie dropped for nothing).
 */
class ExpressContext implements RequestContext {
  readonly cookie: string | undefined;
  readonly host: string | undefined;
  readonly userAgent: string | undefined;
  hadCookie = false;
  #req: Request | null;
  #secure: boolean | undefined = undefined;
  #ip: string | undefined = undefined;
  #ipRead = false;

  constructor(req: Request) {
    const headers = req.headers;
    this.cookie = headers.cookie;
    this.host = headers.host;
    this.userAgent = headers['user-agent'];
    this.#req = req;
  }

  get secure(): boolean {
    this.#secure ??= this.#req?.secure ?? true;
    return this.#secure;
  }

  get ip(): string | undefined {
    if (!this.#ipRead) {
      this.#ip = this.#req?.ip;
      this.#ipRead = this.#req !== null;
    }
    return this.#ip;
  }

  /** Drop the reference to the request (see the class comment). */
  release(): void {
    this.#req = null;
  }
}

/** The deferral's `release`: the request's commit settled. */
function releaseContext(r: Registration): void {
  const ctx = r.state.request;
  if (ctx instanceof ExpressContext) ctx.release();
}

/**
 * @internal The request handler shared by the server-side and the stateless Express middlewares:
 * load the session from the request, register it (so `req.session`, `getSessionState`,
 * `getSessions` and the auth helpers find it; `assign`, when given, is what assigning
 * `req.session` does), and `commit` it before the response's headers leave. A second session
 * middleware on the same request is a no-op.
 */
export function sessionHandler(
  sessions: Sessions<SessionData>,
  onError: (error: unknown, req: Request) => void,
  commit: (state: SessionState<SessionData>) => CommitResult | Promise<CommitResult>,
  assign: SessionAssign | null,
): (req: Request, res: Response, next: NextFunction) => void {
  // Shared by every request: the deferral calls them with the request's registration.
  const commitOf = (r: Registration) => commit(r.state);
  const failed = (err: unknown, _r: Registration, res: ServerResponse): number => {
    onError(err, (res as Response).req);
    return isSeshError(err) && err.status >= 500 ? err.status : 500;
  };
  const attach = (req: Request, res: Response, next: NextFunction, state: SessionState<SessionData>): void => {
    try {
      deferUntilCommitted(res, commitOf, register(req, state, sessions, assign), failed, releaseContext);
    } catch (err) {
      // As Express 5 does with a rejected middleware promise (the async version's behaviour).
      next(err);
      return;
    }
    next();
  };
  // Not an async function, and nothing returned to Express: an async middleware costs its own
  // promise and generator, plus the `.then` Express 5 attaches to every promise a middleware
  // returns. When the session is known at once (no cookie, or a store with synchronous reads)
  // the route runs in the same step, without a promise; failures go to `next(err)`.
  return (req, res, next) => {
    if (hasSessionState(req)) {
      next();
      return;
    }
    let loading: SessionState<SessionData> | Promise<SessionState<SessionData>>;
    try {
      loading = sessions.loadNow(new ExpressContext(req));
    } catch (err) {
      next(err);
      return;
    }
    if (loading instanceof Promise) loading.then((state) => attach(req, res, next, state), next);
    else attach(req, res, next, loading);
  };
}
