// Engine-level micro-benchmark (no HTTP): CPU µs per load + commit for the three benchmark routes on
// the memory or SQLite store, from a build (default ../dist; SESH_DIST=/path for another one, e.g. a
// JS-only `npx tsup --no-dts --out-dir /tmp/sesh-dist`).
// Usage: node bench/hotpath.mjs [iterations] [memory|sqlite]   (profile: node --cpu-prof bench/hotpath.mjs ...)
// Used to find and check hot-path optimisations; the HTTP numbers of `npm run bench` are the ones that count.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = process.env.SESH_DIST ? pathToFileURL(`${process.env.SESH_DIST}/`).href : new URL('../dist/', import.meta.url).href;
const { createSessions } = await import(`${dist}index.js`);

const N = Number(process.argv[2] ?? 200_000);
const kind = process.argv[3] ?? 'memory';
let store;
let tmp;
if (kind === 'memory') {
  const { MemoryStore } = await import(`${dist}stores/memory.js`);
  store = new MemoryStore({ maxEntries: 10_000, sweepInterval: 0, quiet: true });
} else if (kind === 'sqlite') {
  const { SqliteStore } = await import(`${dist}stores/sqlite.js`);
  tmp = mkdtempSync(join(tmpdir(), 'sesh-hotpath-'));
  store = new SqliteStore({ path: join(tmp, 'sessions.db'), purgeInterval: 0 });
} else {
  throw new Error(`unknown store ${kind} (memory or sqlite)`);
}
const sessions = createSessions({ secret: 'bench-3f9c1d7e5a2b8c4d6e0f1a2b3c4d5e6f7a8b9c0d', store });
const ctx = (cookie) => ({ cookie, secure: false, host: '127.0.0.1:3000', ip: '127.0.0.1', userAgent: 'autocannon' });

async function login() {
  const s = await sessions.load(ctx());
  s.session.user = 'ada';
  s.session.count = 0;
  const { setCookie } = await sessions.commit(s);
  return setCookie[0].split(';')[0];
}

const routes = {
  read: async (cookie) => {
    const s = await sessions.load(ctx(cookie));
    if (s.session.user !== 'ada') throw new Error('lost session');
    await sessions.commit(s);
  },
  write: async (cookie) => {
    const s = await sessions.load(ctx(cookie));
    s.session.count = (s.session.count ?? 0) + 1;
    await sessions.commit(s);
  },
  new: async () => {
    const s = await sessions.load(ctx());
    s.session.user = 'ada';
    await sessions.commit(s);
  },
};

for (const [name, fn] of Object.entries(routes)) {
  const cookie = await login();
  for (let i = 0; i < 20_000; i++) await fn(cookie); // warm-up
  // Best of 5 batches: on a shared machine the minimum is the least disturbed figure.
  let best = Number.POSITIVE_INFINITY;
  for (let rep = 0; rep < 5; rep++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < N / 5; i++) await fn(cookie);
    const cpu = process.cpuUsage(c0);
    best = Math.min(best, (cpu.user + cpu.system) / (N / 5));
  }
  console.log(`${kind.padEnd(7)}${name.padEnd(6)} ${best.toFixed(2).padStart(6)} µs CPU/op (best of 5)`);
}
await sessions.close();
if (tmp) rmSync(tmp, { recursive: true, force: true });
