// Engine-level micro-benchmark (no HTTP): CPU µs per load + commit for the three benchmark routes on
// the memory or SQLite store, from a build (default ../dist).
//
//   node bench/hotpath.mjs [iterations] [memory|sqlite]
//   SESH_DIST=/dir/a,/dir/b node bench/hotpath.mjs ...   compare builds (e.g. made with
//     `npx tsup --no-dts --out-dir node_modules/.sesh-a`; inside the repo so drivers resolve)
//   node --cpu-prof bench/hotpath.mjs ...                  profile
//
// Builds are measured in the same process, batch after batch interleaved, so the noise of a shared
// machine hits each alike; the figure is the minimum over batches (the least disturbed one), with
// the median next to it. The HTTP numbers of `npm run bench` are the ones that count.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const N = Number(process.argv[2] ?? 200_000);
const kind = process.argv[3] ?? 'memory';
const BATCHES = 10;
const dists = (process.env.SESH_DIST ?? new URL('../dist', import.meta.url).pathname).split(',');
const tmp = mkdtempSync(join(tmpdir(), 'sesh-hotpath-'));

async function setup(dir, i) {
  const base = pathToFileURL(`${resolve(dir)}/`).href;
  const { createSessions } = await import(`${base}index.js`);
  let store;
  if (kind === 'memory') {
    const { MemoryStore } = await import(`${base}stores/memory.js`);
    store = new MemoryStore({ maxEntries: 10_000, sweepInterval: 0, quiet: true });
  } else if (kind === 'sqlite') {
    const { SqliteStore } = await import(`${base}stores/sqlite.js`);
    store = new SqliteStore({ path: join(tmp, `sessions-${i}.db`), purgeInterval: 0 });
  } else {
    throw new Error(`unknown store ${kind} (memory or sqlite)`);
  }
  const sessions = createSessions({ secret: 'bench-3f9c1d7e5a2b8c4d6e0f1a2b3c4d5e6f7a8b9c0d', store });
  const ctx = (cookie) => ({ cookie, secure: false, host: '127.0.0.1:3000', ip: '127.0.0.1', userAgent: 'autocannon' });
  const login = async () => {
    const s = await sessions.load(ctx());
    s.session.user = 'ada';
    s.session.count = 0;
    const { setCookie } = await sessions.commit(s);
    return setCookie[0].split(';')[0];
  };
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
  return { name: dir, sessions, login, routes };
}

const builds = [];
for (const [i, dir] of dists.entries()) builds.push(await setup(dir, i));

for (const route of ['read', 'write', 'new']) {
  const runs = [];
  for (const b of builds) {
    const cookie = await b.login();
    const fn = b.routes[route];
    for (let i = 0; i < 20_000; i++) await fn(cookie); // warm-up
    runs.push({ b, fn, cookie, samples: [] });
  }
  for (let rep = 0; rep < BATCHES; rep++) {
    for (const r of runs) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < N / BATCHES; i++) await r.fn(r.cookie);
      const cpu = process.cpuUsage(c0);
      r.samples.push((cpu.user + cpu.system) / (N / BATCHES));
    }
  }
  for (const r of runs) {
    const s = [...r.samples].sort((a, b) => a - b);
    const label = builds.length > 1 ? ` ${r.b.name}` : '';
    console.log(
      `${kind.padEnd(7)}${route.padEnd(6)} ${s[0].toFixed(2).padStart(6)} µs CPU/op (min; median ${s[s.length >> 1].toFixed(2)})${label}`,
    );
  }
}
for (const b of builds) await b.sessions.close();
rmSync(tmp, { recursive: true, force: true });
