/**
 * Shared fixtures of the auth, CSRF and security-matrix tests: a spying store around a real
 * MemoryStore, a raw HTTP client (node:http, headers sent verbatim, Host overridable), a small
 * cookie jar and one app with every auth route.
 */
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Express, NextFunction, Request, Response } from 'express';
import {
  authenticate,
  type CsrfOptions,
  csrf,
  csrfToken,
  type ExpressSessionOptions,
  getSessionState,
  listSessions,
  login,
  logout,
  requireAuth,
  requireRole,
  revokeOtherSessions,
  revokeSession,
  session,
} from '../src/adapters/express/index.js';
import type { SeshEvent, SessionPatch, Store, StoredSession, StoredSessionEntry } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';

export const SECRET = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';
export const OLD_SECRET = 'Gm3Qx8Vb2Nc7Lr5Tz9Wd1Hk4Jp6Fs0Yq';
export const COOKIE = '__Host-sid';

export type Op = 'get' | 'create' | 'patch' | 'touch' | 'destroy' | 'listByUser' | 'destroyByUser';

/**
 * A real MemoryStore behind a spy: counts and records every call, and can delay, fail or hang an
 * operation, or rewrite what `get` returns (to simulate a broken backend). Failure modes are only
 * used by tests about the engine's reaction to a broken store, never to test the store itself.
 */
export class SpyStore implements Store {
  readonly inner: MemoryStore;
  calls: Record<Op, number> = { get: 0, create: 0, patch: 0, touch: 0, destroy: 0, listByUser: 0, destroyByUser: 0 };
  /** Every argument list seen, serialized (to check no raw ID reaches the store). */
  log: string[] = [];
  delay: Partial<Record<Op, number>> = {};
  fail = new Set<Op>();
  hang = new Set<Op>();
  mutateGet: ((r: StoredSession) => unknown) | null = null;

  constructor(inner = new MemoryStore({ sweepInterval: 0 })) {
    this.inner = inner;
  }

  async #run<T>(op: Op, args: unknown[], fn: () => Promise<T>): Promise<T> {
    this.calls[op]++;
    this.log.push(`${op} ${JSON.stringify(args)}`);
    const d = this.delay[op];
    if (d) await sleep(d);
    if (this.hang.has(op)) return new Promise<T>(() => undefined);
    if (this.fail.has(op)) throw new Error(`simulated ${op} outage`);
    return fn();
  }
  get(key: string) {
    return this.#run('get', [key], async () => {
      const r = await this.inner.get(key);
      return (r && this.mutateGet ? this.mutateGet(r) : r) as StoredSession | null;
    });
  }
  create(key: string, s: StoredSession) {
    return this.#run('create', [key, s], () => this.inner.create(key, s));
  }
  patch(key: string, p: SessionPatch) {
    return this.#run('patch', [key, p], () => this.inner.patch(key, p));
  }
  touch(key: string, l: number, e: number) {
    return this.#run('touch', [key, l, e], () => this.inner.touch(key, l, e));
  }
  destroy(key: string) {
    return this.#run('destroy', [key], () => this.inner.destroy(key));
  }
  listByUser(userId: string): Promise<StoredSessionEntry[]> {
    return this.#run('listByUser', [userId], () => this.inner.listByUser(userId));
  }
  destroyByUser(userId: string, except?: readonly string[]): Promise<number> {
    return this.#run('destroyByUser', [userId, except], () => this.inner.destroyByUser(userId, except));
  }
  reset(): void {
    for (const k of Object.keys(this.calls) as Op[]) this.calls[k] = 0;
    this.log = [];
  }
}

/** One HTTP response. */
export interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  setCookie: string[];
  json<T = Record<string, unknown>>(): T;
}

/** Send one request with node:http: headers go out verbatim (Host too), no cookie handling. */
export function send(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; cookie?: string } = {},
): Promise<Reply> {
  const url = new URL(path, base);
  const headers: Record<string, string> = { ...init.headers };
  if (init.cookie !== undefined) headers.cookie = init.cookie;
  if (init.body !== undefined) {
    headers['content-length'] = String(Buffer.byteLength(init.body));
    headers['content-type'] ??= 'application/json';
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method: init.method ?? 'GET', headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            body,
            headers: res.headers,
            setCookie: res.headers['set-cookie'] ?? [],
            json: <T>() => JSON.parse(body) as T,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (init.body !== undefined) req.write(init.body);
    req.end();
  });
}

/** `name=value` of the session cookie set by a reply, or undefined; `''` when it was cleared. */
export function sessionCookie(reply: Reply): string | undefined {
  const line = reply.setCookie.find((c) => c.startsWith(`${COOKIE}=`));
  if (!line) return undefined;
  return /Max-Age=0/i.test(line) ? '' : line.split(';')[0];
}

/** The cookie value (`v1.<id>.<mac>`) of a `name=value` pair. */
export function cookieValue(pair: string): string {
  return pair.slice(COOKIE.length + 1);
}

/** A browser-like client: keeps the session cookie, sends same-origin Fetch Metadata by default. */
export class Browser {
  cookie: string | undefined;
  constructor(
    readonly base: string,
    readonly userAgent = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  ) {}
  async send(path: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<Reply> {
    const method = init.method ?? (init.body === undefined ? 'GET' : 'POST');
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...init.headers };
    if (method !== 'GET' && method !== 'HEAD' && headers['sec-fetch-site'] === undefined) headers['sec-fetch-site'] = 'same-origin';
    for (const k of Object.keys(headers)) if (headers[k] === '') delete headers[k];
    const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    const reply = await send(this.base, path, { method, headers, body, cookie: this.cookie });
    const c = sessionCookie(reply);
    if (c !== undefined) this.cookie = c === '' ? undefined : c;
    return reply;
  }
  post(path: string, body: unknown = {}, headers: Record<string, string> = {}): Promise<Reply> {
    return this.send(path, { method: 'POST', body, headers });
  }
}

/** A promise released from outside. */
export class Gate {
  release!: () => void;
  readonly opened: Promise<void>;
  constructor() {
    this.opened = new Promise((r) => {
      this.release = r;
    });
  }
}

/** Resolves when `n` callers have arrived. */
export function barrier(n: number): () => Promise<void> {
  let count = 0;
  const gate = new Gate();
  return async () => {
    count++;
    if (count >= n) gate.release();
    await gate.opened;
  };
}

/** What {@link buildApp} returns. */
export interface TestApp {
  app: Express;
  mw: ReturnType<typeof session>;
  events: SeshEvent[];
  /** Routes `/slow/*` wait on `gates[name]` (created on demand) after loading the session. */
  gate(name: string): Gate;
  /** Names of the `/slow/*` requests that loaded their session and are parked on their gate. */
  arrived: Set<string>;
  /** Routes `/race-login` wait on this barrier before calling login (set per test). */
  arrive: { fn: () => Promise<void> };
}

type ExpressFactory = () => Express & { json: unknown };

/**
 * An app with every auth route. `express` is the Express 4 or 5 factory; `csrfOptions: false`
 * leaves CSRF protection out.
 */
export function buildApp(
  express: unknown,
  opts: {
    store?: Store;
    session?: Partial<ExpressSessionOptions>;
    csrf?: CsrfOptions | false;
    /** Extra routes, mounted before the error handler. */
    routes?: (app: Express) => void;
    /** Express settings such as `trust proxy`. */
    settings?: Record<string, unknown>;
  } = {},
): TestApp {
  const ex = express as ExpressFactory & {
    json: () => (req: Request, res: Response, next: NextFunction) => void;
    urlencoded: (o: { extended: boolean }) => (req: Request, res: Response, next: NextFunction) => void;
    text: () => (req: Request, res: Response, next: NextFunction) => void;
  };
  const app = ex();
  const events: SeshEvent[] = [];
  const mw = session({
    secret: SECRET,
    store: opts.store ?? new MemoryStore({ sweepInterval: 0 }),
    onEvent: (e) => events.push(e),
    onError: () => undefined,
    ...opts.session,
  });
  const gates = new Map<string, Gate>();
  const gate = (name: string) => {
    let g = gates.get(name);
    if (!g) {
      g = new Gate();
      gates.set(name, g);
    }
    return g;
  };
  const arrive = { fn: async () => undefined };
  const arrived = new Set<string>();
  for (const [k, v] of Object.entries(opts.settings ?? {})) app.set(k, v);
  app.use(mw);
  app.use(ex.json());
  app.use(ex.urlencoded({ extended: false }));
  if (opts.csrf !== false) app.use(csrf(opts.csrf ?? {}));

  const wrap = (fn: (req: Request, res: Response) => Promise<unknown> | unknown) => (req: Request, res: Response, next: NextFunction) => {
    Promise.resolve()
      .then(() => fn(req, res))
      .catch(next);
  };

  app.get('/whoami', (req, res) => {
    res.json({ auth: authenticate(req), data: { ...req.session } });
  });
  app.post(
    '/login',
    wrap(async (req, res) => {
      const b = (req.body ?? {}) as { user?: string; roles?: string[]; remember?: boolean; max?: number };
      await login(req, b.user ?? 'alice', { roles: b.roles, remember: b.remember, keep: ['cart'], maxSessionsPerUser: b.max });
      res.json({ ok: true });
    }),
  );
  app.post(
    '/race-login',
    wrap(async (req, res) => {
      await arrive.fn();
      await login(req, 'alice');
      res.json({ ok: true });
    }),
  );
  app.post(
    '/logout',
    wrap(async (req, res) => {
      await logout(req);
      res.json({ ok: true });
    }),
  );
  app.post(
    '/set',
    wrap((req, res) => {
      const b = req.body as Record<string, unknown>;
      for (const k of Object.keys(b)) (req.session as unknown as Record<string, unknown>)[k] = b[k];
      res.json({ ok: true });
    }),
  );
  app.post(
    '/set-key',
    wrap((req, res) => {
      const b = req.body as { key: string; value: unknown };
      (req.session as unknown as Record<string, unknown>)[b.key] = b.value;
      res.json({ ok: true });
    }),
  );
  app.post(
    '/regenerate',
    wrap(async (req, res) => {
      await req.session.regenerate();
      res.json({ ok: true });
    }),
  );
  app.post(
    '/slow/:name',
    wrap(async (req, res) => {
      const name = req.params.name as string;
      arrived.add(name);
      await gate(name).opened;
      const b = (req.body ?? {}) as Record<string, unknown>;
      if (b.touch) req.session.touch();
      for (const k of Object.keys(b)) if (k !== 'touch') (req.session as unknown as Record<string, unknown>)[k] = b[k];
      res.json({ ok: true, gone: getSessionState(req).gone });
    }),
  );
  app.get('/private', requireAuth(), (_req, res) => {
    res.json({ user: res.locals.user });
  });
  app.get('/admin', requireRole('admin'), (_req, res) => {
    res.json({ admin: true });
  });
  app.get('/csrf-token', (req, res) => {
    res.json({ token: csrfToken(req) });
  });
  app.post('/action', (_req, res) => {
    res.json({ done: true });
  });
  app.get(
    '/sessions',
    requireAuth(),
    wrap(async (req, res) => {
      res.json(await listSessions(req));
    }),
  );
  app.post(
    '/revoke-others',
    requireAuth(),
    wrap(async (req, res) => {
      res.json({ n: await revokeOtherSessions(req) });
    }),
  );
  app.post(
    '/revoke',
    requireAuth(),
    wrap(async (req, res) => {
      res.json({ revoked: await revokeSession(req, String((req.body as { handle?: string }).handle)) });
    }),
  );
  opts.routes?.(app);
  app.use((err: { status?: number; code?: string }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.status ?? 500).json({ error: err.code ?? 'error' });
  });
  return { app, mw, events, gate, arrive, arrived };
}
