// Memory figure, run in a fresh process with --expose-gc by bench/memory.ts:
// heap bytes per idle session ({ user: 'ada' }) held by a memory store, and RSS growth.
// argv[2]: 'sesh' | 'express-session'; argv[3]: number of sessions. SESH_DIST=/dir measures another
// build of sesh than ../dist (as bench/hotpath.mjs does).
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const dist = process.env.SESH_DIST ? pathToFileURL(`${process.env.SESH_DIST}/`).href : new URL('../dist/', import.meta.url).href;

const which = process.argv[2];
const n = Number(process.argv[3] ?? 100_000);
const gc = globalThis.gc;
if (typeof gc !== 'function') throw new Error('run with --expose-gc');

async function settle() {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage();
}

let keep;
if (which === 'sesh') {
  const { createSessions } = await import(`${dist}index.js`);
  const { MemoryStore } = await import(`${dist}stores/memory.js`);
  const store = new MemoryStore({ maxEntries: n + 1, sweepInterval: 0, quiet: true });
  const sessions = createSessions({ secret: 'bench-3f9c1d7e5a2b8c4d6e0f1a2b3c4d5e6f7a8b9c0d', store });
  // Warm up the code paths before the baseline so compiled code does not count as session memory.
  for (let i = 0; i < 1000; i++) {
    const s = await sessions.load({ secure: false, host: 'localhost' });
    s.session.user = 'ada';
    await sessions.commit(s);
  }
  store.clear();
  const before = await settle();
  for (let i = 0; i < n; i++) {
    const s = await sessions.load({ secure: false, host: 'localhost' });
    s.session.user = 'ada';
    await sessions.commit(s);
  }
  const after = await settle();
  if (store.size !== n) throw new Error(`expected ${n} sessions, store holds ${store.size}`);
  keep = [store, sessions];
  report(before, after);
} else if (which === 'express-session') {
  const { default: session } = await import('express-session');
  const store = new session.MemoryStore();
  const set = (sid, sess) => new Promise((res, rej) => store.set(sid, sess, (e) => (e ? rej(e) : res())));
  // What express-session hands its store for a new session with { user: 'ada' } (cookie maxAge 30 min).
  const make = () => ({
    cookie: {
      originalMaxAge: 1_800_000,
      expires: new Date(Date.now() + 1_800_000),
      secure: false,
      httpOnly: true,
      path: '/',
      sameSite: 'lax',
    },
    user: 'ada',
  });
  for (let i = 0; i < 1000; i++) await set(randomBytes(24).toString('base64url'), make());
  store.clear();
  const before = await settle();
  for (let i = 0; i < n; i++) await set(randomBytes(24).toString('base64url'), make());
  const after = await settle();
  keep = [store];
  report(before, after);
} else {
  throw new Error(`unknown store ${which}`);
}

function report(before, after) {
  process.stdout.write(
    `${JSON.stringify({ bytesPerSession: (after.heapUsed - before.heapUsed) / n, rssGrowthMb: (after.rss - before.rss) / 1048576, kept: keep.length })}\n`,
  );
}
