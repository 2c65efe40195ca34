import { describe, expect, it } from 'vitest';
import { isSeshError, StoreUnavailableError } from '../errors.js';
import type { Store } from '../store.js';
import { MemoryStore } from '../stores/memory/index.js';
import { FakeClock } from '../testing/clock.js';
import type { SeshEvent } from '../types.js';
import { createSessions } from './engine.js';
import type { SessionState } from './session.js';

const secret = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5Aq';

function setup(extra: Partial<Parameters<typeof createSessions>[0]> = {}) {
  const clock = new FakeClock();
  const store = new MemoryStore({ clock });
  const events: SeshEvent[] = [];
  const sessions = createSessions<Record<string, unknown>>({ secret, store, clock, onEvent: (e) => events.push(e), ...extra });
  const ctx = (cookie?: string) => ({ cookie, secure: true, host: 'app.test' });
  const pairOf = (setCookie: string[]) => setCookie[0]?.split(';')[0];
  async function fresh(data: Record<string, unknown> = { a: 1 }) {
    const s = await sessions.load(ctx());
    Object.assign(s.session, data);
    const { setCookie } = await sessions.commit(s);
    return pairOf(setCookie) as string;
  }
  return { clock, store, events, sessions, ctx, fresh, pairOf };
}

type S = SessionState<Record<string, unknown>>;

describe('engine', () => {
  it('a slow request cannot resurrect a destroyed session (update-if-exists, A21)', async () => {
    const { sessions, ctx, fresh, events } = setup();
    const cookie = await fresh();
    const slow = await sessions.load(ctx(cookie));
    const logout = await sessions.load(ctx(cookie));
    await logout.destroy();
    expect((await sessions.commit(logout)).setCookie[0]).toMatch(/Max-Age=0/);
    (slow.session as Record<string, unknown>).b = 2;
    const res = await sessions.commit(slow);
    expect(res.setCookie).toEqual([]);
    expect(slow.gone).toBe(true);
    expect(events.some((e) => e.type === 'session_gone')).toBe(true);
    const replay = await sessions.load(ctx(cookie));
    expect(replay.isNew).toBe(true);
    // An explicit save reports the lost write instead of hiding it.
    const slow2 = await sessions.load(ctx(cookie));
    expect(slow2.isNew).toBe(true);
  });

  it('an explicit save() rejects with SESSION_GONE when the session was destroyed meanwhile', async () => {
    const { sessions, ctx, fresh } = setup();
    const cookie = await fresh();
    const a = await sessions.load(ctx(cookie));
    const b = await sessions.load(ctx(cookie));
    await b.destroy();
    (a.session as Record<string, unknown>).x = 1;
    await expect(a.save()).rejects.toSatisfy((e: unknown) => isSeshError(e, 'SESSION_GONE'));
  });

  it('exactly one of two concurrent regenerates wins; no orphaned record remains (A22)', async () => {
    const { sessions, ctx, fresh, store } = setup();
    const cookie = await fresh({ user: 'ann' });
    const [r1, r2] = await Promise.all([sessions.load(ctx(cookie)), sessions.load(ctx(cookie))]);
    const results = await Promise.allSettled([r1.regenerate(), r2.regenerate()]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(isSeshError(loser.reason, 'SESSION_GONE')).toBe(true);
    const winner = results[0]?.status === 'fulfilled' ? r1 : r2;
    const c1 = await sessions.commit(r1);
    const c2 = await sessions.commit(r2);
    expect(store.size).toBe(1);
    const issued = [...c1.setCookie, ...c2.setCookie].filter((c) => !/Max-Age=0/.test(c));
    expect(issued).toHaveLength(1);
    const next = await sessions.load(ctx(issued[0]?.split(';')[0]));
    expect(next.isNew).toBe(false);
    expect(next.id).toBe(winner.id);
    expect((await sessions.load(ctx(cookie))).isNew).toBe(true);
  });

  it('two different valid cookies in one request are trusted as neither (A04)', async () => {
    const { sessions, ctx, fresh, events } = setup();
    const attacker = await fresh({ who: 'attacker' });
    const victim = await fresh({ who: 'victim' });
    for (const header of [`${attacker}; ${victim}`, `${victim}; ${attacker}`]) {
      const s = (await sessions.load(ctx(header))) as S;
      expect(s.isNew).toBe(true);
      expect((s.session as Record<string, unknown>).who).toBeUndefined();
      expect((await sessions.commit(s)).setCookie[0]).toMatch(/Max-Age=0/);
    }
    expect(events.filter((e) => e.type === 'duplicate_cookie')).toHaveLength(2);
    // One valid value among invalid ones is used, and not cleared.
    const s = await sessions.load(ctx(`__Host-sid=garbage; ${victim}`));
    expect((s.session as Record<string, unknown>).who).toBe('victim');
    expect((await sessions.commit(s)).setCookie).toEqual([]);
  });

  it('never adopts a validly signed but unknown ID (A18)', async () => {
    const { sessions, ctx, fresh, store, events } = setup();
    const cookie = await fresh();
    store.clear();
    const s = await sessions.load(ctx(cookie));
    expect(s.isNew).toBe(true);
    expect(events.some((e) => e.type === 'unknown_session')).toBe(true);
    (s.session as Record<string, unknown>).x = 1;
    const { setCookie } = await sessions.commit(s);
    expect(setCookie[0]?.split('.')[1]).not.toBe(cookie.split('.')[1]);
  });

  it('sets Max-Age to the remaining absolute lifetime only for remembered sessions', async () => {
    const { sessions, ctx, fresh, clock } = setup({ absoluteTimeout: 3_600_000, idleTimeout: 600_000 });
    const cookie = await fresh();
    clock.advance(600_000 - 1);
    const s = await sessions.load(ctx(cookie));
    s.setMeta('remember', true);
    const { setCookie } = await sessions.commit(s);
    expect(setCookie[0]).toMatch(/; Max-Age=3000; Expires=/);
    const plain = await sessions.load(ctx());
    (plain.session as Record<string, unknown>).x = 1;
    expect((await sessions.commit(plain)).setCookie[0]).not.toMatch(/Max-Age/);
  });

  it('rolling re-sends the cookie on every response with a session; saveUninitialized stores empty ones', async () => {
    const rolling = setup({ rolling: true });
    const cookie = await rolling.fresh();
    const s = await rolling.sessions.load(rolling.ctx(cookie));
    expect((await rolling.sessions.commit(s)).setCookie).toHaveLength(1);
    const eager = setup({ saveUninitialized: true });
    const e = await eager.sessions.load(eager.ctx());
    expect((await eager.sessions.commit(e)).setCookie).toHaveLength(1);
    expect(eager.store.size).toBe(1);
  });

  it('rejects values that JSON cannot store, and sessions over maxSize, with typed errors (A30, A31)', async () => {
    const { sessions, ctx } = setup({ maxSize: 1024 });
    const cases: Array<[unknown, string]> = [
      [10n, 'UNSERIALIZABLE_VALUE'],
      [() => 1, 'UNSERIALIZABLE_VALUE'],
      [new Map(), 'UNSERIALIZABLE_VALUE'],
      ['x'.repeat(2000), 'SESSION_TOO_LARGE'],
    ];
    for (const [value, code] of cases) {
      const s = await sessions.load(ctx());
      (s.session as Record<string, unknown>).v = value;
      await expect(sessions.commit(s)).rejects.toSatisfy((e: unknown) => isSeshError(e, code as 'SESSION_TOO_LARGE'));
    }
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const s = await sessions.load(ctx());
    (s.session as Record<string, unknown>).v = circular;
    await expect(sessions.commit(s)).rejects.toSatisfy((e: unknown) => isSeshError(e, 'UNSERIALIZABLE_VALUE'));
  });

  it('keeps metadata apart from data and never lets stored data shadow the API (A27, A28)', async () => {
    const { sessions, ctx, store } = setup();
    const s = await sessions.load(ctx());
    (s.session as Record<string, unknown>).x = 1;
    s.setUser('u1');
    s.setMeta('roles', ['admin']);
    const { setCookie } = await sessions.commit(s);
    const key = s.storeKey;
    await store.patch(key, { set: { id: 'forged', save: 'nope', regenerate: 1 }, expiresAt: Date.now() + 60_000 });
    const raw = JSON.parse('{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"isAdmin":true}}}');
    await store.patch(key, { set: { nested: raw }, expiresAt: Date.now() + 60_000 });
    const again = await sessions.load(ctx(setCookie[0]?.split(';')[0]));
    const session = again.session as Record<string, unknown>;
    expect(session.id).toBe(again.id);
    expect(typeof session.save).toBe('function');
    expect(Object.keys(session).sort()).toEqual(['nested', 'x']);
    expect(again.getMeta('roles')).toEqual(['admin']);
    expect(again.userId).toBe('u1');
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect((session.nested as Record<string, unknown>).isAdmin).toBeUndefined();
  });
  it('commit writes changes made in the same synchronous step after it was called, and an unchanged session writes nothing', async () => {
    const { sessions, ctx, fresh, store } = setup();
    const cookie = await fresh({ a: 1 });
    const s = await sessions.load(ctx(cookie));
    const committing = sessions.commit(s);
    (s.session as Record<string, unknown>).late = 'kept';
    await expect(committing).resolves.toEqual({ setCookie: [] });
    expect((await sessions.load(ctx(cookie))).session.late).toBe('kept');
    const calls: string[] = [];
    for (const m of ['patch', 'touch', 'create'] as const) {
      const orig = store[m].bind(store) as (...a: unknown[]) => Promise<boolean>;
      (store as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => {
        calls.push(m);
        return orig(...a);
      };
    }
    const idle = await sessions.load(ctx(cookie));
    expect(idle.session.a).toBe(1);
    const first = await sessions.commit(idle);
    const second = await sessions.commit(idle);
    expect(first).toEqual({ setCookie: [] });
    expect(second).toEqual({ setCookie: [] });
    first.setCookie.push('x');
    expect((await sessions.commit(await sessions.load(ctx(cookie)))).setCookie).toEqual([]);
    expect(calls).toEqual([]);
  });

  describe('a store that bounds its own operations (operationTimeout)', () => {
    /** A store with asynchronous operations only, whose reads take `delay` ms, declaring `bound`. */
    function slowStore(delay: number, bound: number | undefined, fail?: () => unknown): Store {
      const inner = new MemoryStore();
      const sleep = () => new Promise((r) => setTimeout(r, delay));
      return {
        operationTimeout: bound,
        get: async (key) => {
          await sleep();
          if (fail) throw fail();
          return inner.get(key);
        },
        create: (key, session) => inner.create(key, session),
        patch: (key, patch) => inner.patch(key, patch),
        touch: (key, lastSeen, expiresAt) => inner.touch(key, lastSeen, expiresAt),
        destroy: (key) => inner.destroy(key),
      };
    }
    async function loadWith(store: Store, storeTimeout: number) {
      const events: SeshEvent[] = [];
      const sessions = createSessions<Record<string, unknown>>({ secret, store, storeTimeout, onEvent: (e) => events.push(e) });
      const ctx = (cookie?: string) => ({ cookie, secure: true, host: 'app.test' });
      const first = await sessions.load(ctx());
      first.session.a = 1;
      const cookie = (await sessions.commit(first)).setCookie[0]?.split(';')[0];
      return { events, load: () => sessions.load(ctx(cookie)) };
    }

    it('sets no second deadline when the store bounds itself within storeTimeout', async () => {
      // The store answers after 150 ms, later than it declared: the engine trusted it and waited.
      const { load } = await loadWith(slowStore(150, 50), 100);
      expect((await load()).session.a).toBe(1);
    });

    it('keeps its own deadline when the store declares a longer bound, or none', async () => {
      for (const bound of [5_000, undefined]) {
        const { load, events } = await loadWith(slowStore(300, bound), 100);
        await expect(load()).rejects.toSatisfy((e: unknown) => isSeshError(e, 'STORE_UNAVAILABLE') && /within 100 ms/.test(String(e)));
        expect(events.filter((e) => e.type === 'store_error')).toHaveLength(1);
      }
    });

    it("still turns a trusted store's failures into StoreUnavailableError and store_error events", async () => {
      const own = new StoreUnavailableError('get', 'the store gave up');
      for (const [fail, message] of [
        [() => own, /the store gave up/],
        [() => new TypeError('boom'), /failed on get: boom/],
      ] as const) {
        const { load, events } = await loadWith(slowStore(1, 50, fail), 100);
        await expect(load()).rejects.toSatisfy((e: unknown) => e instanceof StoreUnavailableError && message.test(e.message));
        expect(events.map((e) => e.type)).toContain('store_error');
      }
      // A synchronous throw is a rejection too, not an exception out of load().
      const store = slowStore(1, 50);
      store.get = () => {
        throw new RangeError('sync');
      };
      const { load } = await loadWith(store, 100);
      await expect(load()).rejects.toSatisfy((e: unknown) => e instanceof StoreUnavailableError && /sync/.test(e.message));
    });
  });
});
