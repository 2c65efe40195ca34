import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { checkRequestOrigin, isSafeMethod, issueCsrfToken, normalizeOrigin, verifyCsrfToken } from '../../auth/index.js';
import { OptionsError, SeshError } from '../../index.js';
import { getSessionState, getSessions, hasSessionState } from './registry.js';

/** Options of {@link csrf}. */
export interface CsrfOptions {
  /**
   * Origins allowed to send unsafe requests when the browser sends no `Sec-Fetch-Site`, e.g.
   * `['https://app.example.com']`. Default: the request's own origin, built from the `Host` header
   * and `req.protocol` (which follows Express' trust proxy setting). Set it explicitly behind a proxy
   * that rewrites `Host`.
   */
  allowedOrigins?: readonly string[];
  /** Accept `Sec-Fetch-Site: same-site` (sibling subdomains). Default false: same-origin only. */
  allowSameSite?: boolean;
  /**
   * Synchronizer token (from {@link csrfToken}):
   * - `'fallback'` (default): a valid token lets a request through when it carries none of
   *   `Sec-Fetch-Site`, `Origin` and `Referer` (old browsers, stripping proxies);
   * - `'required'`: every unsafe request needs a valid token in addition to the header checks;
   * - `'off'`: header checks only; requests without any of the headers are refused.
   */
  token?: 'fallback' | 'required' | 'off';
  /** Request header carrying the token. Default `x-csrf-token`. */
  headerName?: string;
  /** Form body field carrying the token (needs a body parser before `csrf()`). Default `_csrf`. Never read from the query string. */
  fieldName?: string;
}

/**
 * CSRF protection for unsafe methods (anything but GET, HEAD, OPTIONS, TRACE), whatever the
 * Content-Type, login and logout included:
 * 1. `Sec-Fetch-Site` when present: `same-origin` passes (`same-site` only with `allowSameSite`),
 *    anything else is refused;
 * 2. otherwise an exact `Origin` (or `Referer` origin) match against `allowedOrigins`;
 * 3. the session-bound synchronizer token from {@link csrfToken}, per the `token` option.
 * A refusal is a 403 `CSRF_REJECTED` error passed to `next`. Every response gets
 * `Vary: Origin, Sec-Fetch-Site`.
 *
 * ```ts
 * app.use(session({ secret }));
 * app.use(express.urlencoded({ extended: false }));
 * app.use(csrf());
 * ```
 */
export function csrf(options: CsrfOptions = {}): RequestHandler {
  const allowed = options.allowedOrigins === undefined ? null : options.allowedOrigins.map((o) => normalizeOrigin(o));
  if (allowed && allowed.length === 0)
    throw new OptionsError('csrf(): `allowedOrigins` is empty; list at least one origin or leave it out.');
  const mode = options.token ?? 'fallback';
  if (mode !== 'fallback' && mode !== 'required' && mode !== 'off') {
    throw new OptionsError(`csrf(): \`token\` must be 'fallback', 'required' or 'off'; got ${String(mode)}.`);
  }
  const headerName = (options.headerName ?? 'x-csrf-token').toLowerCase();
  const fieldName = options.fieldName ?? '_csrf';
  if (!/^[a-z0-9-]+$/.test(headerName)) throw new OptionsError('csrf(): `headerName` must be a header name such as x-csrf-token.');
  if (typeof fieldName !== 'string' || fieldName.length === 0 || fieldName === '__proto__') {
    throw new OptionsError('csrf(): `fieldName` must be a non-empty field name such as _csrf.');
  }
  const allowSameSite = options.allowSameSite === true;

  const presentedToken = (req: Request): unknown => {
    const h = req.headers[headerName];
    if (typeof h === 'string' && h.length > 0) return h;
    const body: unknown = req.body;
    if (body !== null && typeof body === 'object' && Object.hasOwn(body, fieldName)) return (body as Record<string, unknown>)[fieldName];
    return undefined;
  };

  const tokenValid = (req: Request): boolean => {
    if (!hasSessionState(req)) {
      throw new SeshError('NO_SESSION', 'csrf() tokens need the session: add app.use(session({ secret })) before csrf().', { status: 500 });
    }
    return verifyCsrfToken(getSessionState(req), presentedToken(req));
  };

  return (req: Request, res: Response, next: NextFunction): void => {
    res.vary('Origin');
    res.vary('Sec-Fetch-Site');
    if (isSafeMethod(req.method)) {
      next();
      return;
    }
    const reject = (why: string) => {
      emitRejected(req, why);
      next(new SeshError('CSRF_REJECTED', `Cross-site request refused (${why}).`, { status: 403 }));
    };
    try {
      const host = req.headers.host;
      const origins = allowed ?? (host ? [`${req.protocol}://${host.toLowerCase()}`] : []);
      const check = checkRequestOrigin(
        {
          secFetchSite: header(req, 'sec-fetch-site'),
          origin: header(req, 'origin'),
          referer: header(req, 'referer'),
        },
        origins,
        allowSameSite,
      );
      if (!check.ok && check.reason !== 'missing') {
        reject(check.reason);
        return;
      }
      if (mode === 'required') {
        if (!tokenValid(req)) {
          reject('token');
          return;
        }
      } else if (!check.ok) {
        if (mode === 'off' || !tokenValid(req)) {
          reject('origin_missing');
          return;
        }
      }
      next();
    } catch (err) {
      next(err);
    }
  };
}

function header(req: Request, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * A CSRF token for this session, masked afresh for each response; put it in a hidden `_csrf`
 * field or send it as `X-CSRF-Token`. Creates the session's secret on first use (an anonymous
 * visitor then gets a session cookie). The secret is renewed at login and dies at logout.
 */
export function csrfToken(req: Request): string {
  return issueCsrfToken(getSessionState(req));
}

/** Report a refusal to the engine's `onEvent`, when this request has a sesh engine (best effort). */
function emitRejected(req: Request, why: string): void {
  try {
    if (hasSessionState(req)) getSessions(req).options.onEvent?.({ type: 'csrf_rejected', detail: why });
  } catch {
    // A session attached by another middleware (e.g. sesh/stateless) has no engine here.
  }
}
