import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isSeshError } from '../errors.js';
import { applyPatch, type Store } from '../store.js';
import { MemoryStore } from '../stores/memory/index.js';
import type { SessionPatch, StoredSession } from '../types.js';
import { FakeClock } from './clock.js';
import { type MakeStore, runStoreSuite, type StoreSuiteOptions, type SuiteTestFn } from './index.js';

/** A fake runner: collects the registered tests so this file can run them and look at the outcome. */
function collect(makeStore: MakeStore, options: Omit<StoreSuiteOptions, 'describe' | 'it'> = {}) {
  const tests: { name: string; fn: SuiteTestFn }[] = [];
  const path: string[] = [];
  runStoreSuite(makeStore, {
    ...options,
    describe: (name, fn) => {
      path.push(name);
      fn();
      path.pop();
    },
    it: (name, fn) => {
      tests.push({ name: [...path, name].join(' > '), fn });
    },
  });
  return tests;
}

/** Run every collected test; returns the names of the failed ones and of the skipped ones. */
async function outcome(makeStore: MakeStore, options: Omit<StoreSuiteOptions, 'describe' | 'it'> = {}) {
  const failed: string[] = [];
  const skipped: string[] = [];
  const tests = collect(makeStore, options);
  for (const t of tests) {
    const ctx = { skip: () => skipped.push(t.name) };
    try {
      await t.fn.call(undefined, ctx);
    } catch {
      failed.push(t.name);
    }
  }
  return { total: tests.length, failed, skipped };
}

/** A store that delegates to a MemoryStore, except that its patch upserts. */
class UpsertingStore implements Store {
  constructor(readonly inner: MemoryStore) {}
  get(key: string) {
    return this.inner.get(key);
  }
  create(key: string, s: StoredSession) {
    return this.inner.create(key, s);
  }
  async patch(key: string, p: SessionPatch) {
    // The classic bug: a save after logout re-creates the session.
    if (!(await this.inner.get(key))) {
      await this.inner.create(key, { data: {}, meta: {}, createdAt: 0, lastSeen: 0, expiresAt: p.expiresAt, userId: null });
    }
    return this.inner.patch(key, p);
  }
  touch(key: string, lastSeen: number, expiresAt: number) {
    return this.inner.touch(key, lastSeen, expiresAt);
  }
  destroy(key: string) {
    return this.inner.destroy(key);
  }
}

/** A naive Map store that keeps and hands out the very objects it was given (no copies). */
class SharingStore implements Store {
  readonly #map = new Map<string, StoredSession>();
  constructor(readonly clock: FakeClock) {}
  #live(key: string) {
    const s = this.#map.get(key);
    return s && s.expiresAt > this.clock.now() ? s : undefined;
  }
  async get(key: string) {
    return this.#live(key) ?? null;
  }
  async create(key: string, s: StoredSession) {
    if (this.#live(key)) return false;
    this.#map.set(key, s);
    return true;
  }
  async patch(key: string, p: SessionPatch) {
    const s = this.#live(key);
    if (!s) return false;
    this.#map.set(key, applyPatch(s, p));
    return true;
  }
  async touch(key: string, lastSeen: number, expiresAt: number) {
    const s = this.#live(key);
    if (!s) return false;
    s.lastSeen = lastSeen;
    s.expiresAt = expiresAt;
    return true;
  }
  async destroy(key: string) {
    return this.#live(key) ? this.#map.delete(key) : false;
  }
}

/**
 * The express-session way: patch reads the whole record, yields (a network round trip), and writes
 * the whole record back, so of two concurrent patches the last writer wins and the other key is lost.
 */
class LastWriterWinsStore extends UpsertingStore {
  override async patch(key: string, p: SessionPatch) {
    const current = await this.inner.get(key);
    if (!current) return false;
    await new Promise((r) => setImmediate(r));
    const next = applyPatch(current, p);
    await this.inner.destroy(key);
    return this.inner.create(key, next);
  }
}

const memory: MakeStore = ({ clock }) => new MemoryStore({ clock, sweepInterval: 0 });

describe('runStoreSuite can fail', () => {
  it('passes a correct store (MemoryStore) on every test, and closes every store it made', async () => {
    let made = 0;
    let closed = 0;
    let cleaned = 0;
    const result = await outcome(
      ({ clock }) => {
        made++;
        const store = new MemoryStore({ clock, sweepInterval: 0 });
        const close = store.close.bind(store);
        store.close = async () => {
          closed++;
          await close();
        };
        return { store, cleanup: () => void cleaned++ };
      },
      { require: ['userIndex', 'purge', 'close'] },
    );
    expect(result.failed).toEqual([]);
    expect(result.skipped).toEqual([]);
    expect(result.total).toBeGreaterThan(30);
    expect(made).toBe(result.total);
    expect(cleaned).toBe(result.total);
    expect(closed).toBeGreaterThanOrEqual(result.total); // the close test calls it twice more
  });

  it('fails a store whose patch upserts on the no-resurrection and update-if-exists cases', async () => {
    const result = await outcome(({ clock }) => new UpsertingStore(new MemoryStore({ clock, sweepInterval: 0 })));
    expect(result.failed).toContain(
      'sesh store conformance > patch > no resurrection: patch and touch after destroy resolve false and the record stays gone',
    );
    expect(result.failed).toContain('sesh store conformance > patch > patch on a missing key resolves false and creates nothing');
    expect(result.failed).toContain('sesh store conformance > expiry > an expired record is absent for get, patch, touch and destroy');
    // ...and only cases that involve patching a missing record.
    expect(result.failed.length).toBeLessThan(8);
    expect(result.failed.some((n) => n.includes('> CRUD >'))).toBe(false);
  });

  it('fails a read-modify-write store (last writer wins) on the concurrency cases', async () => {
    const result = await outcome(({ clock }) => new LastWriterWinsStore(new MemoryStore({ clock, sweepInterval: 0 })));
    expect(result.failed).toContain('sesh store conformance > concurrency > 50 concurrent patches each setting a distinct key all survive');
    expect(result.failed).toContain('sesh store conformance > concurrency > interleaved patches and touches lose no key');
  });

  it('fails a store whose get hands out its own record object', async () => {
    const result = await outcome(({ clock }) => new SharingStore(clock));
    expect(result.failed).toEqual([
      'sesh store conformance > CRUD > get returns a fresh object each time (mutating it changes nothing stored)',
    ]);
  });

  it('skips capability tests of a store without them, and fails them when required', async () => {
    const bare: MakeStore = ({ clock }) => new SharingStore(clock);
    const lenient = await outcome(bare);
    expect(lenient.skipped.filter((n) => n.includes('> per-user index >'))).toHaveLength(4);
    expect(lenient.skipped.some((n) => n.includes('> purgeExpired >'))).toBe(true);
    expect(lenient.failed.some((n) => n.includes('per-user index') || n.includes('capabilities'))).toBe(false);

    const strict = await outcome(bare, { require: ['userIndex'] });
    expect(strict.failed).toContain('sesh store conformance > has the capabilities it is required to have');
    expect(strict.failed.filter((n) => n.includes('> per-user index >'))).toHaveLength(4);
    expect(strict.skipped.some((n) => n.includes('> purgeExpired >'))).toBe(true);
  });

  it('runs cleanup even when a test fails', async () => {
    let cleaned = 0;
    const tests = collect(({ clock }) => ({
      store: new UpsertingStore(new MemoryStore({ clock, sweepInterval: 0 })),
      cleanup: () => void cleaned++,
    }));
    const t = tests.find((x) => x.name.endsWith('patch on a missing key resolves false and creates nothing'));
    await expect(t?.fn.call(undefined)).rejects.toThrow();
    expect(cleaned).toBe(1);
  });

  it('rejects bad arguments with INVALID_OPTIONS', () => {
    const err = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    // Inside vitest without globals there is no global describe: it must say so, not fall back to node:test.
    expect(
      isSeshError(
        err(() => runStoreSuite(memory)),
        'INVALID_OPTIONS',
      ),
    ).toBe(true);
    expect(
      isSeshError(
        err(() => runStoreSuite(memory, { describe, it, require: ['nope' as 'purge'] })),
        'INVALID_OPTIONS',
      ),
    ).toBe(true);
    expect(
      isSeshError(
        err(() => runStoreSuite(memory, { describe })),
        'INVALID_OPTIONS',
      ),
    ).toBe(true);
    expect(
      isSeshError(
        err(() => runStoreSuite(undefined as unknown as MakeStore, { describe, it })),
        'INVALID_OPTIONS',
      ),
    ).toBe(true);
  });
});

describe('runStoreSuite under node:test', () => {
  const suiteUrl = new URL('./index.ts', import.meta.url).href;
  const memoryUrl = new URL('../stores/memory/index.ts', import.meta.url).href;
  const run = (makeStoreSource: string) => {
    const source = [
      `import { runStoreSuite } from ${JSON.stringify(suiteUrl)};`,
      `import { MemoryStore } from ${JSON.stringify(memoryUrl)};`,
      `runStoreSuite(${makeStoreSource}, { require: ['userIndex'] });`,
    ].join('\n');
    const env = { ...process.env };
    delete env.VITEST;
    delete env.VITEST_WORKER_ID;
    delete env.VITEST_POOL_ID;
    delete env.NODE_ENV;
    return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
  };

  it('registers with node:test when there is no global describe, and passes MemoryStore', () => {
    const r = run('({ clock }) => new MemoryStore({ clock, sweepInterval: 0 })');
    expect(r.stderr + r.stdout).toMatch(/pass [3-9]\d/);
    expect(r.stdout).toMatch(/fail 0/);
    expect(r.status).toBe(0);
  });

  it('exits non-zero under node:test for a store that lacks a required capability', () => {
    const r = run(`({ clock }) => { const s = new MemoryStore({ clock, sweepInterval: 0 }); s.listByUser = undefined; return s; }`);
    expect(r.stdout).toMatch(/fail [1-9]/);
    expect(r.status).not.toBe(0);
  });
});

describe('FakeClock', () => {
  it('moves only when told', () => {
    const clock = new FakeClock(1_000);
    expect(clock.now()).toBe(1_000);
    clock.advance(500);
    expect(clock.now()).toBe(1_500);
    clock.set(10);
    expect(clock.now()).toBe(10);
    expect(Math.abs(new FakeClock().now() - Date.now())).toBeLessThan(1_000);
  });
});
