/**
 * The attack catalog rows A42–A44 (../shared/SECURITY.md) against sesh/stateless: sealed-cookie
 * abuse, token-type confusion and cross-application replay. Exhaustive loops run through the
 * framework-free engine (`load`, the same path the middleware takes); representative cases and a
 * property run go over real HTTP on Express 4 and 5.
 */

import type { Express } from 'express';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aeadRing, seal } from '../src/crypto/aead.js';
import { createSessions, createStatelessSessions, type SeshEvent, type StatelessSessions } from '../src/index.js';
import { session } from '../src/stateless/index.js';
import { MemoryStore } from '../src/stores/memory/index.js';
import { expressVersions, listen, type Running, request } from './support/http.js';

declare module '../src/index.js' {
  interface SessionData {
    role: string;
  }
}

const SECRET = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';
const OTHER = 'Qz7Lm2Wx9Rb4Tc6Vn1Hs8Jd3Kf5Gp0Ye';
const NAME = '__Host-sid';
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** A valid sealed cookie value of `engine` carrying `{ role }`. */
async function mint(engine: StatelessSessions, role = 'admin'): Promise<string> {
  const state = await engine.load({ secure: true });
  state.session.role = role;
  const { setCookie } = await engine.commit(state);
  const line = setCookie[0] as string;
  return line.slice(line.indexOf('=') + 1, line.indexOf(';'));
}

/** Run one Cookie header through the engine as the middleware does; report the outcome. */
async function probe(engine: StatelessSessions, value: string, name = NAME) {
  const state = await engine.load({ cookie: `${name}=${value}`, secure: true });
  const role = state.session.role;
  const { setCookie } = await engine.commit(state);
  return { anonymous: state.isNew && role === undefined, role, setCookie };
}

function payloadFor(overrides: Record<string, unknown>): string {
  const now = Date.now();
  return JSON.stringify({
    v: 1,
    sid: 'A'.repeat(43),
    iat: now,
    cat: now,
    ls: now,
    exp: now + 3_600_000,
    uid: null,
    d: { role: 'admin' },
    m: {},
    ...overrides,
  });
}

describe('A42: sealed-cookie abuse (engine level, exhaustive)', () => {
  const events: SeshEvent[] = [];
  const engine = createStatelessSessions({ secret: SECRET, appId: 'shop', onEvent: (e) => events.push(e) });
  let valid = '';
  beforeAll(async () => {
    valid = await mint(engine);
    expect((await probe(engine, valid)).role).toBe('admin');
  });

  it('a bit flip at EVERY bit of EVERY character of the cookie gives anonymous + clear, never a throw', async () => {
    let n = 0;
    for (let i = 0; i < valid.length; i++) {
      for (let bit = 0; bit < 7; bit++) {
        const v = valid.slice(0, i) + String.fromCharCode(valid.charCodeAt(i) ^ (1 << bit)) + valid.slice(i + 1);
        const r = await probe(engine, v);
        expect(r.anonymous, `char ${i} bit ${bit}`).toBe(true);
        expect(r.setCookie, `char ${i} bit ${bit}`).toEqual([expect.stringMatching(/^__Host-sid=; Max-Age=0;/)]);
        n++;
      }
    }
    expect(n).toBe(valid.length * 7);
  });

  it('a bit flip at EVERY bit of the decoded kid, nonce, ciphertext and tag gives anonymous', async () => {
    const [v, ...parts] = valid.split('.') as [string, string, string, string];
    const raw = parts.map((p) => Buffer.from(p, 'base64url'));
    for (let part = 0; part < raw.length; part++) {
      const bytes = raw[part] as Buffer;
      for (let i = 0; i < bytes.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const copy = raw.map((b) => Buffer.from(b));
          (copy[part] as Buffer)[i] = (bytes[i] as number) ^ (1 << bit);
          const value = [v, ...copy.map((b) => b.toString('base64url'))].join('.');
          expect((await probe(engine, value)).anonymous, `part ${part} byte ${i} bit ${bit}`).toBe(true);
        }
      }
    }
  });

  it('property (fast-check): random multi-position corruption never yields a session or a throw', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...ALPHABET.split(''))), { minLength: 1, maxLength: 5 }),
        async (edits) => {
          let v = valid;
          for (const [pos, ch] of edits) {
            const i = pos % v.length;
            v = v.slice(0, i) + ch + v.slice(i + 1);
          }
          const r = await probe(engine, v);
          return v === valid ? r.role === 'admin' : r.anonymous;
        },
      ),
      { numRuns: 300 },
    );
  });

  it('truncation at every length and appended data give anonymous', async () => {
    for (let n = 0; n < valid.length; n++) expect((await probe(engine, valid.slice(0, n))).anonymous).toBe(true);
    for (const extra of ['A', 'AA', 'AAA', 'AAAA', '.', '.x', '=', '==', `.${valid}`, valid]) {
      expect((await probe(engine, valid + extra)).anonymous).toBe(true);
    }
  });

  it('garbage never throws (property over arbitrary strings)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 400 }), async (s) => (await probe(engine, s)).anonymous),
      { numRuns: 300 },
    );
  });

  it('forged payloads sealed with the right key but the wrong shape are refused (bad_payload)', async () => {
    const ring = aeadRing([SECRET], 'session');
    const sealed = (text: string) => seal(ring, text, ['shop', NAME]);
    const now = Date.now();
    const cases = [
      '',
      'null',
      '[]',
      '{}',
      'not json',
      payloadFor({ v: 2 }),
      payloadFor({ sid: 'short' }),
      payloadFor({ sid: `${'A'.repeat(42)}!` }),
      payloadFor({ iat: 'yesterday' }),
      payloadFor({ exp: null }),
      payloadFor({ exp: 1e300 }),
      payloadFor({ ls: now - 10, cat: now }),
      payloadFor({ uid: '' }),
      payloadFor({ uid: 42 }),
      payloadFor({ d: [] }),
      payloadFor({ m: 'x' }),
      payloadFor({ ue: {} }),
      payloadFor({ exp: now - 1 }),
      payloadFor({ cat: now - 13 * 3_600_000, ls: now - 1000 }),
      payloadFor({ iat: now + 120_000 }),
    ];
    for (const text of cases) expect((await probe(engine, sealed(text))).anonymous, text.slice(0, 60)).toBe(true);
    // The well-formed control case opens (so the cases above fail for the reason they test).
    expect((await probe(engine, sealed(payloadFor({})))).role).toBe('admin');
    // __proto__ in the data cannot pollute anything and is dropped.
    const proto = await probe(engine, sealed(payloadFor({ d: JSON.parse('{"__proto__":{"polluted":1},"role":"user"}') })));
    expect(proto.role).toBe('user');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('typed reasons: openCookie reports why a value was refused', () => {
    const [v, kid, nonce, body] = valid.split('.') as [string, string, string, string];
    const other = createStatelessSessions({ secret: OTHER, appId: 'shop' });
    expect(engine.openCookie(`s2.${kid}.${nonce}.${body}`)).toEqual({ ok: false, reason: 'malformed' });
    expect(engine.openCookie(`${v}.${kid}.${nonce.slice(0, 15)}.${body}`)).toEqual({ ok: false, reason: 'malformed' });
    expect(engine.openCookie(`${v}.${kid}.${nonce}AAAA.${body}`)).toEqual({ ok: false, reason: 'malformed' });
    expect(engine.openCookie(`${v}.${kid}.${nonce}.`)).toEqual({ ok: false, reason: 'malformed' });
    expect(engine.openCookie(`${v}.${kid}.${nonce}.${body}=`)).toEqual({ ok: false, reason: 'malformed' });
    expect(engine.openCookie(`${v}.${kid}.${nonce}.${body.slice(0, 20)}+${body.slice(21)}`)).toEqual({ ok: false, reason: 'malformed' });
    expect(other.openCookie(valid)).toEqual({ ok: false, reason: 'unknown_key' });
    const r = engine.openCookie(valid);
    expect(r.ok && r.payload.data).toEqual({ role: 'admin' });
  });

  it('a valid ciphertext with its key ID swapped to another key of the ring is refused', async () => {
    const both = createStatelessSessions({ secret: [SECRET, OTHER], appId: 'shop' });
    const underOther = await mint(createStatelessSessions({ secret: OTHER, appId: 'shop' }));
    expect((await probe(both, underOther)).role).toBe('admin');
    const currentKid = valid.split('.')[1] as string;
    const swapped = underOther.replace(/^s1\.[\w-]{8}\./, `s1.${currentKid}.`);
    expect(both.openCookie(swapped)).toEqual({ ok: false, reason: 'auth_failed' });
    expect((await probe(both, swapped)).anonymous).toBe(true);
  });

  it('an oversized value is refused before any crypto (A06)', async () => {
    expect((await probe(engine, `${valid}${'A'.repeat(20_000)}`)).anonymous).toBe(true);
  });

  it('emits events with a reason and never the cookie value', () => {
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) expect(JSON.stringify(e)).not.toContain(valid.slice(12, 40));
    expect(events.some((e) => e.detail === 'auth_failed')).toBe(true);
    expect(events.some((e) => e.detail === 'malformed')).toBe(true);
    expect(events.some((e) => e.detail === 'bad_payload')).toBe(true);
  });
});

describe('A43: token-type confusion', () => {
  const engine = createStatelessSessions({ secret: SECRET, appId: 'shop' });

  it('a value sealed for another purpose (csrf, flash, remember-me, oauth state) is refused', async () => {
    for (const purpose of ['csrf', 'flash', 'remember-me', 'oauth-state']) {
      const forged = seal(aeadRing([SECRET], purpose), payloadFor({}), ['shop', NAME]);
      expect((await probe(engine, forged)).anonymous, purpose).toBe(true);
      // Even with the session key ID pasted in, authentication fails (purpose is in the AAD and the key).
      const kid = (await mint(engine)).split('.')[1] as string;
      expect(engine.openCookie(forged.replace(/^s1\.[\w-]{8}\./, `s1.${kid}.`))).toEqual({ ok: false, reason: 'auth_failed' });
    }
  });

  it('server-side tokens and sealed cookies are not interchangeable', async () => {
    const stateful = createSessions({ secret: SECRET, store: new MemoryStore() });
    const s = await stateful.load({ secure: true });
    s.session.role = 'admin';
    const line = (await stateful.commit(s)).setCookie[0] as string;
    const token = line.slice(line.indexOf('=') + 1, line.indexOf(';'));
    expect((await probe(engine, token)).anonymous).toBe(true);
    const sealed = await mint(engine);
    const back = await stateful.load({ cookie: `${NAME}=${sealed}`, secure: true });
    expect(back.isNew).toBe(true);
  });
});

describe('A44: cross-application replay', () => {
  it('a cookie of app A (same secret, other appId) is refused by app B', async () => {
    const a = createStatelessSessions({ secret: SECRET, appId: 'app-a' });
    const b = createStatelessSessions({ secret: SECRET, appId: 'app-b' });
    const fromA = await mint(a);
    expect((await probe(a, fromA)).role).toBe('admin');
    expect((await probe(b, fromA)).anonymous).toBe(true);
    expect(b.openCookie(fromA)).toEqual({ ok: false, reason: 'auth_failed' });
  });

  it('a cookie sealed under another cookie name (same secret and appId) is refused', async () => {
    const a = createStatelessSessions({ secret: SECRET, appId: 'shop', cookie: { name: '__Host-admin' } });
    const b = createStatelessSessions({ secret: SECRET, appId: 'shop' });
    const fromA = await mint(a);
    expect((await probe(a, fromA, '__Host-admin')).role).toBe('admin');
    expect((await probe(b, fromA)).anonymous).toBe(true);
  });
});

for (const { name, express } of expressVersions) {
  describe(`A42–A44 over HTTP on ${name}`, () => {
    let server: Running;
    let other: Running;
    let valid = '';
    let foreign = '';
    const events: SeshEvent[] = [];

    function app(appId: string, secret: string | string[], onEvent?: (e: SeshEvent) => void): Express {
      const a = express();
      a.use(session({ secret, appId, store: new MemoryStore(), ...(onEvent ? { onEvent } : {}) }));
      a.get('/grant', (req, res) => {
        req.session.role = 'admin';
        res.send('ok');
      });
      a.get('/whoami', (req, res) => {
        res.send(req.session.role ?? 'anonymous');
      });
      return a;
    }

    beforeAll(async () => {
      server = await listen(app('shop', SECRET, (e) => events.push(e)));
      other = await listen(app('blog', SECRET));
      const grant = await request(`${server.url}/grant`);
      valid = (grant.setCookie[0] as string).split(';')[0]?.slice(NAME.length + 1) as string;
      const g2 = await request(`${other.url}/grant`);
      foreign = (g2.setCookie[0] as string).split(';')[0]?.slice(NAME.length + 1) as string;
    });
    afterAll(async () => {
      await Promise.all([server?.close(), other?.close()]);
    });

    async function expectAnonymous(value: string) {
      const r = await request(`${server.url}/whoami`, { cookie: `${NAME}=${value}` });
      expect(r.status).toBe(200);
      expect(r.body).toBe('anonymous');
      expect(r.setCookie).toHaveLength(1);
      expect(r.setCookie[0]).toMatch(/^__Host-sid=; Max-Age=0;/);
    }

    it('the control cookie works', async () => {
      expect((await request(`${server.url}/whoami`, { cookie: `${NAME}=${valid}` })).body).toBe('admin');
    });

    it('catalog cases: each is anonymous + clear, never a 500', async () => {
      const [v, kid, nonce, body] = valid.split('.') as [string, string, string, string];
      const otherKey = await mint(createStatelessSessions({ secret: OTHER, appId: 'shop' }));
      const otherKid = otherKey.split('.')[1] as string;
      const cases: Record<string, string> = {
        truncated: valid.slice(0, -5),
        appended: `${valid}AAAA`,
        'invalid base64url': `${v}.${kid}.${nonce}.${body.slice(0, 10)}*${body.slice(11)}`,
        'padding added': `${valid}==`,
        'wrong version': `s0.${kid}.${nonce}.${body}`,
        'empty payload': `${v}.${kid}.${nonce}.`,
        'empty sealed plaintext': seal(aeadRing([SECRET], 'session'), '', ['shop', NAME]),
        'other key': otherKey,
        'swapped key id': otherKey.replace(`.${otherKid}.`, `.${kid}.`),
        'nonce too short': `${v}.${kid}.${nonce.slice(4)}.${body}`,
        'nonce too long': `${v}.${kid}.${nonce}${nonce.slice(0, 4)}.${body}`,
        'other purpose': seal(aeadRing([SECRET], 'csrf'), payloadFor({}), ['shop', NAME]),
        'other app': foreign,
        quoted: `"${valid.slice(1)}"`,
      };
      for (const [label, value] of Object.entries(cases)) {
        try {
          await expectAnonymous(value);
        } catch (err) {
          throw new Error(`${label}: ${(err as Error).message}`);
        }
      }
      expect(events.some((e) => e.type === 'invalid_signature')).toBe(true);
      expect(events.some((e) => e.type === 'malformed_cookie')).toBe(true);
    });

    it('a bit flip at sampled positions over HTTP (fast-check) is anonymous', async () => {
      await fc.assert(
        fc.asyncProperty(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 5 }), async (i, bit) => {
          const ch = String.fromCharCode(valid.charCodeAt(i) ^ (1 << bit));
          // Characters a client cannot put into a Cookie header are covered at engine level.
          if (!/^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]$/.test(ch)) return true;
          const r = await request(`${server.url}/whoami`, { cookie: `${NAME}=${valid.slice(0, i)}${ch}${valid.slice(i + 1)}` });
          return r.status === 200 && r.body === 'anonymous';
        }),
        { numRuns: 60 },
      );
    });
  });
}
