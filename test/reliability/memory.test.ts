/**
 * Memory:
 * - SESH_STRESS_MEMORY_SESSIONS sessions (default 200,000; 1,000,000 under test:stress) created
 *   through the engine on a MemoryStore capped at SESH_STRESS_MEMORY_CAP (default 10,000), in a
 *   child process with --expose-gc (so the figures are this workload's alone): the store never
 *   holds more than the cap, and heap and RSS after a full GC stay flat once the cap is reached.
 * - Requests without a cookie, with `saveUninitialized: false`: SESH_STRESS_ANON_REQUESTS (default
 *   100,000) through the engine directly (load + commit, what the adapter calls), and
 *   SESH_STRESS_ANON_HTTP per Express major (default 5,000; 100,000 under test:stress) over real
 *   HTTP with autocannon: zero records, zero store writes, and no Set-Cookie (every engine result,
 *   and a 200-request sample of HTTP responses read header by header).
 */
import autocannon from 'autocannon';
import type { Express } from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { session } from '../../src/adapters/express/index.js';
import { createSessions } from '../../src/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';
import { expressVersions, listen, type Running, request } from '../support/http.js';
import { runNode, TSX } from '../support/sqlite.js';
import { CountingStore, max, param, type Row, report, SECRET } from './harness.js';

const SESSIONS = param('SESH_STRESS_MEMORY_SESSIONS', 200_000, 1_000_000);
const CAP = param('SESH_STRESS_MEMORY_CAP', 10_000, 10_000);
const ANON = param('SESH_STRESS_ANON_REQUESTS', 100_000, 1_000_000);
const ANON_HTTP = param('SESH_STRESS_ANON_HTTP', 5_000, 100_000);
const MB = 1024 * 1024;
/** Allowed growth after the cap is reached: well under what even 10% of the extra sessions would take. */
const HEAP_SLACK = 16 * MB;
const RSS_SLACK = 96 * MB;

const rows: Row[] = [];
const apps: Running[] = [];
afterAll(async () => {
  for (const a of apps) await a.close().catch(() => {});
  await report('memory', 'Memory: bounded store, and no records for cookieless visitors', rows);
});

interface Sample {
  rss: number;
  heapUsed: number;
  size: number;
}

describe('memory', () => {
  it(`${SESSIONS} sessions through a MemoryStore capped at ${CAP}: size, heap and RSS stay bounded`, async () => {
    const run = await runNode(
      ['--expose-gc', '--import', TSX, 'test/reliability/fixtures/memory-child.ts', String(SESSIONS), String(CAP)],
      {
        timeout: 900_000,
      },
    );
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1) as string) as {
      total: number;
      ms: number;
      maxSize: number;
      baseline: Sample;
      checkpoints: Sample[];
      end: Sample;
    };
    expect(out.total).toBe(SESSIONS);
    expect(out.maxSize).toBe(CAP);
    const all = [...out.checkpoints, out.end];
    expect(all.every((s) => s.size === CAP)).toBe(true);
    const heapGrowth = max(all.map((s) => s.heapUsed)) - out.baseline.heapUsed;
    const rssGrowth = max(all.map((s) => s.rss)) - out.baseline.rss;
    expect(heapGrowth).toBeLessThan(HEAP_SLACK);
    expect(rssGrowth).toBeLessThan(RSS_SLACK);
    rows.push({
      scenario: 'sessions created (engine, capped MemoryStore)',
      count: SESSIONS,
      cap: CAP,
      'max records': out.maxSize,
      'heap at cap (MB)': (out.baseline.heapUsed / MB).toFixed(1),
      'heap growth after cap (MB)': (heapGrowth / MB).toFixed(1),
      'RSS at cap (MB)': (out.baseline.rss / MB).toFixed(1),
      'RSS growth after cap (MB)': (rssGrowth / MB).toFixed(1),
      ms: out.ms,
    });
  }, 900_000);

  it(`${ANON} requests without a cookie through the engine, ${ANON_HTTP} per Express major over HTTP: zero records`, async () => {
    let total = 0;
    let writes = 0;
    let records = 0;
    let withCookie = 0;
    {
      const inner = new MemoryStore({ sweepInterval: 0, quiet: true });
      const store = new CountingStore(inner);
      const sessions = createSessions({ secret: SECRET, store, saveUninitialized: false });
      for (let i = 0; i < ANON; i++) {
        const state = await sessions.load({ cookie: undefined, secure: true, ip: '127.0.0.1', userAgent: 'x' });
        void (state.session as unknown as Record<string, unknown>).views;
        const { setCookie } = await sessions.commit(state);
        if (setCookie.length > 0) withCookie++;
      }
      total += ANON;
      writes += store.calls.create + store.calls.patch + store.calls.touch;
      records += inner.size;
    }
    let handled = 0;
    for (const { express } of expressVersions) {
      const inner = new MemoryStore({ sweepInterval: 0, quiet: true });
      const store = new CountingStore(inner);
      const app: Express = express();
      app.use(session({ secret: SECRET, store, saveUninitialized: false }));
      app.get('/', (req, res) => {
        handled++;
        // Reads (and a read of a missing key) never make a session worth saving.
        const s = req.session as unknown as Record<string, unknown>;
        res.send(String(s.views ?? 'none'));
      });
      const running = await listen(app);
      apps.push(running);
      // A sample through a real client, to look at every response's headers.
      const sample = await Promise.all(Array.from({ length: 200 }, () => request(`${running.url}/`)));
      expect(sample.map((r) => r.status)).toEqual(sample.map(() => 200));
      withCookie += sample.filter((r) => r.setCookie.length > 0).length;
      // `amount` (stop after N requests) is not in bench/autocannon.d.ts, which declares the module.
      const options = { url: `${running.url}/`, amount: ANON_HTTP, connections: 8 };
      const result = await autocannon(options as Parameters<typeof autocannon>[0]);
      expect(result.errors).toBe(0);
      expect(result.non2xx).toBe(0);
      writes += store.calls.create + store.calls.patch + store.calls.touch;
      records += inner.size;
    }
    total += handled;
    expect(handled).toBeGreaterThanOrEqual(2 * (ANON_HTTP + 200) * 0.99);
    expect(withCookie).toBe(0);
    expect(writes).toBe(0);
    expect(records).toBe(0);
    rows.push({
      scenario: 'requests without a cookie (saveUninitialized false)',
      count: total,
      'over HTTP': handled,
      'max records': records,
      'store writes': writes,
      'Set-Cookie sent': withCookie,
    });
  }, 600_000);
});
