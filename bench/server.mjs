// One benchmark contender as its own server process (started by bench/run.ts with child_process.fork).
//
// Environment: BENCH_CONTENDER (a name from contenders.mjs), BENCH_REDIS_URL, BENCH_PG (JSON pg
// config), BENCH_TMP (a private temp dir). Reports over IPC:
//   -> { type: 'ready', port }        once listening on 127.0.0.1
//   -> { type: 'skip', reason }       when the contender's module is not available
//   <- { type: 'stats' }  -> { type: 'stats', cpu: {user, system}, requests, rss, heapUsed }
//   <- { type: 'close' }  -> exits after closing stores and connections
//
// Routes (identical for every contender; only the session layer differs):
//   GET /login  create a session holding { user: 'ada', count: 0 } (set-up, not measured)
//   GET /read   existing session: read a value
//   GET /write  existing session: change a value
//   GET /new    no cookie: create a session
import { createServer } from 'node:http';
import express from 'express';
import { contenders } from './contenders.mjs';

const name = process.env.BENCH_CONTENDER;
const factory = contenders[name];
if (!factory) {
  process.send?.({ type: 'skip', reason: `unknown contender ${name}` });
  process.exit(0);
}

let layer;
try {
  layer = await factory({
    redisUrl: process.env.BENCH_REDIS_URL,
    pg: process.env.BENCH_PG ? JSON.parse(process.env.BENCH_PG) : undefined,
    tmp: process.env.BENCH_TMP,
  });
} catch (err) {
  const missing = err?.code === 'ERR_PACKAGE_PATH_NOT_EXPORTED' || err?.code === 'ERR_MODULE_NOT_FOUND';
  process.send?.({ type: 'skip', reason: missing ? `module not available (${err.message.split('\n')[0]})` : String(err?.stack ?? err) });
  process.exit(0);
}

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
if (layer.install) await layer.install(app);
if (layer.middleware) app.use(layer.middleware);
const save = layer.save ?? (() => undefined);

app.get('/login', async (req, res, next) => {
  try {
    if (req.session) {
      req.session.user = 'ada';
      req.session.count = 0;
      await save(req);
    }
    res.send('ok');
  } catch (err) {
    next(err);
  }
});

app.get('/read', (req, res) => {
  res.send(req.session ? String(req.session.user ?? 'anonymous') : 'ada');
});

app.get('/write', async (req, res, next) => {
  try {
    let n = 1;
    if (req.session) {
      n = (req.session.count ?? 0) + 1;
      req.session.count = n;
      await save(req);
    }
    res.send(String(n));
  } catch (err) {
    next(err);
  }
});

app.get('/new', async (req, res, next) => {
  try {
    if (req.session) {
      req.session.user = 'ada';
      await save(req);
    }
    res.send('ok');
  } catch (err) {
    next(err);
  }
});

let requests = 0;
const server = createServer(app);
server.keepAliveTimeout = 60_000;
server.on('request', () => {
  requests++;
});
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: server.address().port, pid: process.pid });
});

process.on('message', async (msg) => {
  if (msg?.type === 'stats') {
    const mem = process.memoryUsage();
    process.send?.({ type: 'stats', cpu: process.cpuUsage(), requests, rss: mem.rss, heapUsed: mem.heapUsed });
  } else if (msg?.type === 'close') {
    server.closeAllConnections?.();
    server.close();
    try {
      await layer.close?.();
    } catch {
      // closing is best effort at the end of a run
    }
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
