// How the Express adapter holds a response until the session is written (src/adapters/express/
// response.ts): through the wrappers on Express's shared response prototype (the fast path), or
// through methods replaced on the response when a middleware before the session replaced them.
import { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { getHeapSnapshot } from 'node:v8';
import type { Express, NextFunction, Request, Response } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { getSessionState, session } from '../src/adapters/express/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { Client, expressVersions, listen, type Running, request } from './support/http.js';

declare module '../src/index.js' {
  interface SessionData {
    views: number;
  }
}

const SECRET = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';

/** Counts socket writes per response (`_write` and `_writev` calls of the connection). */
function countSocketWrites(log: number[]) {
  return (req: Request, res: Response, next: NextFunction) => {
    const socket = req.socket as unknown as { _write: (...a: unknown[]) => void; _writev?: (...a: unknown[]) => void };
    let n = 0;
    const write = socket._write;
    const writev = socket._writev;
    socket._write = function (this: unknown, ...a: unknown[]) {
      n++;
      return write.apply(this, a);
    };
    if (writev) {
      socket._writev = function (this: unknown, ...a: unknown[]) {
        n++;
        return writev.apply(this, a);
      };
    }
    res.on('finish', () => {
      setImmediate(() => {
        socket._write = write;
        if (writev) socket._writev = writev;
        log.push(n);
      });
    });
    next();
  };
}

/**
 * Edges of a heap snapshot of this process from objects made by the classes named in `from` to
 * objects made by those named in `to`, as "Class.edge -> Class" (weak edges left out).
 */
async function heapEdges(from: readonly string[], to: readonly string[]): Promise<string[]> {
  let text = '';
  for await (const chunk of getHeapSnapshot()) text += String(chunk);
  const snap = JSON.parse(text) as {
    snapshot: { meta: { node_fields: string[]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const {
    node_fields: nf,
    edge_fields: ef,
    edge_types: [edgeTypes],
  } = snap.snapshot.meta;
  const nameAt = nf.indexOf('name');
  const edgeCountAt = nf.indexOf('edge_count');
  const [typeAt, nameOrIndexAt, toAt] = [ef.indexOf('type'), ef.indexOf('name_or_index'), ef.indexOf('to_node')];
  const found: string[] = [];
  let edge = 0;
  for (let node = 0; node < snap.nodes.length; node += nf.length) {
    const name = snap.strings[snap.nodes[node + nameAt] as number] as string;
    const count = snap.nodes[node + edgeCountAt] as number;
    if (from.includes(name)) {
      for (let e = edge; e < edge + count * ef.length; e += ef.length) {
        const type = edgeTypes[snap.edges[e + typeAt] as number];
        if (type === 'weak') continue;
        const target = snap.strings[snap.nodes[(snap.edges[e + toAt] as number) + nameAt] as number] as string;
        if (!to.includes(target)) continue;
        const label =
          type === 'element' || type === 'hidden'
            ? String(snap.edges[e + nameOrIndexAt])
            : snap.strings[snap.edges[e + nameOrIndexAt] as number];
        found.push(`${name}.${label} -> ${target}`);
      }
    }
    edge += count * ef.length;
  }
  return found;
}

const views = (req: Request, res: Response) => {
  req.session.views = (req.session.views ?? 0) + 1;
  res.send(`views:${req.session.views}`);
};

for (const { name, express } of expressVersions) {
  describe(`${name}: response deferral`, () => {
    let running: Running[] = [];
    afterEach(async () => {
      await Promise.all(running.map((r) => r.close()));
      running = [];
    });
    async function start(setup: (app: Express) => void): Promise<string> {
      const app = express();
      setup(app);
      const r = await listen(app);
      running.push(r);
      return r.url;
    }

    it('commits sessions written by routes of a mounted sub-app (which swaps the response prototype)', async () => {
      const url = await start((app) => {
        app.use(session({ secret: SECRET, store: new MemoryStore(), insecureDevMode: true }));
        const sub = express();
        sub.get('/views', views);
        app.use('/sub', sub);
        app.get('/views', views);
      });
      const c = new Client(url, 'sid');
      const first = await c.send('/sub/views');
      expect(first.body).toBe('views:1');
      expect(first.setCookie.some((l) => l.startsWith('sid='))).toBe(true);
      expect((await c.send('/sub/views')).body).toBe('views:2');
      expect((await c.send('/views')).body).toBe('views:3');
    });

    it('exposes req.session without adding it to each request; other apps, earlier middlewares and assignments keep plain-property behaviour', async () => {
      const plain = await start((app) => {
        app.get('/', (req, res) => {
          const before = [req.session === undefined, Object.hasOwn(req, 'session')];
          (req as { session: unknown }).session = { mine: 1 };
          res.json([...before, (req.session as unknown as { mine: number }).mine, Object.hasOwn(req, 'session')]);
        });
      });
      const url = await start((app) => {
        app.use((req, _res, next) => {
          // Another middleware's leftover, replaced by sesh as before.
          (req as { session: unknown }).session = { stale: true };
          next();
        });
        app.use(session({ secret: SECRET, store: new MemoryStore(), insecureDevMode: true }));
        app.get('/views', views);
        app.get('/wrapped', (req, res) => {
          // A wrapper that inherits from the request (as some libraries make) sees its session.
          const view = Object.create(req) as Request;
          view.session.views = (view.session.views ?? 0) + 100;
          res.send(`views:${req.session.views}`);
        });
        app.get('/shape', (req, res) => {
          req.session.views = 10;
          const stale = (req.session as { stale?: boolean }).stale;
          const id = req.session.id;
          const own = Object.hasOwn(req, 'session');
          (req as { session: unknown }).session = { replaced: true };
          res.json([stale ?? null, typeof id, own, req.session as unknown]);
        });
      });
      const c = new Client(url, 'sid');
      expect((await c.send('/views')).body).toBe('views:1');
      // The plain app in the same process: no session, and assigning one gives an own property.
      expect(JSON.parse((await request(plain)).body)).toEqual([true, false, 1, true]);
      expect((await c.send('/wrapped')).body).toBe('views:101');
      const shape = await c.send('/shape');
      expect(JSON.parse(shape.body)).toEqual([null, 'string', false, { replaced: true }]);
      // Replacing req.session does not undo what the route wrote to the session before.
      expect((await c.send('/views')).body).toBe('views:11');
    });

    it('leaves responses of apps and routes without a session untouched', async () => {
      const plain = await start((app) => {
        app.get('/', (_req, res) => {
          res.writeHead(201, { 'x-a': '1' });
          res.write('a');
          res.end('b');
        });
      });
      const withSession = await start((app) => {
        app.get('/free', (_req, res) => {
          res.status(202).send('free');
        });
        app.use(session({ secret: SECRET, store: new MemoryStore(), insecureDevMode: true }));
        app.get('/views', views);
      });
      // The session app installs the wrappers first; the plain app shares Express's prototype.
      expect((await request(`${withSession}/views`)).body).toBe('views:1');
      const r = await request(plain);
      expect([r.status, r.body, r.headers.get('x-a')]).toEqual([201, 'ab', '1']);
      const free = await request(`${withSession}/free`);
      expect([free.status, free.body, free.setCookie]).toEqual([202, 'free', []]);
    });

    it('works after a middleware that replaced res.end on the response, and before one that does so later', async () => {
      const seen: string[] = [];
      const wrapEnd = (tag: string) => (_req: Request, res: Response, next: NextFunction) => {
        const end = res.end;
        res.end = function (this: Response, ...args: unknown[]) {
          seen.push(tag);
          return (end as (...a: unknown[]) => Response).apply(this, args);
        } as typeof res.end;
        next();
      };
      const url = await start((app) => {
        app.use(wrapEnd('before'));
        app.use(session({ secret: SECRET, store: new MemoryStore(), insecureDevMode: true }));
        app.use(wrapEnd('after'));
        app.get('/views', views);
      });
      const c = new Client(url, 'sid');
      expect((await c.send('/views')).body).toBe('views:1');
      expect((await c.send('/views')).body).toBe('views:2');
      expect(c.cookie).toBeDefined();
      expect(seen).toEqual(['after', 'before', 'after', 'before']);
    });

    it("still calls a patch of Node's ServerResponse.prototype.end made after the wrappers were installed", async () => {
      const url = await start((app) => {
        app.use(session({ secret: SECRET, store: new MemoryStore(), insecureDevMode: true }));
        app.get('/views', views);
      });
      expect((await request(`${url}/views`)).body).toBe('views:1'); // wrappers installed by now
      const proto = ServerResponse.prototype as unknown as { end: (...a: unknown[]) => unknown };
      const end = proto.end;
      let calls = 0;
      proto.end = function (this: unknown, ...a: unknown[]) {
        calls++;
        return end.apply(this, a);
      };
      try {
        const r = await request(`${url}/views`);
        expect([r.body, r.setCookie.length]).toEqual(['views:1', 1]);
        expect(calls).toBe(1);
      } finally {
        proto.end = end;
      }
    });

    it('keeps headers and body in one socket write, as bare Express does', async () => {
      const writes: number[] = [];
      const url = await start((app) => {
        app.use(countSocketWrites(writes));
        app.get('/bare', (_req, res) => {
          res.send('bare');
        });
        app.use(session({ secret: SECRET, store: new MemoryStore(), insecureDevMode: true }));
        app.get('/views', views);
      });
      const c = new Client(url, 'sid');
      await c.send('/bare');
      const created = await c.send('/views'); // creates the session: Set-Cookie
      const changed = await c.send('/views'); // per-key patch
      expect(created.setCookie.length).toBe(1);
      expect(changed.body).toBe('views:2');
      await new Promise((r) => setTimeout(r, 20));
      expect(writes).toEqual([1, 1, 1]);
    });

    it('keeps nothing that leads back to a request once its response was committed (so young-generation GC can free it)', async () => {
      // The registration and the deferral are WeakMap values keyed by the request and the response.
      // V8's scavenger treats WeakMap values as strong, so a value that still led to its request
      // would keep every request (and all it holds) alive until a full GC: measured at +4.4 KB
      // promoted per request and twice the scavenge time. This test holds finished requests and
      // looks at what sesh still keeps for them.
      const held: Array<[Request, Response]> = [];
      const url = await start((app) => {
        app.use(session({ secret: SECRET, store: new MemoryStore(), insecureDevMode: true }));
        app.get('/views', (req, res) => {
          held.push([req, res]);
          views(req, res);
        });
      });
      const c = new Client(url, 'sid');
      await c.send('/views'); // creates the session
      await c.send('/views'); // loads and patches it
      await new Promise((r) => setImmediate(r));
      expect(held).toHaveLength(2);
      const bookkeeping = ['Registration', 'SessionState', 'ExpressContext', 'Deferral'];
      // The snapshot does see these objects and their edges: the registrations are there, and
      // a request's own reference to its response (Express's `req.res`) is found.
      const own = await heapEdges([...bookkeeping, 'IncomingMessage'], ['IncomingMessage', 'ServerResponse', 'SessionState']);
      expect(own).toContain('Registration.state -> SessionState');
      expect(own).toContain('IncomingMessage.res -> ServerResponse');
      expect(own.filter((e) => bookkeeping.some((b) => e.startsWith(`${b}.`)) && !e.endsWith('SessionState'))).toEqual([]);
      expect(held.every(([req]) => req.session.views !== undefined)).toBe(true);
    });

    it('reports no insecure transport for a cookie that a change made after the response can no longer send', async () => {
      // The request context lets go of the request once the commit settled (see the test above);
      // whether the request was secure, asked for the first time after that, must not read as
      // "plain http" and report a cookie dropped for nothing.
      const events: string[] = [];
      const url = await start((app) => {
        app.set('trust proxy', 1);
        app.use(session({ secret: SECRET, store: new MemoryStore(), onEvent: (e) => events.push(e.type) }));
        app.get('/login', (req, res) => {
          req.session.views = 1;
          res.send('in');
        });
        app.get('/late', (req, res) => {
          res.send('sent');
          getSessionState(req).setMeta('remember', true);
        });
      });
      const proxied = { host: 'app.example', 'x-forwarded-proto': 'https' };
      const c = new Client(url);
      expect((await c.send('/login', { headers: proxied })).setCookie).toHaveLength(1);
      expect((await c.send('/late', { headers: proxied })).body).toBe('sent');
      // The late change is written a microtask after the response; give it time to run.
      await new Promise((r) => setTimeout(r, 20));
      expect(events).toContain('created');
      expect(events).not.toContain('insecure_transport');
    });

    it('holds streamed writes until the commit, then sends them in order with the cookie', async () => {
      const url = await start((app) => {
        app.use(session({ secret: SECRET, store: new MemoryStore(), insecureDevMode: true }));
        app.get('/stream', (req, res) => {
          req.session.views = 1;
          res.setHeader('content-type', 'text/plain');
          Readable.from(['a', 'b', 'c']).pipe(res);
        });
        app.get('/flush', (req, res) => {
          req.session.views = 1;
          res.flushHeaders();
          res.end('done');
        });
      });
      const s = await request(`${url}/stream`);
      expect([s.body, s.setCookie.length]).toEqual(['abc', 1]);
      const f = await request(`${url}/flush`);
      expect([f.body, f.setCookie.length]).toEqual(['done', 1]);
    });
  });
}
