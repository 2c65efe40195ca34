import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe as nodeDescribe, it as nodeIt } from 'node:test';
import { SeshError } from '../errors.js';
import { type Store, type StoreCapabilities, storeCapabilities } from '../store.js';
import type { StoredSession, StoredSessionEntry } from '../types.js';
import { FakeClock } from './clock.js';

/** An optional store capability that {@link runStoreSuite} can be told to require. */
export type StoreCapability = keyof StoreCapabilities;

/** What `makeStore` may return when the store needs extra teardown (drop a table, stop a server...). */
export interface StoreFixture {
  /** The store under test. */
  store: Store;
  /** Called after each test, after `store.close()` (when the store has one). */
  cleanup?: () => void | Promise<void>;
}

/**
 * Builds a fresh, **empty** store for one test. It receives the {@link FakeClock} the store must use
 * for every expiry decision. Return the store, or `{ store, cleanup }` when more teardown is needed.
 */
export type MakeStore = (ctx: { clock: FakeClock }) => Store | StoreFixture | Promise<Store | StoreFixture>;

/** A test body as the suite registers it: no parameters are declared (so mocha never sees a `done`). */
export type SuiteTestFn = (this: unknown, ...args: unknown[]) => Promise<void>;

/** `describe` of the test runner: `(name, fn) => void`, `fn` registering tests synchronously. */
export type SuiteDescribe = (name: string, fn: () => void) => unknown;
/** `it`/`test` of the test runner: `(name, fn) => void`. */
export type SuiteIt = (name: string, fn: SuiteTestFn) => unknown;

/** Options of {@link runStoreSuite}. */
export interface StoreSuiteOptions {
  /** Title of the outer `describe` block. Default `'sesh store conformance'`. */
  name?: string;
  /**
   * Capabilities the store claims: their tests fail (instead of being skipped) when the store lacks
   * them. Use it so a store that is meant to have a per-user index can never silently skip its tests.
   */
  require?: readonly StoreCapability[];
  /**
   * `describe` of your runner. Defaults to the global `describe` (jest, mocha, vitest with
   * `globals: true`), else `describe` from `node:test`. Pass it explicitly with vitest without globals.
   */
  describe?: SuiteDescribe;
  /** `it` of your runner; same defaults as `describe`. */
  it?: SuiteIt;
}

const CAPABILITIES: readonly StoreCapability[] = ['userIndex', 'purge', 'close', 'syncRead', 'syncWrite'];
const MINUTE = 60_000;

/** Resolve the runner's `describe`/`it`: options, then globals, then `node:test`. */
function resolveRunner(options: StoreSuiteOptions): { describe: SuiteDescribe; it: SuiteIt } {
  if (options.describe || options.it) {
    if (typeof options.describe !== 'function' || typeof options.it !== 'function') {
      throw new SeshError('INVALID_OPTIONS', 'runStoreSuite: pass both `describe` and `it` (functions of your test runner), or neither.');
    }
    return { describe: options.describe, it: options.it };
  }
  const g = globalThis as { describe?: unknown; it?: unknown };
  if (typeof g.describe === 'function' && typeof g.it === 'function') {
    return { describe: g.describe as SuiteDescribe, it: g.it as SuiteIt };
  }
  if (process.env.VITEST) {
    // Falling back to node:test inside vitest would register tests vitest never runs.
    throw new SeshError(
      'INVALID_OPTIONS',
      "runStoreSuite: vitest runs without globals. Pass its functions: `import { describe, it } from 'vitest'; runStoreSuite(makeStore, { describe, it })`, or set `test.globals: true`.",
    );
  }
  return { describe: nodeDescribe as SuiteDescribe, it: nodeIt as SuiteIt };
}

function isFixture(value: Store | StoreFixture): value is StoreFixture {
  return typeof (value as Store).get !== 'function' && typeof (value as StoreFixture).store === 'object';
}

/** Skip the running test through whatever the runner offers (vitest ctx, node:test t, mocha this). */
function skipTest(self: unknown, args: unknown[], note: string): void {
  for (const candidate of [args[0], self]) {
    const skip = (candidate as { skip?: unknown } | null | undefined)?.skip;
    if (typeof skip === 'function') {
      skip.call(candidate, note);
      return;
    }
  }
}

/** A random store key shaped like the engine's (64 hex chars), so every test uses its own keys. */
function newKey(): string {
  return randomBytes(32).toString('hex');
}

function newUser(): string {
  return `user-${randomBytes(8).toString('hex')}`;
}

function record(clock: FakeClock, overrides: Partial<StoredSession> = {}): StoredSession {
  const now = clock.now();
  return { data: {}, meta: {}, createdAt: now, lastSeen: now, expiresAt: now + 30 * MINUTE, userId: null, ...overrides };
}

async function mustGet(store: Store, key: string): Promise<StoredSession> {
  const got = await store.get(key);
  assert.ok(got, `get(${key.slice(0, 8)}…) returned null for a live session`);
  return got;
}

function sortedKeys(entries: readonly StoredSessionEntry[]): string[] {
  return entries.map((e) => e.key).sort();
}

/** The world one test body sees. */
interface Ctx {
  store: Store;
  clock: FakeClock;
  caps: StoreCapabilities;
}

interface Case {
  group: string;
  name: string;
  /** When set, the case needs this capability: skipped when absent, failed when required and absent. */
  needs?: StoreCapability;
  run(ctx: Ctx): Promise<void>;
}

/** Every conformance case. Bodies use fresh random keys and user IDs, and a fresh store. */
const cases: Case[] = [
  // ---------------------------------------------------------------- CRUD
  {
    group: 'CRUD',
    name: 'get on a missing key resolves null',
    async run({ store }) {
      assert.equal(await store.get(newKey()), null);
    },
  },
  {
    group: 'CRUD',
    name: 'create then get returns the same record',
    async run({ store, clock }) {
      const key = newKey();
      const s = record(clock, { data: { a: 1, b: 'two' }, meta: { authTime: clock.now(), remember: true }, userId: newUser() });
      assert.equal(await store.create(key, s), true);
      assert.deepEqual(await store.get(key), s);
    },
  },
  {
    group: 'CRUD',
    name: 'create is insert-if-absent: a second create resolves false and keeps the first data',
    async run({ store, clock }) {
      const key = newKey();
      const first = record(clock, { data: { who: 'first' } });
      assert.equal(await store.create(key, first), true);
      assert.equal(await store.create(key, record(clock, { data: { who: 'second' }, userId: newUser() })), false);
      assert.deepEqual(await store.get(key), first);
    },
  },
  {
    group: 'CRUD',
    name: 'exactly one of two concurrent creates on one key wins',
    async run({ store, clock }) {
      const key = newKey();
      const results = await Promise.all([
        store.create(key, record(clock, { data: { n: 1 } })),
        store.create(key, record(clock, { data: { n: 2 } })),
      ]);
      assert.deepEqual(results.filter(Boolean).length, 1, `results: ${JSON.stringify(results)}`);
      const got = await mustGet(store, key);
      assert.equal(got.data.n, results[0] ? 1 : 2);
    },
  },
  {
    group: 'CRUD',
    name: 'get returns a fresh object each time (mutating it changes nothing stored)',
    async run({ store, clock }) {
      const key = newKey();
      const input = record(clock, { data: { list: [1, 2], nested: { x: 1 } }, meta: { roles: ['a'] } });
      await store.create(key, input);
      // Mutating the object handed to create must not change the stored record either.
      (input.data.list as number[]).push(99);
      input.data.added = true;
      const first = await mustGet(store, key);
      assert.deepEqual({ ...first.data }, { list: [1, 2], nested: { x: 1 } });
      (first.data.list as number[]).push(3);
      (first.data.nested as Record<string, unknown>).x = 2;
      first.data.extra = 'mutated';
      (first.meta.roles as string[]).push('b');
      first.userId = 'mallory';
      const second = await mustGet(store, key);
      assert.notEqual(second, first);
      assert.deepEqual(second.data, { list: [1, 2], nested: { x: 1 } });
      assert.deepEqual(second.meta, { roles: ['a'] });
      assert.equal(second.userId, null);
    },
  },
  {
    group: 'CRUD',
    name: 'getSync answers what get resolves: records, fresh objects, missing and expired keys',
    needs: 'syncRead',
    async run({ store, clock }) {
      assert.ok(store.getSync);
      const key = newKey();
      const s = record(clock, { data: { list: [1, 2] }, meta: { roles: ['a'] }, userId: newUser() });
      assert.equal(await store.create(key, s), true);
      const got = store.getSync(key);
      assert.ok(got, 'getSync returned null for a live session');
      assert.deepEqual(got, s);
      assert.deepEqual(got, await store.get(key));
      (got.data.list as number[]).push(3);
      assert.deepEqual(store.getSync(key)?.data, { list: [1, 2] });
      assert.equal(store.getSync(newKey()), null);
      clock.advance(s.expiresAt - clock.now());
      assert.equal(store.getSync(key), null);
      assert.equal(await store.get(key), null);
    },
  },
  {
    group: 'CRUD',
    name: 'createSync, patchSync and touchSync do what create, patch and touch do',
    needs: 'syncWrite',
    async run({ store, clock, caps }) {
      const { createSync, patchSync, touchSync } = store;
      assert.ok(createSync && patchSync && touchSync);
      const key = newKey();
      const [alice, bob] = [newUser(), newUser()];
      const s = record(clock, { data: { keep: 1, change: 'old', drop: true }, meta: { ip: '198.51.100.1' }, userId: alice });
      assert.equal(createSync.call(store, key, s), true);
      assert.deepEqual(await store.get(key), s);
      assert.equal(createSync.call(store, key, record(clock, { data: { other: 1 } })), false, 'createSync of an existing key');
      assert.deepEqual(await store.get(key), s, 'a refused createSync changed the record');

      const expiresAt = clock.now() + 20 * MINUTE;
      const patch = { set: { change: 'new', added: { z: 1 } }, unset: ['drop'], metaSet: { remember: true }, userId: bob, expiresAt };
      assert.equal(patchSync.call(store, key, patch), true);
      const patched = {
        ...s,
        data: { keep: 1, change: 'new', added: { z: 1 } },
        meta: { ip: '198.51.100.1', remember: true },
        userId: bob,
        expiresAt,
      };
      assert.deepEqual(await store.get(key), patched);
      if (caps.userIndex && store.listByUser) {
        assert.deepEqual(sortedKeys(await store.listByUser(bob)), [key], 'patchSync moved the session to its new user');
        assert.deepEqual(await store.listByUser(alice), [], 'patchSync left the session under its old user');
      }

      clock.advance(MINUTE);
      const lastSeen = clock.now();
      assert.equal(touchSync.call(store, key, lastSeen, lastSeen + 30 * MINUTE), true);
      assert.deepEqual(await store.get(key), { ...patched, lastSeen, expiresAt: lastSeen + 30 * MINUTE });

      const missing = newKey();
      assert.equal(patchSync.call(store, missing, { set: { a: 1 }, expiresAt }), false, 'patchSync of a missing key');
      assert.equal(touchSync.call(store, missing, lastSeen, expiresAt), false, 'touchSync of a missing key');
      assert.equal(await store.get(missing), null, 'a missing key was created by patchSync or touchSync');

      clock.advance(30 * MINUTE);
      assert.equal(patchSync.call(store, key, { set: { late: 1 }, expiresAt: clock.now() + MINUTE }), false, 'patchSync of an expired key');
      assert.equal(touchSync.call(store, key, clock.now(), clock.now() + MINUTE), false, 'touchSync of an expired key');
      assert.equal(await store.get(key), null, 'an expired record came back');
    },
  },
  {
    group: 'CRUD',
    name: 'destroy resolves true once, then false; the record is gone',
    async run({ store, clock }) {
      const key = newKey();
      await store.create(key, record(clock, { data: { a: 1 } }));
      assert.equal(await store.destroy(key), true);
      assert.equal(await store.get(key), null);
      assert.equal(await store.destroy(key), false);
      assert.equal(await store.destroy(newKey()), false, 'destroy of a key never created');
    },
  },
  {
    group: 'CRUD',
    name: 'exactly one of two concurrent destroys resolves true',
    async run({ store, clock }) {
      const key = newKey();
      await store.create(key, record(clock));
      const results = await Promise.all([store.destroy(key), store.destroy(key)]);
      assert.equal(results.filter(Boolean).length, 1, `results: ${JSON.stringify(results)}`);
      assert.equal(await store.get(key), null);
    },
  },
  {
    group: 'CRUD',
    name: 'records under different keys are independent',
    async run({ store, clock }) {
      const [k1, k2] = [newKey(), newKey()];
      await store.create(k1, record(clock, { data: { v: 1 } }));
      await store.create(k2, record(clock, { data: { v: 2 } }));
      await store.patch(k1, { set: { v: 10 }, expiresAt: clock.now() + MINUTE });
      await store.destroy(k2);
      assert.equal((await mustGet(store, k1)).data.v, 10);
      assert.equal(await store.get(k2), null);
    },
  },

  // ---------------------------------------------------------------- expiry
  {
    group: 'expiry',
    name: 'a record is live until just before expiresAt and absent at exactly expiresAt',
    async run({ store, clock }) {
      const key = newKey();
      const s = record(clock, { expiresAt: clock.now() + 10 * MINUTE });
      await store.create(key, s);
      clock.set(s.expiresAt - 1);
      assert.deepEqual(await store.get(key), s, 'live 1 ms before expiresAt');
      clock.set(s.expiresAt);
      assert.equal(await store.get(key), null, 'absent at exactly expiresAt');
    },
  },
  {
    group: 'expiry',
    name: 'an expired record is absent for get, patch, touch and destroy',
    async run({ store, clock }) {
      const keys = [newKey(), newKey(), newKey(), newKey()] as const;
      for (const key of keys) await store.create(key, record(clock, { expiresAt: clock.now() + MINUTE }));
      clock.advance(MINUTE);
      const later = clock.now() + 30 * MINUTE;
      assert.equal(await store.get(keys[0]), null, 'get');
      assert.equal(await store.patch(keys[1], { set: { x: 1 }, expiresAt: later }), false, 'patch');
      assert.equal(await store.touch(keys[2], clock.now(), later), false, 'touch');
      assert.equal(await store.destroy(keys[3]), false, 'destroy');
      // Neither patch nor touch brought anything back to life.
      for (const key of keys) assert.equal(await store.get(key), null);
    },
  },
  {
    group: 'expiry',
    name: 'a record created already expired is never returned',
    async run({ store, clock }) {
      const key = newKey();
      await store.create(key, record(clock, { expiresAt: clock.now() - 1 }));
      assert.equal(await store.get(key), null);
    },
  },
  {
    group: 'expiry',
    name: 'touch and patch move the expiry forward and backward',
    async run({ store, clock }) {
      const [k1, k2, k3] = [newKey(), newKey(), newKey()];
      const start = clock.now();
      for (const k of [k1, k2, k3]) await store.create(k, record(clock, { expiresAt: start + MINUTE }));
      assert.equal(await store.touch(k1, start, start + 10 * MINUTE), true);
      assert.equal(await store.patch(k2, { set: { a: 1 }, expiresAt: start + 10 * MINUTE }), true);
      assert.equal(await store.patch(k3, { expiresAt: start + 30_000 }), true);
      clock.set(start + 30_000);
      assert.equal(await store.get(k3), null, 'patch shortened the expiry');
      clock.set(start + 5 * MINUTE);
      assert.ok(await store.get(k1), 'touch extended the expiry');
      assert.ok(await store.get(k2), 'patch extended the expiry');
      clock.set(start + 10 * MINUTE);
      assert.equal(await store.get(k1), null);
      assert.equal(await store.get(k2), null);
    },
  },

  // ---------------------------------------------------------------- touch
  {
    group: 'touch',
    name: 'touch changes only lastSeen and expiresAt',
    async run({ store, clock }) {
      const key = newKey();
      const s = record(clock, { data: { a: [1, { b: 2 }] }, meta: { ip: '203.0.113.9' }, userId: newUser() });
      await store.create(key, s);
      clock.advance(5 * MINUTE);
      assert.equal(await store.touch(key, clock.now(), clock.now() + 30 * MINUTE), true);
      assert.deepEqual(await store.get(key), { ...s, lastSeen: clock.now(), expiresAt: clock.now() + 30 * MINUTE });
    },
  },
  {
    group: 'touch',
    name: 'touch on a missing key resolves false and creates nothing',
    async run({ store, clock }) {
      const key = newKey();
      assert.equal(await store.touch(key, clock.now(), clock.now() + MINUTE), false);
      assert.equal(await store.get(key), null);
    },
  },

  // ---------------------------------------------------------------- patch
  {
    group: 'patch',
    name: 'set and unset of data keys merge per top-level key',
    async run({ store, clock }) {
      const key = newKey();
      const s = record(clock, { data: { keep: 1, change: 'old', drop: true }, meta: { m: 1 } });
      await store.create(key, s);
      const expiresAt = clock.now() + 20 * MINUTE;
      assert.equal(await store.patch(key, { set: { change: 'new', added: { z: 1 } }, unset: ['drop', 'never-there'], expiresAt }), true);
      assert.deepEqual(await store.get(key), { ...s, data: { keep: 1, change: 'new', added: { z: 1 } }, expiresAt });
    },
  },
  {
    group: 'patch',
    name: 'metaSet and metaUnset merge per key and leave data (even same-named keys) alone',
    async run({ store, clock }) {
      const key = newKey();
      // A data key with the same name as a meta key stays separate from it.
      const s = record(clock, { data: { d: 1, remember: 'data' }, meta: { ip: '198.51.100.1', userAgent: 'UA', remember: false } });
      await store.create(key, s);
      const expiresAt = clock.now() + 20 * MINUTE;
      assert.equal(
        await store.patch(key, { metaSet: { remember: true, authTime: 42, csrf: 'x' }, metaUnset: ['userAgent'], expiresAt }),
        true,
      );
      assert.deepEqual(await store.get(key), { ...s, meta: { ip: '198.51.100.1', remember: true, authTime: 42, csrf: 'x' }, expiresAt });
    },
  },
  {
    group: 'patch',
    name: 'userId changes to another user and to null; undefined leaves it alone',
    async run({ store, clock }) {
      const key = newKey();
      const [alice, bob] = [newUser(), newUser()];
      await store.create(key, record(clock, { userId: alice }));
      const expiresAt = clock.now() + MINUTE;
      await store.patch(key, { set: { a: 1 }, expiresAt });
      assert.equal((await mustGet(store, key)).userId, alice, 'userId undefined keeps the user');
      await store.patch(key, { userId: bob, expiresAt });
      assert.equal((await mustGet(store, key)).userId, bob);
      await store.patch(key, { userId: null, expiresAt });
      assert.equal((await mustGet(store, key)).userId, null);
      await store.patch(key, { userId: alice, expiresAt });
      assert.equal((await mustGet(store, key)).userId, alice);
    },
  },
  {
    group: 'patch',
    name: 'lastSeen is optional; expiresAt always applies; createdAt never changes',
    async run({ store, clock }) {
      const key = newKey();
      const s = record(clock);
      await store.create(key, s);
      clock.advance(MINUTE);
      await store.patch(key, { set: { a: 1 }, expiresAt: clock.now() + 5 * MINUTE });
      let got = await mustGet(store, key);
      assert.equal(got.lastSeen, s.lastSeen, 'no lastSeen in the patch keeps it');
      assert.equal(got.expiresAt, clock.now() + 5 * MINUTE);
      await store.patch(key, { lastSeen: clock.now(), expiresAt: clock.now() + 6 * MINUTE });
      got = await mustGet(store, key);
      assert.equal(got.lastSeen, clock.now());
      assert.equal(got.expiresAt, clock.now() + 6 * MINUTE);
      assert.equal(got.createdAt, s.createdAt);
      assert.deepEqual(got.data, { a: 1 });
    },
  },
  {
    group: 'patch',
    name: 'nested values are replaced wholesale, not deep-merged',
    async run({ store, clock }) {
      const key = newKey();
      await store.create(key, record(clock, { data: { prefs: { a: 1, b: { c: 2 } }, list: [1, 2, 3] }, meta: { roles: { admin: true } } }));
      const expiresAt = clock.now() + MINUTE;
      await store.patch(key, { set: { prefs: { b: { d: 3 } }, list: [4] }, metaSet: { roles: { user: true } }, expiresAt });
      const got = await mustGet(store, key);
      assert.deepEqual(got.data, { prefs: { b: { d: 3 } }, list: [4] });
      assert.deepEqual(got.meta, { roles: { user: true } });
    },
  },
  {
    group: 'patch',
    name: 'patch on a missing key resolves false and creates nothing',
    async run({ store, clock }) {
      const key = newKey();
      assert.equal(await store.patch(key, { set: { a: 1 }, userId: newUser(), expiresAt: clock.now() + MINUTE }), false);
      assert.equal(await store.get(key), null);
    },
  },
  {
    group: 'patch',
    name: 'no resurrection: patch and touch after destroy resolve false and the record stays gone',
    async run({ store, clock }) {
      const key = newKey();
      await store.create(key, record(clock, { data: { a: 1 } }));
      assert.equal(await store.destroy(key), true);
      assert.equal(await store.patch(key, { set: { b: 2 }, lastSeen: clock.now(), expiresAt: clock.now() + MINUTE }), false, 'patch');
      assert.equal(await store.touch(key, clock.now(), clock.now() + MINUTE), false, 'touch');
      assert.equal(await store.get(key), null);
      assert.equal(await store.destroy(key), false);
    },
  },
  {
    group: 'patch',
    name: 'no resurrection: a patch racing a destroy never re-creates the record',
    async run({ store, clock }) {
      const key = newKey();
      await store.create(key, record(clock, { data: { a: 1 } }));
      const expiresAt = clock.now() + MINUTE;
      await Promise.all([store.destroy(key), store.patch(key, { set: { b: 2 }, expiresAt }), store.touch(key, clock.now(), expiresAt)]);
      // Whatever the order, the destroy ran, so the record is gone.
      assert.equal(await store.get(key), null);
    },
  },

  // ---------------------------------------------------------------- concurrency
  {
    group: 'concurrency',
    name: '50 concurrent patches each setting a distinct key all survive',
    async run({ store, clock }) {
      const key = newKey();
      await store.create(key, record(clock, { data: { base: true } }));
      const expiresAt = clock.now() + MINUTE;
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.patch(key, { set: { [`k${i}`]: i }, expiresAt })));
      assert.ok(results.every(Boolean), 'every patch resolved true');
      const got = await mustGet(store, key);
      const expected: Record<string, unknown> = { base: true };
      for (let i = 0; i < 50; i++) expected[`k${i}`] = i;
      assert.deepEqual(got.data, expected);
    },
  },
  {
    group: 'concurrency',
    name: 'interleaved patches and touches lose no key',
    async run({ store, clock }) {
      const key = newKey();
      const start = clock.now();
      await store.create(key, record(clock, { data: { base: true }, meta: { m: 0 } }));
      const ops: Promise<boolean>[] = [];
      const expiries = new Set<number>();
      for (let i = 0; i < 20; i++) {
        const expiresAt = start + (i + 10) * MINUTE;
        expiries.add(expiresAt);
        ops.push(store.patch(key, { set: { [`p${i}`]: i }, metaSet: { [`m${i}`]: i }, expiresAt }));
        ops.push(store.touch(key, start + i, expiresAt));
      }
      assert.ok((await Promise.all(ops)).every(Boolean));
      const got = await mustGet(store, key);
      for (let i = 0; i < 20; i++) {
        assert.equal(got.data[`p${i}`], i, `data p${i}`);
        assert.equal(got.meta[`m${i}`], i, `meta m${i}`);
      }
      assert.equal(got.data.base, true);
      assert.equal(got.meta.m, 0);
      assert.ok(expiries.has(got.expiresAt), 'expiresAt is one of the written values');
    },
  },

  // ---------------------------------------------------------------- values
  {
    group: 'values',
    name: 'a ~1 MB string round-trips through create and patch',
    async run({ store, clock }) {
      const key = newKey();
      const big = `${'x'.repeat(512 * 1024)}${'é😀'.repeat(64 * 1024)}end`;
      await store.create(key, record(clock, { data: { big } }));
      assert.equal((await mustGet(store, key)).data.big, big);
      const big2 = `${big}!`;
      await store.patch(key, { set: { big: big2 }, expiresAt: clock.now() + MINUTE });
      assert.equal((await mustGet(store, key)).data.big, big2);
    },
  },
  {
    group: 'values',
    name: 'unicode round-trips: emoji, astral characters, RTL, combining marks, NUL inside strings, unicode keys',
    async run({ store, clock }) {
      const key = newKey();
      const data = {
        emoji: '👩‍👩‍👧‍👦 🏳️‍🌈 😀',
        astral: '𝌆𝟘𠀀\u{10FFFF}',
        rtl: 'שלום עולם مرحبا \u202Eabc\u202C',
        combining: 'e\u0301 n\u0303',
        nul: 'a\u0000b\u0000',
        controls: '\t\n\r\b\f\u0001\u001f\u007f',
        quotes: `"'\\/<script>`,
        '🔑': 'emoji key',
        ключ: 'cyrillic key',
        'a.b': 'dotted key',
        $set: 'dollar key',
        '': 'empty key',
      };
      const meta = { userAgent: 'Mozilla/5.0 (Ünïcødé) 😀', nul: '\u0000' };
      await store.create(key, record(clock, { data, meta }));
      let got = await mustGet(store, key);
      assert.deepEqual(got.data, data);
      assert.deepEqual(got.meta, meta);
      await store.patch(key, { set: { more: '∑ 😀 \u0000 שלום' }, expiresAt: clock.now() + MINUTE });
      got = await mustGet(store, key);
      assert.equal(got.data.more, '∑ 😀 \u0000 שלום');
      assert.equal(got.data.nul, 'a\u0000b\u0000');
    },
  },
  {
    group: 'values',
    name: 'JSON types round-trip: nested objects, arrays, numbers, booleans, null, empty values',
    async run({ store, clock }) {
      const key = newKey();
      const data = {
        zero: 0,
        minusOne: -1,
        huge: 1e300,
        tiny: 5e-324,
        fraction: 0.1,
        maxSafe: Number.MAX_SAFE_INTEGER,
        minSafe: Number.MIN_SAFE_INTEGER,
        yes: true,
        no: false,
        nothing: null,
        emptyString: '',
        emptyObject: {},
        emptyArray: [],
        nested: { a: { b: { c: { d: [1, [2, [3, { e: null }]]] } } } },
        mixed: [0, '', false, null, {}, [], { x: [] }],
        numericKeys: { '1': 'one', '01': 'zero-one' },
      };
      await store.create(key, record(clock, { data, meta: { nested: { ok: [true, null] } } }));
      const got = await mustGet(store, key);
      assert.deepEqual(got.data, data);
      assert.deepEqual(got.meta, { nested: { ok: [true, null] } });
      await store.patch(key, { set: { zero: null, nothing: 0, emptyArray: [[]] }, expiresAt: clock.now() + MINUTE });
      assert.deepEqual((await mustGet(store, key)).data, { ...data, zero: null, nothing: 0, emptyArray: [[]] });
    },
  },
  {
    group: 'values',
    name: 'prototype-pollution keys never pollute Object.prototype and come back dropped or inert',
    async run({ store, clock }) {
      const key = newKey();
      const evil = (): Record<string, unknown> => JSON.parse('{"__proto__":{"polluted":true},"ok":1}') as Record<string, unknown>;
      const ctorEvil = (): Record<string, unknown> =>
        JSON.parse('{"constructor":{"prototype":{"polluted":true}},"ok":1}') as Record<string, unknown>;
      // Top-level data/meta keys named __proto__ (a careless store writing `out[key] = value`
      // would replace the prototype of the returned object), and the same keys nested in values.
      const data = JSON.parse(
        '{"__proto__":{"polluted":true},"nested":{"__proto__":{"polluted":true}},"list":[{"__proto__":{"polluted":true}}]}',
      );
      data.ctor = ctorEvil();
      const meta = JSON.parse('{"__proto__":{"polluted":true},"fine":true}');
      try {
        await store.create(key, record(clock, { data, meta }));
        await store.patch(key, {
          set: { ...evil(), viaPatch: evil(), ctorPatch: ctorEvil() },
          metaSet: evil(),
          expiresAt: clock.now() + MINUTE,
        });
        const got = await mustGet(store, key);
        const objects: [string, unknown][] = [
          ['data', got.data],
          ['meta', got.meta],
          ['data.nested', got.data.nested],
          ['data.list[0]', (got.data.list as unknown[] | undefined)?.[0]],
          ['data.ctor', got.data.ctor],
          ['data.viaPatch', got.data.viaPatch],
          ['data.ctorPatch', got.data.ctorPatch],
        ];
        for (const [where, value] of objects) {
          if (value === undefined) continue; // dropped entirely is fine
          assert.equal(typeof value, 'object', where);
          const proto = Object.getPrototypeOf(value);
          assert.ok(proto === Object.prototype || proto === null, `${where} has a foreign prototype`);
          assert.equal((value as Record<string, unknown>).polluted, undefined, `${where}.polluted is inherited`);
        }
        assert.equal(got.meta.fine, true);
        assert.equal(got.data.ok, 1, 'ordinary keys next to the evil ones survive');
        assert.equal((got.data.viaPatch as Record<string, unknown>).ok, 1);
        assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype was polluted');
        assert.equal({}.constructor, Object);
      } finally {
        // Never leave a polluted prototype behind for other tests, even when the store failed.
        delete (Object.prototype as Record<string, unknown>).polluted;
      }
    },
  },

  // ---------------------------------------------------------------- per-user index
  {
    group: 'per-user index',
    needs: 'userIndex',
    name: 'listByUser lists the live sessions created with a userId, and only them',
    async run({ store, clock }) {
      const [alice, bob] = [newUser(), newUser()];
      const [a1, a2, b1, anon] = [newKey(), newKey(), newKey(), newKey()];
      const s1 = record(clock, { userId: alice, data: { n: 1 }, meta: { ip: '192.0.2.1' } });
      await store.create(a1, s1);
      await store.create(a2, record(clock, { userId: alice }));
      await store.create(b1, record(clock, { userId: bob }));
      await store.create(anon, record(clock));
      const list = await store.listByUser!(alice);
      assert.deepEqual(sortedKeys(list), [a1, a2].sort());
      assert.deepEqual(list.find((e) => e.key === a1)?.session, s1, 'entries carry the full record');
      assert.deepEqual(sortedKeys(await store.listByUser!(bob)), [b1]);
      assert.deepEqual(await store.listByUser!(newUser()), [], 'unknown user');
    },
  },
  {
    group: 'per-user index',
    needs: 'userIndex',
    name: 'a patch changing userId moves the session between users; null removes it',
    async run({ store, clock }) {
      const [alice, bob] = [newUser(), newUser()];
      const [k, other] = [newKey(), newKey()];
      await store.create(k, record(clock));
      await store.create(other, record(clock, { userId: alice }));
      const expiresAt = clock.now() + MINUTE;
      await store.patch(k, { userId: alice, expiresAt });
      assert.deepEqual(sortedKeys(await store.listByUser!(alice)), [k, other].sort(), 'login adds it');
      await store.patch(k, { userId: bob, set: { a: 1 }, expiresAt });
      assert.deepEqual(sortedKeys(await store.listByUser!(alice)), [other]);
      assert.deepEqual(sortedKeys(await store.listByUser!(bob)), [k]);
      await store.patch(k, { set: { b: 2 }, expiresAt });
      await store.touch(k, clock.now(), expiresAt);
      assert.deepEqual(sortedKeys(await store.listByUser!(bob)), [k], 'patches without userId and touches keep it');
      await store.patch(k, { userId: null, expiresAt });
      assert.deepEqual(await store.listByUser!(bob), [], 'logout removes it');
      assert.deepEqual(sortedKeys(await store.listByUser!(alice)), [other]);
    },
  },
  {
    group: 'per-user index',
    needs: 'userIndex',
    name: 'destroyed and expired sessions are not listed',
    async run({ store, clock }) {
      const alice = newUser();
      const [live, gone, short] = [newKey(), newKey(), newKey()];
      await store.create(live, record(clock, { userId: alice }));
      await store.create(gone, record(clock, { userId: alice }));
      await store.create(short, record(clock, { userId: alice, expiresAt: clock.now() + MINUTE }));
      await store.destroy(gone);
      assert.deepEqual(sortedKeys(await store.listByUser!(alice)), [live, short].sort());
      clock.advance(MINUTE);
      assert.deepEqual(sortedKeys(await store.listByUser!(alice)), [live]);
    },
  },
  {
    group: 'per-user index',
    needs: 'userIndex',
    name: 'destroyByUser deletes the sessions of one user except the given keys and resolves the count',
    async run({ store, clock }) {
      const [alice, bob] = [newUser(), newUser()];
      const [a1, a2, a3, b1] = [newKey(), newKey(), newKey(), newKey()];
      for (const k of [a1, a2, a3]) await store.create(k, record(clock, { userId: alice }));
      await store.create(b1, record(clock, { userId: bob }));
      assert.equal(await store.destroyByUser!(alice, [a1]), 2);
      assert.ok(await store.get(a1), 'the excepted session survives');
      assert.equal(await store.get(a2), null);
      assert.equal(await store.get(a3), null);
      assert.ok(await store.get(b1), 'other users are untouched');
      assert.deepEqual(sortedKeys(await store.listByUser!(alice)), [a1]);
      assert.equal(await store.destroyByUser!(alice), 1, 'without exceptKeys: all');
      assert.equal(await store.get(a1), null);
      assert.deepEqual(await store.listByUser!(alice), []);
      assert.equal(await store.destroyByUser!(alice), 0);
      assert.equal(await store.destroyByUser!(newUser(), []), 0, 'unknown user');
      assert.equal(await store.patch(a2, { set: { x: 1 }, expiresAt: clock.now() + MINUTE }), false, 'no resurrection');
    },
  },

  // ---------------------------------------------------------------- purge
  {
    group: 'purgeExpired',
    needs: 'purge',
    name: 'purgeExpired deletes only expired records and resolves their count',
    async run({ store, clock }) {
      const start = clock.now();
      const user = newUser();
      const expired = [newKey(), newKey(), newKey()];
      const live = [newKey(), newKey()];
      for (const k of expired) await store.create(k, record(clock, { expiresAt: start + MINUTE, userId: user }));
      for (const k of live) await store.create(k, record(clock, { expiresAt: start + 10 * MINUTE, userId: user }));
      assert.equal(await store.purgeExpired!(), 0, 'nothing expired yet');
      clock.set(start + MINUTE);
      assert.equal(await store.purgeExpired!(), 3);
      for (const k of live) assert.ok(await store.get(k), 'live records survive the purge');
      for (const k of expired) assert.equal(await store.get(k), null);
      assert.equal(await store.purgeExpired!(), 0, 'a second purge finds nothing');
      if (typeof store.listByUser === 'function') assert.deepEqual(sortedKeys(await store.listByUser(user)), [...live].sort());
    },
  },

  // ---------------------------------------------------------------- close
  {
    group: 'close',
    needs: 'close',
    name: 'close() can be called twice',
    async run({ store }) {
      await store.close!();
      await store.close!();
    },
  },
];

/**
 * Register the sesh store conformance suite with your test runner. Every store must pass it; run it
 * against your own store to check it honours the contract of `Store` (see `docs/testing.md`).
 *
 * Each test calls `makeStore({ clock })` for a fresh, empty store driven by a {@link FakeClock}, and
 * afterwards calls `store.close()` (when present) and the fixture's `cleanup`, even when the test
 * failed; no `beforeEach`/`afterEach` hooks are needed. Tests for optional capabilities (per-user
 * index, `purgeExpired`, `close`) are skipped when the store lacks them, unless `options.require`
 * lists them, in which case they fail.
 *
 * ```ts
 * import { describe, it } from 'vitest';
 * import { runStoreSuite } from 'sesh/testing';
 * runStoreSuite(({ clock }) => new MyStore({ clock }), { describe, it, require: ['userIndex'] });
 * ```
 *
 * @param makeStore Builds one empty store using the given clock; may return `{ store, cleanup }`.
 * @param options Runner functions (default: globals, else `node:test`) and required capabilities.
 */
export function runStoreSuite(makeStore: MakeStore, options: StoreSuiteOptions = {}): void {
  if (typeof makeStore !== 'function') {
    throw new SeshError('INVALID_OPTIONS', 'runStoreSuite(makeStore): makeStore must be a function `({ clock }) => store`.');
  }
  const required = new Set<StoreCapability>(options.require ?? []);
  for (const cap of required) {
    if (!CAPABILITIES.includes(cap)) {
      throw new SeshError(
        'INVALID_OPTIONS',
        `runStoreSuite: unknown capability "${String(cap)}" in \`require\`; use ${CAPABILITIES.join(', ')}.`,
      );
    }
  }
  const { describe, it } = resolveRunner(options);

  /** Wrap one case: fresh store, capability gate, teardown in `finally`. */
  const wrap = (c: Case | null): SuiteTestFn =>
    async function (this: unknown, ...args: unknown[]): Promise<void> {
      const clock = new FakeClock();
      const made = await makeStore({ clock });
      const fixture: StoreFixture = isFixture(made) ? made : { store: made };
      const { store } = fixture;
      try {
        assert.ok(store && typeof store.get === 'function', 'makeStore must return a Store or { store, cleanup }');
        const caps = storeCapabilities(store);
        if (c === null) {
          // The capability check itself.
          const missing = [...required].filter((cap) => !caps[cap]);
          assert.deepEqual(missing, [], `the store lacks required capabilities: ${missing.join(', ')}`);
          return;
        }
        if (c.needs && !caps[c.needs]) {
          assert.ok(!required.has(c.needs), `the store lacks the required capability "${c.needs}"`);
          skipTest(this, args, `store has no "${c.needs}" capability`);
          return;
        }
        await c.run({ store, clock, caps });
      } finally {
        try {
          if (typeof store?.close === 'function') await store.close();
        } finally {
          if (fixture.cleanup) await fixture.cleanup();
        }
      }
    };

  describe(options.name ?? 'sesh store conformance', () => {
    it('has the capabilities it is required to have', wrap(null));
    const groups = [...new Set(cases.map((c) => c.group))];
    for (const group of groups) {
      describe(group, () => {
        for (const c of cases) if (c.group === group) it(c.name, wrap(c));
      });
    }
  });
}
