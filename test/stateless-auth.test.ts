/**
 * The auth helpers of sesh/express (login, logout, requireAuth, requireRole, csrf) on stateless
 * sessions: they work on the engine's SessionState, which sesh/stateless registers like the
 * server-side middleware does.
 */

import express5, { type Express, type NextFunction, type Request, type Response } from 'express';
import express4 from 'express4';
import { afterEach, describe, expect, it } from 'vitest';
import { csrf, csrfToken, login, logout, requireAuth, requireRole, revokeAllSessions } from '../src/adapters/express/index.js';
import { type StatelessExpressOptions, session } from '../src/stateless/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { Jar } from './stateless-jar.js';
import { listen, type Running, request } from './support/http.js';

const SECRET = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';
const versions = [
  { name: 'express 5', express: express5 },
  { name: 'express 4', express: express4 as unknown as typeof express5 },
] as const;

const running: Running[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

const form = { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' };

for (const { name, express } of versions) {
  describe(`auth helpers on sesh/stateless (${name})`, () => {
    async function start(options: Partial<StatelessExpressOptions> = {}) {
      const app: Express = express();
      app.use(express.urlencoded({ extended: false }));
      const mw = session({ secret: SECRET, ...options });
      app.use(mw);
      app.use(csrf());
      app.post('/login', async (req, res) => {
        const user = String(req.body.user);
        await login(req, user, { roles: user === 'root' ? ['admin'] : [] });
        res.send('in');
      });
      app.post('/logout', async (req, res) => {
        await logout(req);
        res.send('out');
      });
      app.get('/private', requireAuth(), (_req, res) => {
        res.send('secret');
      });
      app.get('/admin', requireRole('admin'), (_req, res) => {
        res.send('admin area');
      });
      app.get('/token', (req, res) => {
        res.send(csrfToken(req));
      });
      app.post('/revoke-all', async (_req, res, next) => {
        try {
          await revokeAllSessions(mw.sessions, 'ann');
          res.send('done');
        } catch (err) {
          next(err);
        }
      });
      app.use((err: Error & { status?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
        res.status(err.status ?? 500).send(`error:${err.code ?? err.message}`);
      });
      const r = await listen(app);
      running.push(r);
      return { url: r.url, mw };
    }

    it('login / requireAuth / requireRole / logout round trip', async () => {
      const { url } = await start();
      const jar = new Jar(url);
      expect((await jar.send('/private')).status).toBe(401);
      const login1 = await jar.send('/login', { method: 'POST', headers: form, body: 'user=ann' });
      expect(login1.status).toBe(200);
      expect((await jar.send('/private')).body).toBe('secret');
      expect((await jar.send('/admin')).status).toBe(403);
      const out = await jar.send('/logout', { method: 'POST', headers: form, body: '' });
      expect(out.status).toBe(200);
      expect(jar.cookies.size).toBe(0);
      expect((await jar.send('/private')).status).toBe(401);
      await jar.send('/login', { method: 'POST', headers: form, body: 'user=root' });
      expect((await jar.send('/admin')).body).toBe('admin area');
    });

    it('CSRF: a cross-site POST is refused; a synchronizer token from csrfToken() works without fetch metadata', async () => {
      const { url } = await start();
      const jar = new Jar(url);
      await jar.send('/login', { method: 'POST', headers: form, body: 'user=ann' });
      const cross = await jar.send('/logout', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' },
        body: '',
      });
      expect(cross.status).toBe(403);
      expect((await jar.send('/private')).body).toBe('secret');
      const token = (await jar.send('/token')).body;
      expect(token.length).toBeGreaterThan(20);
      const bare = await jar.send('/logout', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `_csrf=${encodeURIComponent(token)}`,
      });
      expect(bare.status).toBe(200);
      expect((await jar.send('/private')).status).toBe(401);
    });

    it('with a revocation store, logout kills a stolen copy; login kills the pre-login cookie', async () => {
      const { url, mw } = await start({ store: new MemoryStore() });
      const sidOf = (cookie: string) => {
        const r = mw.sessions.openCookie(cookie.slice(cookie.indexOf('=') + 1));
        return r.ok ? r.payload.sid : null;
      };
      const jar = new Jar(url);
      await jar.send('/token'); // an anonymous session (CSRF secret) exists before login
      const preLogin = jar.header() as string;
      const preSid = sidOf(preLogin);
      expect(preSid).toMatch(/^[\w-]{43}$/);
      await jar.send('/login', { method: 'POST', headers: form, body: 'user=ann' });
      const stolen = jar.header() as string;
      expect(sidOf(stolen)).not.toBe(preSid);
      expect((await request(`${url}/private`, { cookie: stolen })).body).toBe('secret');
      // The pre-login cookie is deny-listed: replayed, it yields a brand-new session.
      const replay = await request(`${url}/token`, { cookie: preLogin });
      const next = (replay.setCookie[0] as string).split(';')[0] as string;
      expect(sidOf(next)).not.toBe(preSid);
      await jar.send('/logout', { method: 'POST', headers: form, body: '' });
      expect((await request(`${url}/private`, { cookie: stolen })).status).toBe(401);
    });

    it('index-based helpers say plainly they need a server-side store; revokeUser is the stateless way', async () => {
      const { url, mw } = await start({ store: new MemoryStore() });
      const jar = new Jar(url);
      await jar.send('/login', { method: 'POST', headers: form, body: 'user=ann' });
      const r = await jar.send('/revoke-all', { method: 'POST', headers: form, body: '' });
      expect(r.status).toBe(500);
      expect(r.body).toBe('error:NOT_SUPPORTED');
      expect((await jar.send('/private')).body).toBe('secret');
      await mw.revokeUser('ann');
      expect((await jar.send('/private')).status).toBe(401);
    });
  });
}
