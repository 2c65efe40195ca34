/**
 * Differential suite: the same request sequences go through an app on express-session 1.19 (the
 * oracle) and an app on sesh/express-session; status, body, Set-Cookie attributes (Expires
 * included) and store contents (cookie expiry and originalMaxAge included) must match exactly,
 * modulo the random IDs, which are labelled in order of appearance, and the signatures, which are
 * checked to be express-session's HMAC of the ID under the first secret.
 *
 * Time is a controlled clock (only `Date` is faked; timers and I/O are real): every sequence starts
 * at the same instant and each step moves it by a fixed amount, and both apps see the same instant
 * for the same step. So an Expires second boundary, a millisecond of drift between two `Date.now()`
 * calls, or a slow machine cannot make the two sides differ.
 */
import { createHmac } from 'node:crypto';
import oracleSession from 'express-session';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import seshSession from '../src/compat/index.js';
import { closeAll, routes } from './compat-harness.js';
import { expressVersions, listen, type Running, request } from './support/http.js';

type Opts = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: both middleware factories take the same options object.
type Factory = (o: any) => any;

/** Where every sequence starts: a fixed instant with a sub-second part (Expires truncates it). */
const T0 = Date.UTC(2030, 0, 15, 10, 20, 30, 456);
/** How far the clock moves before each step unless the step says otherwise. */
const STEP_MS = 1_000;

/** A browser-like jar for the cookies of one app (name → value), honouring Max-Age/Expires deletion. */
class Jar {
  cookies = new Map<string, string>();
  /** Every value ever set, even once expired or cleared: what a client that ignores expiry sends. */
  kept = new Map<string, string>();
  header(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  take(setCookie: string[]): void {
    for (const line of setCookie) {
      const [pair] = line.split(';');
      const eq = (pair as string).indexOf('=');
      const name = (pair as string).slice(0, eq);
      const exp = /;\s*Expires=([^;]+)/i.exec(line);
      const maxAge = /;\s*Max-Age=(-?\d+)/i.exec(line);
      // Date.now() is the controlled clock, the same instant on both sides.
      const gone = maxAge ? Number(maxAge[1]) <= 0 : exp ? Date.parse(exp[1] as string) <= Date.now() : false;
      this.kept.set(name, (pair as string).slice(eq + 1));
      if (gone) this.cookies.delete(name);
      else this.cookies.set(name, (pair as string).slice(eq + 1));
    }
  }
}

/**
 * Maps each distinct session ID of one app to <id0>, <id1>... in order of appearance. The labels
 * use characters no ID contains, and all IDs are replaced in one pass, so an ID that happens to
 * contain the text of a label (or of another ID) cannot be rewritten twice.
 */
class Ids {
  map = new Map<string, string>();
  #re: RegExp | undefined;
  label(id: string): string {
    let l = this.map.get(id);
    if (!l) {
      l = `<id${this.map.size}>`;
      this.map.set(id, l);
      this.#re = undefined;
    }
    return l;
  }
  text(s: string): string {
    if (this.map.size === 0) return s;
    if (!this.#re) {
      const keys = [...this.map.keys()].sort((a, b) => b.length - a.length);
      this.#re = new RegExp(keys.map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
    }
    return s.replace(this.#re, (m) => this.map.get(m) as string);
  }
}

interface Side {
  run: Running;
  store: { sessions: Record<string, string>; clear(cb?: () => void): void };
  jar: Jar;
  ids: Ids;
  /** The secret that signs (the first one), to check every signature. */
  secret: string;
}

/** express-session's cookie signature: base64 HMAC-SHA256 of the ID without `=` padding. */
function signature(id: string, secret: string): string {
  return createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '');
}

function normCookie(line: string, side: Side): string {
  return line.replace(/^([^=;]+)=s%3A([^.;]+)\.([^;]*)/, (_m, n: string, rawId: string, rawSig: string) => {
    const id = decodeURIComponent(rawId);
    const ok = decodeURIComponent(rawSig) === signature(id, side.secret);
    return `${n}=s:${side.ids.label(id)}.${ok ? 'SIG' : `BAD-SIG(${rawSig})`}`;
  });
}

/**
 * The live records of a store. Expired records are left out: both stores answer "none" for them,
 * but sesh's MemoryStore also sweeps them on writes while express-session's keeps them until read
 * (a documented fix), so only the live ones can be compared.
 */
function normStore(side: Side): Record<string, unknown> {
  const live = (sid: string) => {
    const expires = (JSON.parse(side.store.sessions[sid] as string) as { cookie?: { expires?: unknown } }).cookie?.expires;
    return typeof expires !== 'string' || Date.parse(expires) > Date.now();
  };
  // Label unseen IDs in insertion order first, then list by label.
  const sids = Object.keys(side.store.sessions).filter(live);
  for (const sid of sids) side.ids.label(sid);
  const num = (sid: string) => Number(/\d+/.exec(side.ids.label(sid))?.[0]);
  const out: Record<string, unknown> = {};
  for (const sid of sids.sort((a, b) => num(a) - num(b))) out[side.ids.label(sid)] = JSON.parse(side.store.sessions[sid] as string);
  return out;
}

interface Step {
  path: string;
  /** How far the controlled clock moves before this step (default STEP_MS). */
  advance?: number;
  headers?: Record<string, string>;
  /**
   * 'jar' (default), 'none' (no cookie), 'replay' (every cookie last set, even expired ones: a
   * client that ignores Expires), or a raw Cookie header built from the jar value.
   */
  cookie?: 'jar' | 'none' | 'replay' | ((jarHeader: string | undefined) => string);
}

async function send(side: Side, step: Step) {
  const jarHeader = side.jar.header();
  const replay = [...side.jar.kept].map(([k, v]) => `${k}=${v}`).join('; ') || undefined;
  const cookie =
    step.cookie === 'none'
      ? undefined
      : step.cookie === 'replay'
        ? replay
        : typeof step.cookie === 'function'
          ? step.cookie(jarHeader)
          : jarHeader;
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
    setCookie: reply.setCookie.map((l) => normCookie(l, side)),
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
  let now = T0;
  for (const [i, step] of steps.entries()) {
    now += step.advance ?? STEP_MS;
    vi.setSystemTime(now);
    const ra = await send(a, step);
    vi.setSystemTime(now);
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
  const secret = (options.secret ?? 'keyboard cat') as string | string[];
  return { run, store, jar: new Jar(), ids: new Ids(), secret: (Array.isArray(secret) ? secret[0] : secret) as string };
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
      // Only Date is faked: the servers, sockets and timers run for real.
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(T0);
      for (const options of CONFIGS) {
        const a = await makeSide(oracleSession as Factory, oracleSession.MemoryStore as never, express, options);
        const b = await makeSide(seshSession as Factory, seshSession.MemoryStore as never, express, options);
        sides.push([a, b]);
      }
    });
    afterAll(async () => {
      vi.useRealTimers();
      await closeAll(sides.flat().map((s) => s.run));
    });

    it('random request sequences give the same replies and store contents, for every option combination', async () => {
      for (const [i, [a, b]] of sides.entries()) {
        await fc.assert(
          fc.asyncProperty(
            fc.array(
              fc.record({
                path: fc.constantFrom(...ALPHABET),
                cookie: fc.constantFrom<'jar' | 'none' | 'replay'>('jar', 'jar', 'jar', 'none', 'replay'),
                // Mostly a second; sometimes past a 60 s cookie, or past every lifetime used here.
                advance: fc.constantFrom(1_000, 1_000, 1_000, 30_000, 61_000, 3_600_001),
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
        // expiry on the controlled clock: still alive just before, gone after; a client that ignores
        // Expires gets no session either (the store refuses the expired record)
        [
          { resave: false, saveUninitialized: false, cookie: { maxAge: 5_000 } },
          [
            { path: '/set/a/1' },
            { path: '/read', advance: 4_999 },
            { path: '/read', advance: 4_999 },
            { path: '/read', advance: 5_000 },
            { path: '/read', cookie: 'replay', advance: 0 },
            { path: '/set/b/2' },
          ],
        ],
        [
          { resave: true, saveUninitialized: true, rolling: true, cookie: { maxAge: 2_000 } },
          [
            { path: '/read' },
            { path: '/read', advance: 1_999 },
            { path: '/read', advance: 2_000 },
            { path: '/read', cookie: 'replay', advance: 0 },
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

function signOld(id: string): string {
  return `${id}.${createHmac('sha256', 'keyboard cat').update(id).digest('base64').replace(/=+$/, '')}`;
}
