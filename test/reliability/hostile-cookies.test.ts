/**
 * Hostile Cookie headers, generated with fast-check (fixed seed, so every run sends the same ones):
 * random bytes and random Unicode, near-valid tokens with mutations (flipped, dropped, inserted,
 * swapped characters, truncation, padding, quotes, whitespace, case, other versions, percent-encoded
 * characters), broken percent-encoding, prototype and reserved names, duplicated and conflicting
 * session cookies, and huge headers up to Node's 16 KiB header limit (and past it, over HTTP).
 *
 * The store is a real MemoryStore behind a counting wrapper. A header may cause a store read only
 * when it contains, verbatim, a token that the engine itself signed (the oracle): for every other
 * header, whose session values all fail the format or the signature check, the count of reads
 * must be zero.
 *
 * For speed, most headers (SESH_STRESS_HOSTILE_ENGINE, default 95,000) go through the engine
 * directly (`createSessions().load()` + `commit()`, exactly what the adapter calls), and a
 * representative sample (SESH_STRESS_HOSTILE_HTTP, default 2,500 per Express major, so 100,000 in
 * all) goes over real HTTP through raw sockets to Express 5 and Express 4: zero 500s, only 200
 * or the HTTP parser's own 400/431, and the server still answers afterwards.
 */
import { connect, type Socket } from 'node:net';
import type { Express, NextFunction, Request, Response } from 'express';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { session } from '../../src/adapters/express/index.js';
import { createSessions, type Sessions } from '../../src/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { expressVersions, listen, type Running } from '../support/http.js';
import { CountingStore, param, type Row, report, SECRET } from './harness.js';

const ENGINE_RUNS = param('SESH_STRESS_HOSTILE_ENGINE', 95_000, 1_000_000);
const HTTP_RUNS = param('SESH_STRESS_HOSTILE_HTTP', 2_500, 50_000);
const SEED = param('SESH_STRESS_SEED', 20_261_123, 20_261_123);
const NAME = '__Host-sid';
/** Node's default --max-http-header-size. */
const NODE_HEADER_LIMIT = 16_384;

const rows: Row[] = [];
const apps: Running[] = [];
afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  await report('hostile', `Hostile cookies: generated Cookie headers (fast-check seed ${SEED})`, rows);
});

/** Tokens the engine really signed: live sessions, and sessions destroyed since (valid MAC, unknown ID). */
const live: string[] = [];
const dead: string[] = [];

async function mint(sessions: Sessions, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const state = await sessions.load({ cookie: undefined, secure: true });
    (state.session as unknown as Record<string, unknown>).n = i;
    const { setCookie } = await sessions.commit(state);
    const value = /^__Host-sid=([^;]*)/.exec(setCookie[0] ?? '')?.[1];
    if (!value) throw new Error('no cookie minted');
    out.push(value);
  }
  return out;
}

/** The oracle: may this header cause a store read at all? */
const mayRead = (header: string) => live.some((t) => header.includes(t)) || dead.some((t) => header.includes(t));

// ---- generators -------------------------------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const pct = (s: string) => [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`).join('');

// Reads the pools when a value is generated (they are filled in beforeAll, after this module loads).
const token = () => fc.nat().map((i) => (i % 2 === 0 ? live : dead)[(i >> 1) % 8] as string);

/** A valid token changed by one or more mutations (the result is never a signed token). */
const mutated = fc
  .tuple(
    token(),
    fc.array(
      fc.tuple(
        fc.constantFrom('flip', 'drop', 'insert', 'swap', 'truncate', 'pad', 'case', 'version', 'pct', 'dup-dot', 'quote', 'space', 'nul'),
        fc.nat(),
        fc.integer({ min: 0, max: 63 }),
      ),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([t, ops]) => {
    let s = t;
    for (const [op, at, c] of ops) {
      const i = s.length === 0 ? 0 : at % s.length;
      const ch = B64[c] as string;
      switch (op) {
        case 'flip':
          s = s.slice(0, i) + (s[i] === ch ? B64[(c + 1) % 64] : ch) + s.slice(i + 1);
          break;
        case 'drop':
          s = s.slice(0, i) + s.slice(i + 1);
          break;
        case 'insert':
          s = s.slice(0, i) + ch + s.slice(i);
          break;
        case 'swap':
          s = s.slice(0, i) + (s[i + 1] ?? '') + (s[i] ?? '') + s.slice(i + 2);
          break;
        case 'truncate':
          s = s.slice(0, i);
          break;
        case 'pad':
          s += '='.repeat(1 + (c % 3));
          break;
        case 'case':
          s = s.slice(0, i) + (s[i] ?? '').toUpperCase() + s.slice(i + 1);
          break;
        case 'version':
          s = `v${c % 10}${s.slice(2)}`;
          break;
        case 'pct':
          s = s.slice(0, i) + pct(s[i] ?? '') + s.slice(i + 1);
          break;
        case 'dup-dot':
          s = `${s.slice(0, i)}.${s.slice(i)}`;
          break;
        case 'quote':
          s = `"${s}`;
          break;
        case 'space':
          s = `${s.slice(0, i)} ${s.slice(i)}`;
          break;
        case 'nul':
          s = `${s.slice(0, i)}\u0000${s.slice(i)}`;
          break;
      }
    }
    return s;
  })
  .filter((s) => !mayRead(s));

const latin1 = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1'));
const unicode = fc.string({ unit: 'binary', maxLength: 200 });
const badPercent = fc
  .tuple(
    fc.constantFrom('%', '%E0%A4%A', '%zz', '%%', '%C0%AF', '%00', '%FF%FE', '%u0041', '%2', '%ED%A0%80'),
    fc.string({ maxLength: 20 }),
  )
  .map(([a, b]) => a + b);
const weirdName = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  'valueOf',
  '__defineGetter__',
  NAME,
  `${NAME} `,
  ` ${NAME}`,
  '__host-sid',
  '__HOST-SID',
  'sid',
  '',
  `${NAME}=`,
  `${pct('_')}_Host-sid`,
);

/** One `name=value` piece (or junk without '='). */
const piece = fc.oneof(
  { weight: 4, arbitrary: mutated.map((v) => `${NAME}=${v}`) },
  { weight: 1, arbitrary: token().map((v) => `${NAME}=${v}`) },
  { weight: 1, arbitrary: token().map((v) => `${NAME}="${v}"`) },
  { weight: 2, arbitrary: fc.tuple(weirdName, fc.oneof(mutated, badPercent, latin1, token())).map(([n, v]) => `${n}=${v}`) },
  { weight: 2, arbitrary: latin1.map((v) => `${NAME}=${v}`) },
  { weight: 1, arbitrary: unicode.map((v) => `${NAME}=${v}`) },
  { weight: 1, arbitrary: badPercent.map((v) => `${NAME}=${v}`) },
  { weight: 1, arbitrary: fc.oneof(latin1, unicode, badPercent) },
);

const separator = fc.constantFrom('; ', ';', ' ; ', ';;', ',', '\t;', '; ; ');

/** A header near (or, when `over`, past) Node's header limit. */
const huge = (over: boolean) =>
  fc.tuple(fc.oneof(mutated, token(), latin1), fc.nat({ max: 2_000 }), fc.boolean()).map(([v, slack, sessionFirst]) => {
    const target = over ? NODE_HEADER_LIMIT + 1 + slack : NODE_HEADER_LIMIT - 200 - slack;
    const filler = `x=${'a'.repeat(Math.max(0, target - v.length - NAME.length - 6))}`;
    return sessionFirst ? `${NAME}=${v}; ${filler}` : `${filler}; ${NAME}=${v}`;
  });

const manyDuplicates = fc
  .tuple(fc.array(fc.oneof(mutated, token()), { minLength: 2, maxLength: 200 }), separator)
  .map(([vs, sep]) => vs.map((v) => `${NAME}=${v}`).join(sep));

const header = (withOver: boolean) =>
  fc.oneof(
    { weight: 10, arbitrary: fc.tuple(fc.array(piece, { minLength: 1, maxLength: 8 }), separator).map(([ps, sep]) => ps.join(sep)) },
    { weight: 2, arbitrary: latin1 },
    { weight: 1, arbitrary: unicode },
    { weight: 1, arbitrary: manyDuplicates },
    { weight: 1, arbitrary: huge(false) },
    ...(withOver ? [{ weight: 1, arbitrary: huge(true) }] : []),
  );

// ---- engine-direct --------------------------------------------------------------------------

describe('hostile Cookie headers', () => {
  const counting = new CountingStore(new MemoryStore({ sweepInterval: 0, quiet: true }));
  const sessions = createSessions({ secret: SECRET, store: counting });

  beforeAll(async () => {
    live.push(...(await mint(sessions, 8)));
    const doomed = await mint(sessions, 8);
    for (const t of doomed) await counting.destroy(sessions.storeKey(/^v1\.([^.]+)\./.exec(t)?.[1] as string));
    dead.push(...doomed);
  });

  it(`${ENGINE_RUNS} headers through the engine: no throw, no store read unless a signed token is present`, async () => {
    const stats = { headers: 0, invalidOnly: 0, readsOnInvalid: 0, readsOnSigned: 0, throws: 0, maxBytes: 0, sessionsFound: 0 };
    const failures: string[] = [];
    await fc.assert(
      fc.asyncProperty(header(false), async (h) => {
        stats.headers++;
        stats.maxBytes = Math.max(stats.maxBytes, Buffer.byteLength(h));
        const before = counting.calls.get;
        const writes = counting.calls.create + counting.calls.patch + counting.calls.touch;
        let ok = true;
        try {
          const state = await sessions.load({ cookie: h, secure: true, ip: '127.0.0.1' });
          void (state.session as unknown as Record<string, unknown>).n;
          if (!state.isNew) stats.sessionsFound++;
          await sessions.commit(state);
        } catch (err) {
          stats.throws++;
          failures.push(`${JSON.stringify(h).slice(0, 200)}: ${String(err)}`);
          ok = false;
        }
        const reads = counting.calls.get - before;
        if (mayRead(h)) stats.readsOnSigned += reads;
        else {
          stats.invalidOnly++;
          stats.readsOnInvalid += reads;
          if (reads > 0) {
            failures.push(`store read for ${JSON.stringify(h).slice(0, 200)}`);
            ok = false;
          }
        }
        // Reading a session never writes one (touchAfter default: no touch this soon).
        if (counting.calls.create + counting.calls.patch + counting.calls.touch !== writes) {
          failures.push(`store write for ${JSON.stringify(h).slice(0, 200)}`);
          ok = false;
        }
        // Failures are collected (the first ones are shown below) rather than shrunk: a run keeps
        // going so the figures cover every header.
        return ok || failures.length > 0;
      }),
      { numRuns: ENGINE_RUNS, seed: SEED },
    );
    expect(failures.slice(0, 5)).toEqual([]);
    expect(stats.invalidOnly).toBeGreaterThan(ENGINE_RUNS / 2);
    expect(stats.sessionsFound).toBeGreaterThan(0); // the generator does reach real sessions
    rows.push({
      path: 'engine (load + commit)',
      headers: stats.headers,
      'invalid-signature only': stats.invalidOnly,
      'store reads on those': stats.readsOnInvalid,
      'reads with a signed token': stats.readsOnSigned,
      'sessions found': stats.sessionsFound,
      '5xx / throws': stats.throws,
      'largest header (bytes)': stats.maxBytes,
    });
  });

  it('a MAC spelled non-canonically (spare bits of its last base64url character set) is refused without a store read', async () => {
    // Found by the generator above: 43 base64url characters carry 258 bits, so the last character
    // of the 32-byte MAC has 2 spare bits and four spellings decode to the same bytes.
    let tried = 0;
    for (const t of live) {
      const last = t.at(-1) as string;
      const base = B64.indexOf(last) & ~3;
      for (let j = 0; j < 4; j++) {
        const alt = B64[base + j] as string;
        if (alt === last) continue;
        tried++;
        const before = counting.calls.get;
        const state = await sessions.load({ cookie: `${NAME}=${t.slice(0, -1)}${alt}`, secure: true });
        expect(state.isNew).toBe(true);
        expect(counting.calls.get).toBe(before);
      }
      const state = await sessions.load({ cookie: `${NAME}=${t}`, secure: true });
      expect(state.isNew).toBe(false);
    }
    expect(tried).toBe(3 * live.length);
  });

  // ---- over HTTP ------------------------------------------------------------------------------

  for (const { name, express } of expressVersions) {
    it(`${HTTP_RUNS} headers over HTTP (${name}): only 200/400/431, zero 500s, no read unless signed, server alive`, async () => {
      const store = new CountingStore(new MemoryStore({ sweepInterval: 0, quiet: true }));
      const app: Express = express();
      const readsAt = new WeakMap<object, number>();
      app.use((req, _res, next) => {
        readsAt.set(req, store.calls.get);
        next();
      });
      const mw = session({ secret: SECRET, store, onError: () => {} });
      app.use(mw);
      app.get('/', (req, res) => {
        res.json({ reads: store.calls.get - (readsAt.get(req) ?? 0), n: (req.session as unknown as Record<string, unknown>).n ?? null });
      });
      app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
        res.status(err.status ?? 500).send('error');
      });
      const running = await listen(app);
      apps.push(running);
      // The engine of this app shares the secret, so the minted tokens are valid here too; copy the
      // live sessions into this store so some headers reach a real session.
      for (const t of live) {
        const key = sessions.storeKey(/^v1\.([^.]+)\./.exec(t)?.[1] as string);
        const rec = await counting.inner.get(key);
        if (rec) await store.inner.create(key, rec);
      }

      // Nine in ten headers get their control characters replaced, so they pass Node's HTTP parser
      // and reach sesh; the tenth is sent raw and mostly meets the parser's own 400.
      const headers = fc
        .sample(header(true), { numRuns: HTTP_RUNS, seed: SEED + (name === 'express 5' ? 1 : 2) })
        .map((h, i) => (i % 10 === 0 ? h : withoutControls(h)));
      const port = Number(new URL(running.url).port);
      const conn = new RawHttp(port);
      const statuses = new Map<number, number>();
      const failures: string[] = [];
      let readsOnInvalid = 0;
      let found = 0;
      try {
        for (const h of headers) {
          // Node receives header bytes as latin1: send each character as one byte.
          const bytes = Buffer.from(h, 'latin1');
          const reply = await conn.send(
            Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: '), bytes, Buffer.from('\r\n\r\n')]),
          );
          statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
          if (reply.status === 200) {
            const body = JSON.parse(reply.body) as { reads: number; n: number | null };
            if (body.n !== null) found++;
            if (body.reads > 0 && !mayRead(bytes.toString('latin1'))) {
              readsOnInvalid += body.reads;
              failures.push(`store read for ${JSON.stringify(h).slice(0, 200)}`);
            }
          } else if (reply.status !== 400 && reply.status !== 431) {
            failures.push(`${reply.status} for ${JSON.stringify(h).slice(0, 200)}: ${reply.body.slice(0, 200)}`);
          }
        }
      } finally {
        conn.close();
      }
      expect(failures.slice(0, 5)).toEqual([]);
      expect(statuses.get(200) ?? 0).toBeGreaterThan(HTTP_RUNS * 0.5); // ~70% pass the parser
      // Still serving, and a valid session still works.
      const after = new RawHttp(port);
      const ok = await after.send(Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${NAME}=${live[0]}\r\n\r\n`));
      after.close();
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body).n).toBe(0);
      rows.push({
        path: `HTTP, ${name}`,
        headers: HTTP_RUNS,
        'invalid-signature only': headers.filter((h) => !mayRead(Buffer.from(h, 'latin1').toString('latin1'))).length,
        'store reads on those': readsOnInvalid,
        'sessions found': found,
        statuses: [...statuses].map(([s, n]) => `${s}: ${n}`).join(', '),
        '5xx / throws': [...statuses].filter(([s]) => s >= 500).reduce((a, [, n]) => a + n, 0),
        'largest header (bytes)': Math.max(...headers.map((h) => Buffer.byteLength(h, 'latin1'))),
      });
    });
  }
});

/** Replace the control characters an HTTP header value may not hold (all but tab) with '?'. */
function withoutControls(h: string): string {
  let out = '';
  for (const ch of h) {
    const c = ch.charCodeAt(0);
    out += (c < 0x20 && c !== 0x09) || c === 0x7f ? '?' : ch;
  }
  return out;
}

/** Sequential HTTP/1.1 requests over one keep-alive socket, reconnecting when the server closes it. */
class RawHttp {
  #sock: Socket | undefined;
  #buf = Buffer.alloc(0);
  #closed = true;
  #waiter: (() => void) | undefined;
  constructor(readonly port: number) {}

  #connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port: this.port }, () => resolve());
      sock.on('error', reject);
      sock.on('data', (d: Buffer) => {
        this.#buf = Buffer.concat([this.#buf, d]);
        this.#waiter?.();
      });
      sock.on('close', () => {
        if (this.#sock === sock) this.#closed = true;
        this.#waiter?.();
      });
      this.#sock = sock;
      this.#closed = false;
      this.#buf = Buffer.alloc(0);
    });
  }

  /** Parse one complete response from the buffer, if there is one. */
  #take(final: boolean): { status: number; body: string } | undefined {
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const head = this.#buf.subarray(0, end).toString('latin1');
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
    const len = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (len) {
      const total = end + 4 + Number(len[1]);
      if (this.#buf.length < total) return undefined;
      const body = this.#buf.subarray(end + 4, total).toString('utf8');
      this.#buf = this.#buf.subarray(total);
      return { status, body };
    }
    if (!final) return undefined; // body runs until close
    const body = this.#buf.subarray(end + 4).toString('utf8');
    this.#buf = Buffer.alloc(0);
    return { status, body };
  }

  async send(request: Buffer): Promise<{ status: number; body: string }> {
    if (this.#closed) await this.#connect();
    const sock = this.#sock as Socket;
    sock.write(request);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const got = this.#take(this.#closed);
      if (got) {
        if (/connection: *close/i.test(got.body)) this.#closed = true;
        return got;
      }
      if (this.#closed) return { status: 0, body: `connection closed without a response (${this.#buf.length} bytes)` };
      if (Date.now() > deadline) throw new Error('no response within 10 s');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 1_000);
        this.#waiter = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#waiter = undefined;
    }
  }

  close(): void {
    this.#sock?.destroy();
    this.#closed = true;
  }
}
