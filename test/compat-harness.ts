import type { Express, NextFunction, Request, Response } from 'express';
import type { Running } from './support/http.js';

/** Routes shared by the oracle app (express-session) and the app under test (sesh/express-session). */
// biome-ignore lint/suspicious/noExplicitAny: both libraries' req.session shapes are used untyped here.
type AnyReq = Request & { session: any; sessionID: any; sessionStore: any };

/** Session data without the cookie, as the routes report it. */
export function dataOf(sess: Record<string, unknown> | null | undefined): Record<string, unknown> | null {
  if (!sess) return null;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(sess)) if (k !== 'cookie') out[k] = sess[k];
  return out;
}

/**
 * What every route answers: data, ID (normalized later) and the cookie's timing and attributes.
 * The differential suite runs on a controlled clock, so `maxAge`, `originalMaxAge` and `expires`
 * are compared exactly.
 */
function report(req: AnyReq, extra: Record<string, unknown> = {}) {
  const c = req.session?.cookie;
  return {
    id: req.sessionID ?? null,
    sessionId: req.session?.id ?? null,
    data: dataOf(req.session),
    cookie: c
      ? {
          originalMaxAge: c.originalMaxAge,
          expires: c.expires instanceof Date ? c.expires.toISOString() : (c.expires ?? null),
          maxAge: c.maxAge,
          httpOnly: c.httpOnly,
          path: c.path,
          secure: c.secure ?? null,
          sameSite: c.sameSite ?? null,
        }
      : null,
    ...extra,
  };
}

/** Install the test routes on an app that already uses a session middleware. */
export function routes(app: Express): void {
  const r = (fn: (req: AnyReq, res: Response, next: NextFunction) => void) => (req: Request, res: Response, next: NextFunction) =>
    fn(req as AnyReq, res, next);
  app.get(
    '/read',
    r((req, res) => res.json(report(req))),
  );
  app.get(
    '/count',
    r((req, res) => {
      req.session.n = (req.session.n || 0) + 1;
      res.json(report(req));
    }),
  );
  app.get(
    '/set/:k/:v',
    r((req, res) => {
      req.session[req.params.k as string] = req.params.v;
      res.json(report(req));
    }),
  );
  app.get(
    '/nested',
    r((req, res) => {
      req.session.obj = req.session.obj || { list: [] };
      req.session.obj.list.push(1);
      res.json(report(req));
    }),
  );
  app.get(
    '/unset',
    r((req, res) => {
      req.session = null;
      res.json(report(req));
    }),
  );
  app.get(
    '/delete',
    r((req, res) => {
      delete req.session;
      res.json(report(req));
    }),
  );
  app.get(
    '/destroy',
    r((req, res, next) => {
      req.session.destroy((err: unknown) => (err ? next(err) : res.json(report(req))));
    }),
  );
  app.get(
    '/regenerate',
    r((req, res, next) => {
      const before = req.sessionID;
      req.session.regenerate((err: unknown) => {
        if (err) return next(err);
        req.session.fresh = true;
        res.json(report(req, { changed: before !== req.sessionID }));
      });
    }),
  );
  app.get(
    '/regenerate-empty',
    r((req, res, next) => {
      req.session.regenerate((err: unknown) => (err ? next(err) : res.json(report(req))));
    }),
  );
  app.get(
    '/reload',
    r((req, res) => {
      req.session.scratch = 'lost';
      req.session.reload((err: unknown) => res.json(report(req, { error: err ? String((err as Error).message) : null })));
    }),
  );
  app.get(
    '/save',
    r((req, res, next) => {
      req.session.saved = 'yes';
      req.session.save((err: unknown) => (err ? next(err) : res.json(report(req))));
    }),
  );
  app.get(
    '/touch',
    r((req, res) => {
      req.session.touch();
      res.json(report(req));
    }),
  );
  app.get(
    '/maxage/:ms',
    r((req, res) => {
      req.session.cookie.maxAge = Number(req.params.ms);
      res.json(report(req));
    }),
  );
  app.get(
    '/expires-null',
    r((req, res) => {
      req.session.cookie.expires = null;
      res.json(report(req));
    }),
  );
  app.get(
    '/redirect',
    r((req, res) => {
      req.session.redirected = true;
      res.redirect('/read');
    }),
  );
  app.get(
    '/stream',
    r((req, res) => {
      req.session.streamed = 1;
      res.setHeader('Content-Type', 'text/plain');
      res.write('a');
      res.end('b');
    }),
  );
  app.get(
    '/sub/read',
    r((req, res) => res.json(report(req))),
  );
  app.get(
    '/none',
    r((req, res) => res.json({ has: req.session !== undefined })),
  );
}

/** Close servers in afterAll even when some never started. */
export async function closeAll(servers: Array<Running | undefined>): Promise<void> {
  await Promise.all(servers.map((s) => s?.close()));
}
