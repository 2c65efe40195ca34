import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { OptionsError } from '../../errors.js';
import { FakeClock, runStoreSuite } from '../../testing/index.js';
import type { StoredSession } from '../../types.js';
import { MemoryStore, type MemoryStoreOptions } from './index.js';

runStoreSuite(({ clock }) => new MemoryStore({ clock, sweepInterval: 0 }), {
  name: 'MemoryStore conformance',
  describe,
  it,
  require: ['userIndex', 'purge', 'close', 'syncRead', 'syncWrite'],
});

// Once more with the sweep timer running, so the suite also exercises close() stopping it.
runStoreSuite(({ clock }) => new MemoryStore({ clock, maxEntries: 1_000 }), {
  name: 'MemoryStore conformance (sweep timer on)',
  describe,
  it,
  require: ['userIndex', 'purge', 'close', 'syncRead', 'syncWrite'],
});

function session(clock: FakeClock, userId: string | null = null, ttl = 60_000): StoredSession {
  const now = clock.now();
  return { data: { n: 1 }, meta: {}, createdAt: now, lastSeen: now, expiresAt: now + ttl, userId };
}

async function live(store: MemoryStore, keys: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const k of keys) if (await store.get(k)) out.push(k);
  return out;
}

describe('MemoryStore LRU eviction', () => {
  it('evicts the least recently used entry past maxEntries; reads, patches and touches count as use', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock, maxEntries: 3, sweepInterval: 0 });
    for (const k of ['a', 'b', 'c']) await store.create(k, session(clock));
    await store.get('a'); // order now b, c, a
    await store.create('d', session(clock)); // evicts b
    expect(store.size).toBe(3);
    expect(await store.get('b')).toBeNull();
    // order: c, a, d (the get calls above on missing b change nothing)
    await store.touch('c', clock.now(), clock.now() + 60_000); // order a, d, c
    await store.create('e', session(clock)); // evicts a
    await store.patch('d', { set: { x: 1 }, expiresAt: clock.now() + 60_000 }); // order c, e, d
    await store.create('f', session(clock)); // evicts c
    expect(store.size).toBe(3);
    expect(await live(store, ['a', 'b', 'c', 'd', 'e', 'f'])).toEqual(['d', 'e', 'f']);
    expect(await store.patch('a', { set: { x: 1 }, expiresAt: clock.now() + 60_000 })).toBe(false);
    await store.close();
  });

  it('keeps the per-user index consistent after eviction', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock, maxEntries: 2, sweepInterval: 0 });
    await store.create('old', session(clock, 'u1'));
    await store.create('mid', session(clock, 'u1'));
    await store.get('old'); // mid is now the least recently used
    await store.create('new', session(clock, 'u2')); // evicts mid
    expect((await store.listByUser('u1')).map((e) => e.key)).toEqual(['old']);
    expect((await store.listByUser('u2')).map((e) => e.key)).toEqual(['new']);
    // Re-using the evicted key for another user must not surface it under u1.
    await store.create('mid', session(clock, 'u2')); // evicts old
    expect(await store.listByUser('u1')).toEqual([]);
    expect(await store.destroyByUser('u1')).toBe(0);
    expect((await store.listByUser('u2')).map((e) => e.key).sort()).toEqual(['mid', 'new']);
    expect(await store.destroyByUser('u2', ['new'])).toBe(1);
    expect(store.size).toBe(1);
    await store.close();
  });

  it('maxEntries 1 keeps only the newest session', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock, maxEntries: 1, sweepInterval: 0 });
    await store.create('a', session(clock, 'u'));
    await store.create('b', session(clock, 'u'));
    expect(await live(store, ['a', 'b'])).toEqual(['b']);
    expect((await store.listByUser('u')).map((e) => e.key)).toEqual(['b']);
    await store.close();
  });
});

describe('MemoryStore LRU model', () => {
  it('evicts exactly like a reference LRU under any sequence of creates, reads, writes and deletes', async () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('create' as const), k: fc.integer({ min: 0, max: 11 }) }),
      fc.record({
        t: fc.constantFrom('get' as const, 'patch' as const, 'touch' as const, 'destroy' as const),
        k: fc.integer({ min: 0, max: 11 }),
      }),
      fc.record({ t: fc.constant('clear' as const), k: fc.constant(0) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 80 }), async (max, ops) => {
        const clock = new FakeClock();
        const store = new MemoryStore({ clock, maxEntries: max, sweepInterval: 0 });
        const model: string[] = []; // least recently used first
        const use = (k: string) => {
          model.splice(model.indexOf(k), 1);
          model.push(k);
        };
        for (const { t, k } of ops) {
          const key = `k${k}`;
          const has = model.includes(key);
          if (t === 'create') {
            expect(await store.create(key, session(clock))).toBe(!has);
            if (!has) {
              model.push(key);
              if (model.length > max) model.shift();
            }
          } else if (t === 'get') {
            expect((await store.get(key)) !== null).toBe(has);
            if (has) use(key);
          } else if (t === 'patch') {
            expect(await store.patch(key, { set: { x: k }, expiresAt: clock.now() + 60_000 })).toBe(has);
            if (has) use(key);
          } else if (t === 'touch') {
            expect(await store.touch(key, clock.now(), clock.now() + 60_000)).toBe(has);
            if (has) use(key);
          } else if (t === 'destroy') {
            expect(await store.destroy(key)).toBe(has);
            if (has) model.splice(model.indexOf(key), 1);
          } else {
            store.clear();
            model.length = 0;
          }
          expect(store.size).toBe(model.length);
        }
        // Reads never evict, so every key can be checked in any order.
        for (let i = 0; i < 12; i++) expect((await store.get(`k${i}`)) !== null).toBe(model.includes(`k${i}`));
        await store.close();
      }),
      { numRuns: 300 },
    );
  });
});

describe('MemoryStore sweep', () => {
  it('removes expired entries on the timer and stops after close()', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock, sweepInterval: 10 });
    await store.create('short', session(clock, 'u', 1_000));
    await store.create('long', session(clock, 'u', 60_000));
    await new Promise((r) => setTimeout(r, 50));
    expect(store.size).toBe(2); // nothing expired yet
    clock.advance(1_000);
    await vi.waitFor(() => expect(store.size).toBe(1), { timeout: 2_000, interval: 10 });
    expect((await store.listByUser('u')).map((e) => e.key)).toEqual(['long']);
    await store.close();
    clock.advance(60_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(store.size).toBe(1); // no sweep after close (get would still hide it)
    expect(await store.get('long')).toBeNull();
    expect(store.size).toBe(0);
  });

  it('sweepInterval 0 disables the timer; purgeExpired still works', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock, sweepInterval: 0 });
    await store.create('a', session(clock, null, 10));
    clock.advance(10);
    await new Promise((r) => setTimeout(r, 20));
    expect(store.size).toBe(1);
    expect(await store.purgeExpired()).toBe(1);
    expect(store.size).toBe(0);
  });

  it('clear() removes every session and the user index', async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock, sweepInterval: 0 });
    await store.create('a', session(clock, 'u'));
    store.clear();
    expect(store.size).toBe(0);
    expect(await store.listByUser('u')).toEqual([]);
  });
});

describe('MemoryStore options', () => {
  const bad: [string, MemoryStoreOptions, RegExp][] = [
    ['maxEntries 0', { maxEntries: 0 }, /maxEntries/],
    ['maxEntries -1', { maxEntries: -1 }, /maxEntries/],
    ['maxEntries 1.5', { maxEntries: 1.5 }, /maxEntries/],
    ['maxEntries NaN', { maxEntries: Number.NaN }, /maxEntries/],
    ['maxEntries Infinity', { maxEntries: Number.POSITIVE_INFINITY }, /maxEntries/],
    ['maxEntries as a string', { maxEntries: '10' as unknown as number }, /maxEntries/],
    ['sweepInterval -1', { sweepInterval: -1 }, /sweepInterval/],
    ['sweepInterval NaN', { sweepInterval: Number.NaN }, /sweepInterval/],
    ['sweepInterval Infinity', { sweepInterval: Number.POSITIVE_INFINITY }, /sweepInterval/],
    ['sweepInterval as a string', { sweepInterval: '5' as unknown as number }, /sweepInterval/],
    ['clock without now()', { clock: {} as unknown as FakeClock }, /clock/],
  ];
  for (const [name, options, message] of bad) {
    it(`rejects ${name} with OptionsError`, () => {
      let caught: unknown;
      try {
        new MemoryStore(options).close();
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(OptionsError);
      expect((caught as OptionsError).code).toBe('INVALID_OPTIONS');
      expect((caught as Error).message).toMatch(message);
    });
  }

  it('accepts the defaults and explicit valid values', async () => {
    for (const options of [{}, { maxEntries: 1, sweepInterval: 0 }, { maxEntries: 5, sweepInterval: 1, clock: new FakeClock() }]) {
      const store = new MemoryStore(options);
      expect(store.size).toBe(0);
      await store.close();
    }
  });
});
