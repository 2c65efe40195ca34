/**
 * Differential test: the common cookie-session use (set, read, update, clear with
 * `req.session = null`) behaves the same on sesh/stateless, so an app can switch. Both apps run the
 * same routes over real HTTP; the observable results (bodies, whether a cookie is set or cleared)
 * are compared step by step.
 */
import cookieSession from 'cookie-session';
import type { Express, RequestHandler } from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { session } from '../src/stateless/index.js';
import { Jar } from './stateless-jar.js';
import { expressVersions, listen, type Running } from './support/http.js';

const SECRET = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';

type Bag = Record<string, unknown> | null;

function routes(app: Express, mw: RequestHandler): Express {
  app.use(mw);
  app.get('/set/:k/:v', (req, res) => {
    (req.session as unknown as Record<string, unknown>)[req.params.k as string] = req.params.v;
    res.send('ok');
  });
  app.get('/get/:k', (req, res) => {
    const bag = req.session as unknown as Bag;
    res.json({ value: bag?.[req.params.k as string] ?? null });
  });
  app.get('/push/:v', (req, res) => {
    const bag = req.session as unknown as Record<string, unknown>;
    const list = (bag.list as string[] | undefined) ?? [];
    bag.list = [...list, req.params.v];
    res.json(bag.list);
  });
  app.get('/clear', (req, res) => {
    (req as unknown as { session: Bag }).session = null;
    res.send('cleared');
  });
  return app;
}

const steps = [
  '/get/a',
  '/set/a/1',
  '/get/a',
  '/set/b/2',
  '/get/a',
  '/get/b',
  '/push/x',
  '/push/y',
  '/get/list',
  '/clear',
  '/get/a',
  '/set/a/3',
  '/get/a',
];

for (const { name, express } of expressVersions) {
  describe(`cookie-session vs sesh/stateless on ${name}`, () => {
    const servers: Running[] = [];
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.close()));
    });

    it('the same steps give the same bodies and the same cookie set/clear pattern', async () => {
      const theirs = await listen(routes(express(), cookieSession({ name: 'session', keys: [SECRET] }) as unknown as RequestHandler));
      const ours = await listen(routes(express(), session({ secret: SECRET })));
      servers.push(theirs, ours);
      const a = new Jar(theirs.url);
      const b = new Jar(ours.url);
      const trace: string[] = [];
      for (const step of steps) {
        const ra = await a.send(step);
        const rb = await b.send(step);
        const sets = (lines: string[]) => lines.some((l) => !/Max-Age=0|expires=Thu, 01 Jan 1970/i.test(l));
        const clears = (lines: string[]) => lines.some((l) => /Max-Age=0|expires=Thu, 01 Jan 1970/i.test(l));
        trace.push(`${step}: ${ra.body} | ${rb.body}`);
        expect(rb.status, step).toBe(ra.status);
        expect(rb.body, trace.join('\n')).toBe(ra.body);
        expect(sets(rb.setCookie), `${step} sets a cookie`).toBe(sets(ra.setCookie));
        expect(clears(rb.setCookie), `${step} clears the cookie`).toBe(clears(ra.setCookie));
        expect(b.cookies.size > 0, `${step} leaves a session cookie`).toBe(a.cookies.size > 0);
      }
    });
  });
}
