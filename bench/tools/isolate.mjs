// Where does the session layer's HTTP cost go? Runs minimal Express servers that each add one
// ingredient of sesh, interleaved in rounds, and prints the server CPU µs per request of each
// (process.cpuUsage of the server process over the requests it served).
//
//   node bench/tools/isolate.mjs [variants] [route] [rounds] [seconds]
//   e.g. node bench/tools/isolate.mjs bare,await,prop,engine,sesh write 5 2
//
// Variants: bare (no session layer); layer (an empty middleware: one more router layer); await
// (an async middleware that awaits once before next()); prop (sets req.session = {}: one property
// added to a request); engine (the engine called directly from a middleware: load, change,
// commit, no response deferral); sesh (the sesh/express middleware); stateless (the
// sesh/stateless middleware, no revocation store). All but stateless use the memory store; the
// routes are those of bench/server.mjs. sesh is loaded from dist/ (SESH_DIST=/dir for another
// build). Servers are pinned to core 0 and the load generator to core 1 when taskset exists.
// Environment: CONN (connections, default 50). Prints the median CPU per request, and its user
// and system parts.
import { execFileSync, fork } from 'node:child_process';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SECRET = 'bench-3f9c1d7e5a2b8c4d6e0f1a2b3c4d5e6f7a8b9c0d';
const dist = pathToFileURL(`${resolve(process.env.SESH_DIST ?? fileURLToPath(new URL('../../dist', import.meta.url)))}/`).href;

function pin(pid, core) {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
  } catch {
    // no taskset, or one core: run unpinned
  }
}

if (process.argv[2] === '--serve') {
  // ---------------------------------------------------------------- server side
  const variant = process.argv[3];
  const { default: express } = await import('express');
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (variant === 'await') {
    app.use(async (_req, _res, next) => {
      await null;
      next();
    });
  } else if (variant === 'layer') {
    app.use((_req, _res, next) => {
      next();
    });
  } else if (variant === 'prop') {
    app.use((req, _res, next) => {
      req.session = {};
      next();
    });
  } else if (variant === 'engine') {
    const { createSessions } = await import(`${dist}index.js`);
    const { MemoryStore } = await import(`${dist}stores/memory.js`);
    const sessions = createSessions({ secret: SECRET, store: new MemoryStore({ quiet: true }) });
    app.use(async (req, res, next) => {
      const s = await sessions.load({ cookie: req.headers.cookie, secure: req.secure, host: req.headers.host, ip: req.ip });
      if (req.path === '/write') s.session.count = (s.session.count ?? 0) + 1;
      else if (req.path === '/login' || req.path === '/new') s.session.user = 'ada';
      else if (s.session.user !== 'ada') throw new Error('lost session');
      const { setCookie } = await sessions.commit(s);
      if (setCookie.length) res.setHeader('set-cookie', setCookie);
      next();
    });
  } else if (variant === 'sesh') {
    const { session } = await import(`${dist}express.js`);
    const { MemoryStore } = await import(`${dist}stores/memory.js`);
    app.use(session({ secret: SECRET, store: new MemoryStore({ quiet: true }) }));
  } else if (variant === 'stateless') {
    const { session } = await import(`${dist}stateless.js`);
    app.use(session({ secret: SECRET }));
  } else if (variant !== 'bare') {
    throw new Error(`unknown variant ${variant}`);
  }
  app.get('/login', (req, res) => {
    if (req.session) {
      req.session.user = 'ada';
      req.session.count = 0;
    }
    res.send('ok');
  });
  app.get('/read', (req, res) => {
    res.send(req.session ? String(req.session.user ?? 'anonymous') : 'ada');
  });
  app.get('/write', (req, res) => {
    let n = 1;
    if (req.session) {
      n = (req.session.count ?? 0) + 1;
      req.session.count = n;
    }
    res.send(String(n));
  });
  app.get('/new', (req, res) => {
    if (req.session) req.session.user = 'ada';
    res.send('ok');
  });
  let requests = 0;
  const server = createServer(app);
  server.keepAliveTimeout = 60_000;
  server.on('request', () => {
    requests++;
  });
  server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port }));
  process.on('message', (m) => {
    if (m.type === 'stats') process.send({ type: 'stats', cpu: process.cpuUsage(), requests });
    else process.exit(0);
  });
} else {
  // ---------------------------------------------------------------- driver
  const { default: autocannon } = await import('autocannon');
  const [variantsArg = 'bare,await,prop,engine,sesh', route = 'read', roundsArg = '5', secondsArg = '2'] = process.argv.slice(2);
  const variants = variantsArg.split(',');
  const rounds = Number(roundsArg);
  const seconds = Number(secondsArg);
  const connections = Number(process.env.CONN ?? 50);
  pin(process.pid, 1);
  const servers = [];
  for (const v of variants) {
    const child = fork(fileURLToPath(import.meta.url), ['--serve', v], { env: { ...process.env, NODE_ENV: 'production' } });
    pin(child.pid, 0);
    const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
    const stats = () =>
      new Promise((r) => {
        child.once('message', r);
        child.send({ type: 'stats' });
      });
    servers.push({ v, child, port, stats, samples: [], user: [], system: [] });
  }
  for (let round = 0; round <= rounds; round++) {
    for (const s of servers) {
      let cookie;
      if (route !== 'new') {
        const r = await fetch(`http://127.0.0.1:${s.port}/login`);
        cookie = r.headers
          .getSetCookie()
          .map((c) => c.split(';')[0])
          .join('; ');
      }
      const before = await s.stats();
      const res = await autocannon({
        url: `http://127.0.0.1:${s.port}/${route}`,
        connections,
        duration: round === 0 ? 1 : seconds,
        headers: cookie ? { cookie } : {},
      });
      const after = await s.stats();
      if (res.non2xx) throw new Error(`${s.v}: ${res.non2xx} non-2xx answers`);
      const n = after.requests - before.requests;
      const user = after.cpu.user - before.cpu.user;
      const system = after.cpu.system - before.cpu.system;
      if (round > 0) {
        // round 0 warms up
        s.samples.push((user + system) / n);
        s.user.push(user / n);
        s.system.push(system / n);
      }
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(`GET /${route}, ${connections} connections, ${rounds} rounds × ${seconds} s; server CPU µs per request`);
  for (const s of servers) {
    console.log(
      `${s.v.padEnd(8)} median ${median(s.samples).toFixed(1).padStart(6)}   min ${Math.min(...s.samples)
        .toFixed(1)
        .padStart(6)}   user ${median(s.user).toFixed(1).padStart(6)}   system ${median(s.system).toFixed(1).padStart(6)}`,
    );
    s.child.send({ type: 'close' });
  }
}
