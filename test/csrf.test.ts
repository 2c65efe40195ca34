import { afterAll, describe, expect, it } from 'vitest';
import type { CsrfOptions } from '../src/adapters/express/index.js';
import { csrf } from '../src/adapters/express/index.js';
import { checkRequestOrigin } from '../src/auth/index.js';
import { Browser, buildApp, send } from './security-support.js';
import { expressVersions, listen, type Running } from './support/http.js';

const running: Running[] = [];
afterAll(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

async function start(express: unknown, options: CsrfOptions = {}) {
  const t = buildApp(express, { csrf: options });
  const r = await listen(t.app);
  running.push(r);
  return { ...t, url: r.url };
}

/** Only these headers, nothing added (no default Sec-Fetch-Site). */
const bare = (h: Record<string, string>) => ({ 'sec-fetch-site': '', ...h });

for (const { name, express } of expressVersions) {
  describe(`csrf() (${name})`, () => {
    it('same-origin Fetch Metadata passes; cross-site, none and (by default) same-site are refused', async () => {
      const { url, events } = await start(express);
      const b = new Browser(url);
      expect((await b.post('/action', {}, { 'sec-fetch-site': 'same-origin' })).status).toBe(200);
      for (const site of ['cross-site', 'same-site', 'none', 'CROSS-SITE', 'bogus']) {
        const r = await b.post('/action', {}, { 'sec-fetch-site': site, origin: url });
        expect(r.status, site).toBe(403);
        expect(r.json()).toEqual({ error: 'CSRF_REJECTED' });
      }
      expect(events.filter((e) => e.type === 'csrf_rejected')).toHaveLength(5);
      expect(events.find((e) => e.type === 'csrf_rejected')?.detail).toBe('cross_site');
    });

    it('same-site passes only when allowSameSite is set', async () => {
      const { url } = await start(express, { allowSameSite: true });
      expect((await new Browser(url).post('/action', {}, { 'sec-fetch-site': 'same-site' })).status).toBe(200);
      expect((await new Browser(url).post('/action', {}, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    });

    it('without Sec-Fetch-Site, Origin must match exactly (default: the request origin)', async () => {
      const { url } = await start(express);
      const b = new Browser(url);
      expect((await b.post('/action', {}, bare({ origin: url }))).status).toBe(200);
      const port = new URL(url).port;
      for (const o of [
        'null',
        `http://127.0.0.1:${Number(port) + 1}`,
        `https://127.0.0.1:${port}`,
        `${url}.evil.com`,
        `http://evil.com`,
        `${url}/`,
      ]) {
        expect((await b.post('/action', {}, bare({ origin: o }))).status, o).toBe(403);
      }
    });

    it('falls back to the Referer origin, exactly', async () => {
      const { url } = await start(express);
      const b = new Browser(url);
      expect((await b.post('/action', {}, bare({ referer: `${url}/form?x=1` }))).status).toBe(200);
      expect((await b.post('/action', {}, bare({ referer: `http://evil.com/${url}` }))).status).toBe(403);
      expect((await b.post('/action', {}, bare({ referer: 'not a url' }))).status).toBe(403);
    });

    it('configured allowedOrigins replace the default and X-Forwarded-Host is never trusted', async () => {
      const { url } = await start(express, { allowedOrigins: ['https://app.example.com'] });
      const b = new Browser(url);
      expect((await b.post('/action', {}, bare({ origin: 'https://app.example.com' }))).status).toBe(200);
      expect((await b.post('/action', {}, bare({ origin: url }))).status).toBe(403);
      const d = await start(express);
      expect(
        (
          await new Browser(d.url).post(
            '/action',
            {},
            bare({ origin: 'https://evil.com', 'x-forwarded-host': 'evil.com', 'x-forwarded-proto': 'https' }),
          )
        ).status,
      ).toBe(403);
    });

    it('no header at all: refused, unless a valid token is sent (token: fallback)', async () => {
      const { url } = await start(express);
      const b = new Browser(url);
      expect((await b.post('/action', {}, bare({}))).status).toBe(403);
      const { token } = (await b.send('/csrf-token')).json<{ token: string }>();
      expect((await b.post('/action', {}, bare({ 'x-csrf-token': token }))).status).toBe(200);
      expect((await b.post('/action', { _csrf: token }, bare({}))).status).toBe(200);
      const off = await start(express, { token: 'off' });
      const c = new Browser(off.url);
      const t2 = (await c.send('/csrf-token')).json<{ token: string }>().token;
      expect((await c.post('/action', {}, bare({ 'x-csrf-token': t2 }))).status).toBe(403);
    });

    it('token: required needs a valid token on top of the header checks; never from the query string', async () => {
      const { url } = await start(express, { token: 'required' });
      const b = new Browser(url);
      const { token } = (await b.send('/csrf-token')).json<{ token: string }>();
      expect((await b.post('/action', {})).status).toBe(403);
      expect((await b.post('/action', {}, { 'x-csrf-token': token })).status).toBe(200);
      // Form body field, urlencoded.
      const form = await b.send('/action', {
        method: 'POST',
        body: `_csrf=${token}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(form.status).toBe(200);
      expect((await b.send(`/action?_csrf=${token}`, { method: 'POST', body: {} })).status).toBe(403);
      // Cross-site with a valid token is still refused.
      expect((await b.post('/action', {}, { 'x-csrf-token': token, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
      // Another session's token does not work here.
      const other = new Browser(url);
      const foreign = (await other.send('/csrf-token')).json<{ token: string }>().token;
      expect((await b.post('/action', {}, { 'x-csrf-token': foreign })).status).toBe(403);
      // Garbage tokens are refused without errors.
      for (const bad of ['', 'x', `${token}A`, token.slice(1), token.replace(/[A-Za-z]/, '!')]) {
        expect((await b.post('/action', {}, { 'x-csrf-token': bad })).status).toBe(403);
      }
    });

    it('tokens are masked per response and all of them verify', async () => {
      const { url } = await start(express, { token: 'required' });
      const b = new Browser(url);
      const t1 = (await b.send('/csrf-token')).json<{ token: string }>().token;
      const t2 = (await b.send('/csrf-token')).json<{ token: string }>().token;
      expect(t1).not.toBe(t2);
      expect((await b.post('/action', {}, { 'x-csrf-token': t1 })).status).toBe(200);
      expect((await b.post('/action', {}, { 'x-csrf-token': t2 })).status).toBe(200);
    });

    it('the check does not depend on Content-Type', async () => {
      const { url } = await start(express);
      for (const ct of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/json',
        'application/csp-report',
      ]) {
        const r = await send(url, '/action', {
          method: 'POST',
          body: '{"a":1}',
          headers: { 'content-type': ct, 'sec-fetch-site': 'cross-site' },
        });
        expect(r.status, ct).toBe(403);
      }
      for (const m of ['PUT', 'PATCH', 'DELETE']) {
        const r = await send(url, '/action', { method: m, headers: { origin: 'https://evil.com' } });
        expect(r.status, m).toBe(403);
      }
    });

    it('safe methods pass and every response varies on Origin and Sec-Fetch-Site', async () => {
      const { url } = await start(express);
      const r = await send(url, '/whoami', { headers: { 'sec-fetch-site': 'cross-site' } });
      expect(r.status).toBe(200);
      expect(String(r.headers.vary)).toMatch(/Origin/);
      expect(String(r.headers.vary)).toMatch(/Sec-Fetch-Site/);
    });

    it('covers login and logout, and rotates the secret at login and logout', async () => {
      const { url } = await start(express, { token: 'required' });
      const b = new Browser(url);
      // Cross-site login is refused (login CSRF).
      expect((await b.post('/login', { user: 'mallory' }, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
      const pre = (await b.send('/csrf-token')).json<{ token: string }>().token;
      expect((await b.post('/login', { user: 'alice' }, { 'x-csrf-token': pre })).status).toBe(200);
      expect((await b.post('/action', {}, { 'x-csrf-token': pre })).status).toBe(403);
      const post = (await b.send('/csrf-token')).json<{ token: string }>().token;
      expect((await b.post('/action', {}, { 'x-csrf-token': post })).status).toBe(200);
      // Cross-site logout is refused and the session survives.
      expect((await b.post('/logout', {}, { 'sec-fetch-site': 'cross-site', 'x-csrf-token': post })).status).toBe(403);
      expect((await b.send('/private')).status).toBe(200);
      expect((await b.post('/logout', {}, { 'x-csrf-token': post })).status).toBe(200);
      const after = (await b.send('/csrf-token')).json<{ token: string }>().token;
      expect((await b.post('/action', {}, { 'x-csrf-token': post })).status).toBe(403);
      expect((await b.post('/action', {}, { 'x-csrf-token': after })).status).toBe(200);
    });
  });
}

describe('csrf() options and origin policy', () => {
  it('rejects bad configuration at startup', () => {
    expect(() => csrf({ allowedOrigins: [] })).toThrow(/empty/);
    for (const o of [
      'example.com',
      'https://example.com/path',
      'https://user:pw@example.com',
      'ftp://example.com',
      'https://example.com?x',
    ]) {
      expect(() => csrf({ allowedOrigins: [o] }), o).toThrow(/allowedOrigins/);
    }
    expect(() => csrf({ token: 'maybe' as never })).toThrow(/token/);
    expect(() => csrf({ headerName: 'x csrf' })).toThrow(/headerName/);
    expect(() => csrf({ allowedOrigins: ['https://EXAMPLE.com:443'] })).not.toThrow();
  });

  it('checkRequestOrigin is exact and ordered: Sec-Fetch-Site, then Origin, then Referer', () => {
    const allowed = ['https://a.example'];
    expect(checkRequestOrigin({ secFetchSite: 'same-origin', origin: 'https://evil' }, allowed)).toEqual({
      ok: true,
      via: 'fetch-metadata',
    });
    expect(checkRequestOrigin({ origin: 'https://a.example' }, allowed)).toEqual({ ok: true, via: 'origin' });
    expect(checkRequestOrigin({ origin: 'https://A.example' }, allowed).ok).toBe(false);
    expect(checkRequestOrigin({ origin: 'https://a.example:443' }, allowed).ok).toBe(false);
    expect(checkRequestOrigin({ origin: 'https://evil', referer: 'https://a.example/' }, allowed).ok).toBe(false);
    expect(checkRequestOrigin({ referer: 'https://a.example/x' }, allowed)).toEqual({ ok: true, via: 'referer' });
    expect(checkRequestOrigin({}, allowed)).toEqual({ ok: false, reason: 'missing' });
  });
});
