/**
 * Differential suite: the same request sequences go through an app on express-session 1.19 (the
 * oracle) and an app on sesh/express-session; status, body, Set-Cookie attributes and store
 * contents must match (modulo the random IDs, signatures and Expires timestamps).
 */
import oracleSession from 'express-session';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import seshSession from '../src/compat/index.js';
import { closeAll, routes } from './compat-harness.js';
import { expressVersions, listen, type Running, request } from './support/http.js';

type Opts = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: both middleware factories take the same options object.
type Factory = (o: any) => any;

/** A browser-like jar for the cookies of one app (name → value), honouring Max-Age/Expires deletion. */
class Jar {
  cookies = new Map<string, string>();
  header(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  take(setCookie: string[]): void {
    for (const line of setCookie) {
      const [pair] = line.split(';');
      const eq = (pair as string).indexOf('=');
      const name = (pair as string).slice(0, eq);
      const exp = /Expires=([^;]+)/i.exec(line);
      if (exp && Date.parse(exp[1] as string) <= Date.now()) this.cookies.delete(name);
      else this.cookies.set(name, (pair as string).slice(eq + 1));
    }
  }
}

/** Maps each distinct session ID of one app to id0, id1... in order of appearance. */
class Ids {
  map = new Map<string, string>();
  label(id: string): string {
    let l = this.map.get(id);
    if (!l) {
      l = `id${this.map.size}`;
      this.map.set(id, l);
    }
    return l;
  }
  text(s: string): string {
    let out = s;
    for (const [id, l] of this.map) out = out.split(id).join(l);
    return out;
  }
}

interface Side {
  run: Running;
  store: { sessions: Record<string, string>; clear(cb?: () => void): void };
  jar: Jar;
  ids: Ids;
}

function normCookie(line: string, ids: Ids): string {
  return ids
    .text(line)
    .replace(/^([^=]+)=s%3A([^.;]+)\.[A-Za-z0-9%+/_-]+/, (_m, n, id) => `${n}=s:${ids.label(id)}.SIG`)
    .replace(/Expires=[^;]+/, 'Expires=DATE');
}

function normStore(side: Side): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const sid of Object.keys(side.store.sessions).sort((a, b) => side.ids.label(a).localeCompare(side.ids.label(b)))) {
    const parsed = JSON.parse(side.store.sessions[sid] as string) as { cookie: Record<string, unknown> };
    if (typeof parsed.cookie.expires === 'string') parsed.cookie.expires = 'DATE';
    // express-session derives originalMaxAge from Date.now() twice, so it may be off by a millisecond.
    if (typeof parsed.cookie.originalMaxAge === 'number') parsed.cookie.originalMaxAge = Math.round(parsed.cookie.originalMaxAge / 1000);
    out[side.ids.label(sid)] = parsed;
  }
  return out;
}

interface Step {
  path: string;
  headers?: Record<string, string>;
  /** 'jar' (default), 'none' (no cookie), or a raw Cookie header built from the jar value. */
  cookie?: 'jar' | 'none' | ((jarHeader: string | undefined) => string);
}

async function send(side: Side, step: Step) {
  const jarHeader = side.jar.header();
  const cookie = step.cookie === 'none' ? undefined : typeof step.cookie === 'function' ? step.cookie(jarHeader) : jarHeader;
  const reply = await request(side.run.url + step.path, { cookie, headers: step.headers ?? {} });
  for (const line of reply.setCookie) {
    const m = /^[^=]+=s%3A([^.;]+)\./.exec(line);
    if (m) side.ids.label(decodeURIComponent(m[1] as string));
  }
  // IDs that only show up in bodies (sessions never sent as a cookie).
  for (const m of reply.body.matchAll(/"(?:id|sessionId)":"([^"]+)"/g)) side.ids.label(m[1] as string);
  side.jar.take(reply.setCookie);
  return {
    status: reply.status,
    location: reply.headers.get('location'),
    body: side.ids.text(reply.body),
    setCookie: reply.setCookie.map((l) => normCookie(l, side.ids)),
    store: normStore(side),
  };
}

/** Run `steps` on both sides from a clean state and compare every reply and the store after each. */
async function compare(a: Side, b: Side, steps: Step[]): Promise<void> {
  for (const side of [a, b]) {
    side.store.clear();
    side.jar = new Jar();
    side.ids = new Ids();
  }
  for (const [i, step] of steps.entries()) {
    const ra = await send(a, step);
    const rb = await send(b, step);
    const got = { step: i, path: step.path, ...rb };
    const want = { step: i, path: step.path, ...ra };
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`mismatch\n  express-session:      ${JSON.stringify(want)}\n  sesh/express-session: ${JSON.stringify(got)}`);
    }
    expect(got).toEqual(want);
  }
}

async function makeSide(
  factory: Factory,
  StoreClass: new () => Side['store'],
  express: typeof import('express'),
  options: Opts,
  setup?: (app: import('express').Express) => void,
): Promise<Side> {
  const app = express();
  setup?.(app);
  const store = new StoreClass();
  app.use(factory({ secret: 'keyboard cat', ...options, store }));
  routes(app);
  const run = await listen(app);
  return { run, store, jar: new Jar(), ids: new Ids() };
}

const ALPHABET = [
  '/read',
  '/count',
  '/set/a/1',
  '/set/b/2',
  '/nested',
  '/unset',
  '/delete',
  '/destroy',
  '/regenerate',
  '/regenerate-empty',
  '/reload',
  '/save',
  '/touch',
  '/maxage/60000',
  '/maxage/120000',
  '/expires-null',
  '/redirect',
  '/stream',
  '/none',
];

const CONFIGS: Opts[] = [];
for (const resave of [true, false])
  for (const saveUninitialized of [true, false])
    for (const rolling of [false, true])
      for (const unset of ['keep', 'destroy'])
        for (const maxAge of [undefined, 3_600_000])
          CONFIGS.push({ resave, saveUninitialized, rolling, unset, cookie: maxAge === undefined ? {} : { maxAge } });

for (const { name, express } of expressVersions) {
  describe(`differential: express-session vs sesh/express-session (${name})`, () => {
    const sides: Array<[Side, Side]> = [];
    beforeAll(async () => {
      for (const options of CONFIGS) {
        const a = await makeSide(oracleSession as Factory, oracleSession.MemoryStore as never, express, options);
        const b = await makeSide(seshSession as Factory, seshSession.MemoryStore as never, express, options);
        sides.push([a, b]);
      }
    });
    afterAll(() => closeAll(sides.flat().map((s) => s.run)));

    it('random request sequences give the same replies and store contents, for every option combination', async () => {
      for (const [i, [a, b]] of sides.entries()) {
        await fc.assert(
          fc.asyncProperty(
            fc.array(
              fc.record({
                path: fc.constantFrom(...ALPHABET),
                cookie: fc.constantFrom<'jar' | 'none'>('jar', 'jar', 'jar', 'none'),
              }),
              { minLength: 1, maxLength: 7 },
            ),
            async (steps) => {
              try {
                await compare(a, b, steps);
              } catch (err) {
                throw new Error(`config ${JSON.stringify(CONFIGS[i])}: ${(err as Error).message}`);
              }
            },
          ),
          { numRuns: name === 'express 5' ? 8 : 4, seed: 4242 + i },
        );
      }
    }, 120_000);

    it('fixed edge-case sequences match', async () => {
      const seqs: Array<[Opts, Step[]]> = [
        // resave false + touch: unmodified sessions are touched (no write), modified ones saved
        [
          { resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 } },
          [{ path: '/count' }, { path: '/read' }, { path: '/count' }, { path: '/touch' }],
        ],
        // saveUninitialized false: no cookie and no store entry until modified
        [{ resave: false, saveUninitialized: false }, [{ path: '/read' }, { path: '/read' }, { path: '/set/a/1' }, { path: '/read' }]],
        // rolling resends the cookie on every response
        [
          { resave: false, saveUninitialized: false, rolling: true, cookie: { maxAge: 60_000 } },
          [{ path: '/set/a/1' }, { path: '/read' }, { path: '/read' }],
        ],
        // unset destroy vs keep
        [{ resave: false, saveUninitialized: true, unset: 'destroy' }, [{ path: '/set/a/1' }, { path: '/unset' }, { path: '/read' }]],
        [{ resave: false, saveUninitialized: true, unset: 'keep' }, [{ path: '/set/a/1' }, { path: '/unset' }, { path: '/read' }]],
        [{ resave: false, saveUninitialized: true, unset: 'destroy' }, [{ path: '/set/a/1' }, { path: '/delete' }, { path: '/read' }]],
        // regenerate, destroy, reload
        [
          { resave: false, saveUninitialized: false },
          [{ path: '/set/a/1' }, { path: '/regenerate' }, { path: '/read' }, { path: '/destroy' }, { path: '/read' }],
        ],
        [{ resave: false, saveUninitialized: false }, [{ path: '/reload' }, { path: '/set/a/1' }, { path: '/reload' }]],
        // maxAge / expires changes
        [
          { resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 } },
          [{ path: '/set/a/1' }, { path: '/maxage/5000' }, { path: '/read' }, { path: '/expires-null' }],
        ],
        // a tampered, an unsigned and a foreign-secret cookie are all "no session"
        [
          { resave: false, saveUninitialized: true },
          [
            { path: '/set/a/1' },
            { path: '/read', cookie: (h) => `${h}x` },
            { path: '/read', cookie: () => 'connect.sid=plain' },
            { path: '/read', cookie: () => 'connect.sid=s%3Aabc.def' },
          ],
        ],
        // multiple cookies with the name: the first one counts
        [
          { resave: false, saveUninitialized: false },
          [
            { path: '/set/a/1' },
            { path: '/read', cookie: (h) => `connect.sid=s%3Abogus.x; ${h}` },
            { path: '/read', cookie: (h) => `${h}; connect.sid=s%3Abogus.x` },
          ],
        ],
        // quoted value and other cookies around it
        [
          { resave: false, saveUninitialized: false },
          [{ path: '/set/a/1' }, { path: '/read', cookie: (h) => `a=1; ${(h as string).replace('=', '="')}"; b=2` }],
        ],
      ];
      for (const [options, steps] of seqs) {
        const a = await makeSide(oracleSession as Factory, oracleSession.MemoryStore as never, express, options);
        const b = await makeSide(seshSession as Factory, seshSession.MemoryStore as never, express, options);
        try {
          await compare(a, b, steps);
        } finally {
          await closeAll([a.run, b.run]);
        }
      }
    }, 60_000);

    it('cookie options: name, path mismatch, domain, sameSite, partitioned, priority, secure and proxy handling', async () => {
      const cases: Array<[Opts, Step[], ((app: import('express').Express) => void)?]> = [
        [
          {
            name: 'sid',
            resave: false,
            saveUninitialized: true,
            cookie: {
              path: '/sub',
              domain: 'example.com',
              sameSite: 'strict',
              partitioned: true,
              priority: 'high',
              httpOnly: false,
              maxAge: 1000,
            },
          },
          [{ path: '/read' }, { path: '/sub/read' }, { path: '/sub/read' }],
        ],
        [
          { resave: false, saveUninitialized: true, cookie: { secure: true } },
          [{ path: '/read' }, { path: '/read', headers: { 'x-forwarded-proto': 'https' } }],
        ],
        [
          { resave: false, saveUninitialized: true, proxy: true, cookie: { secure: true } },
          [{ path: '/read' }, { path: '/read', headers: { 'x-forwarded-proto': 'https, http' } }],
        ],
        [
          { resave: false, saveUninitialized: true, proxy: false, cookie: { secure: true } },
          [{ path: '/read', headers: { 'x-forwarded-proto': 'https' } }],
        ],
        [
          { resave: false, saveUninitialized: true, cookie: { secure: 'auto', sameSite: 'auto' } },
          [{ path: '/read' }, { path: '/read', headers: { 'x-forwarded-proto': 'https' } }],
          (app) => app.set('trust proxy', 1),
        ],
        [
          { resave: false, saveUninitialized: true, cookie: { secure: 'auto' } },
          [{ path: '/read', headers: { 'x-forwarded-proto': 'https' } }],
        ],
        [
          { resave: false, saveUninitialized: true, cookie: () => ({ maxAge: 5000, path: '/sub', sameSite: 'lax' }) },
          [{ path: '/read' }, { path: '/sub/read' }, { path: '/sub/read' }],
        ],
        [{ resave: false, saveUninitialized: true, genid: () => 'fixed-id-123' }, [{ path: '/set/a/1' }, { path: '/read' }]],
        [
          { resave: false, saveUninitialized: true, secret: ['new secret', 'keyboard cat'] },
          [{ path: '/read', cookie: () => `connect.sid=${encodeURIComponent(`s:${signOld('abc')}`)}` }],
        ],
      ];
      for (const [options, steps, setup] of cases) {
        const a = await makeSide(oracleSession as Factory, oracleSession.MemoryStore as never, express, options, setup);
        const b = await makeSide(seshSession as Factory, seshSession.MemoryStore as never, express, options, setup);
        try {
          await compare(a, b, steps);
        } finally {
          await closeAll([a.run, b.run]);
        }
      }
    }, 60_000);
  });
}

import { createHmac } from 'node:crypto';

function signOld(id: string): string {
  return `${id}.${createHmac('sha256', 'keyboard cat').update(id).digest('base64').replace(/=+$/, '')}`;
}
