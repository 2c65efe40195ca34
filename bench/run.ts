/**
 * `npm run bench`: HTTP benchmark of sesh against bare Express and the usual session libraries.
 *
 * Every contender is its own server process (bench/server.mjs) pinned to core 0; this process (the
 * load generator, autocannon) and the Redis/PostgreSQL servers it starts are pinned to core 1
 * (when `taskset` exists and the machine has two cores or more). After a warm-up, rounds run
 * interleaved (round → route → contender, contender order rotated per round) so noise hits every
 * contender alike; each contender's req/s is divided by bare Express's in the same round and route.
 *
 * Flags: --quick (1 round × 2 s, ~1 min), --rounds N, --duration S, --warmup S, --connections N,
 * --only a,b (substring match on contender names; bare Express is always included), --no-memory,
 * --cpu-prof (servers write .cpuprofile files to bench/results/profiles/), --floor (adds the floor of
 * each store, bench/floor.mjs: what any session layer with sesh's security model costs at least).
 * BENCH_QUICK=1 = --quick.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { contenders, FLOOR_PREFIX, needs } from './contenders.mjs';
import { type MemoryFigures, measureMemory } from './memory.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(HERE, 'results');
const ROUTES = ['read', 'write', 'new'] as const;
type Route = (typeof ROUTES)[number];
const BARE = 'express (bare)';

// ---------------------------------------------------------------- options
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const value = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  if (i >= 0) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
};
const quick = flag('quick') || process.env.BENCH_QUICK === '1';
const config = {
  mode: quick ? 'quick' : 'full',
  rounds: Number(value('rounds') ?? (quick ? 1 : 3)),
  duration: Number(value('duration') ?? (quick ? 2 : 10)),
  warmup: Number(value('warmup') ?? (quick ? 1 : 3)),
  connections: Number(value('connections') ?? 50),
  memorySessions: Number(value('memory-sessions') ?? 100_000),
};
const only = value('only')
  ?.split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const cpuProf = flag('cpu-prof');
const withFloor = flag('floor');

// ---------------------------------------------------------------- pinning
function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const pinning = hasTaskset() && cpus().length >= 2;
function pin(pid: number, core: number): void {
  if (!pinning) return;
  // -a: every thread (libuv pool, V8 helpers), so the whole process stays on that core.
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}
// Pin ourselves first: Redis and PostgreSQL, started from here, inherit core 1.
pin(process.pid, 1);

// ---------------------------------------------------------------- servers
interface Stats {
  cpu: { user: number; system: number };
  requests: number;
  rss: number;
  heapUsed: number;
}
interface Contender {
  name: string;
  child?: ChildProcess;
  port?: number;
  skipped?: string;
  stats(): Promise<Stats>;
}

function startContender(name: string, env: Record<string, string>, tmp: string): Promise<Contender> {
  const profDir = join(RESULTS, 'profiles');
  if (cpuProf) mkdirSync(profDir, { recursive: true });
  const dir = mkdtempSync(join(tmp, 'c-'));
  const child = fork(join(HERE, 'server.mjs'), [], {
    env: { ...process.env, ...env, BENCH_CONTENDER: name, BENCH_TMP: dir, NODE_ENV: 'production' },
    execArgv: cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', `${name.replace(/\W+/g, '-')}.cpuprofile`] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  if (child.pid) pin(child.pid, 0);
  let waiting: ((s: Stats) => void) | null = null;
  const contender: Contender = {
    name,
    child,
    stats: () =>
      new Promise<Stats>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${name}: no stats reply`)), 10_000);
        waiting = (s) => {
          clearTimeout(t);
          resolve(s);
        };
        child.send({ type: 'stats' });
      }),
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: server did not start within 60 s`)), 60_000);
    child.on('message', (msg: { type: string; port?: number; reason?: string } & Stats) => {
      if (msg.type === 'ready') {
        clearTimeout(timer);
        contender.port = msg.port;
        resolve(contender);
      } else if (msg.type === 'skip') {
        clearTimeout(timer);
        contender.skipped = msg.reason ?? 'skipped';
        resolve(contender);
      } else if (msg.type === 'stats') {
        waiting?.(msg);
        waiting = null;
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!contender.port && !contender.skipped) {
        contender.skipped = `server exited with code ${code}`;
        resolve(contender);
      }
    });
  });
}

async function stopContender(c: Contender): Promise<void> {
  const child = c.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.send({ type: 'close' });
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

// ---------------------------------------------------------------- HTTP helpers
async function get(port: number, path: string, cookie?: string): Promise<{ status: number; body: string; setCookie: string[] }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: cookie ? { cookie } : {} });
  return { status: res.status, body: await res.text(), setCookie: res.headers.getSetCookie() };
}

/** Log in once and return the Cookie header that carries the session (every cookie set). */
async function login(c: Contender): Promise<string> {
  const r = await get(c.port as number, '/login');
  if (r.status !== 200) throw new Error(`${c.name}: /login answered ${r.status}: ${r.body}`);
  return r.setCookie.map((s) => s.split(';')[0]).join('; ');
}

/** One request of the route, checked: a contender that silently lost its session would be fast and wrong. */
async function check(c: Contender, route: Route, cookie: string | undefined): Promise<void> {
  const r = await get(c.port as number, `/${route}`, cookie);
  const ok =
    r.status === 200 &&
    (route !== 'read' || r.body === 'ada') &&
    (route !== 'write' || Number(r.body) >= 1) &&
    (route !== 'new' || c.name === BARE || r.setCookie.length > 0);
  if (!ok) throw new Error(`${c.name}: GET /${route} failed its check (status ${r.status}, body ${JSON.stringify(r.body)})`);
}

interface Sample {
  contender: string;
  route: Route;
  round: number;
  rps: number;
  p50: number;
  p99: number;
  cpuPerReq: number;
  errors: number;
}

async function measure(c: Contender, route: Route, seconds: number, round: number): Promise<Sample> {
  const cookie = route === 'new' ? undefined : await login(c);
  await check(c, route, cookie);
  const before = await c.stats();
  const result = await autocannon({
    url: `http://127.0.0.1:${c.port}/${route}`,
    connections: config.connections,
    duration: seconds,
    headers: cookie ? { cookie } : {},
  });
  const after = await c.stats();
  const served = after.requests - before.requests;
  const cpu = after.cpu.user - before.cpu.user + (after.cpu.system - before.cpu.system);
  const ok = result['2xx'];
  return {
    contender: c.name,
    route,
    round,
    rps: ok / (result.duration || seconds),
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuPerReq: served > 0 ? cpu / served : Number.NaN,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}

// ---------------------------------------------------------------- report
const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : '–');

interface Row {
  contender: string;
  route: Route;
  rps: number;
  ratio: number;
  p50: number;
  p99: number;
  cpuPerReq: number;
  extraCpuPerReq: number;
  errors: number;
}

function summarise(samples: Sample[], names: string[]): Row[] {
  const rows: Row[] = [];
  for (const route of ROUTES) {
    const bareCpu = median(samples.filter((s) => s.contender === BARE && s.route === route).map((s) => s.cpuPerReq));
    for (const name of names) {
      const mine = samples.filter((s) => s.contender === name && s.route === route);
      if (mine.length === 0) continue;
      const ratios = mine.map((s) => {
        const bare = samples.find((b) => b.contender === BARE && b.route === route && b.round === s.round);
        return bare ? s.rps / bare.rps : Number.NaN;
      });
      const cpu = median(mine.map((s) => s.cpuPerReq));
      rows.push({
        contender: name,
        route,
        rps: median(mine.map((s) => s.rps)),
        ratio: median(ratios),
        p50: median(mine.map((s) => s.p50)),
        p99: median(mine.map((s) => s.p99)),
        cpuPerReq: cpu,
        extraCpuPerReq: cpu - bareCpu,
        errors: mine.reduce((a, s) => a + s.errors, 0),
      });
    }
  }
  return rows;
}

function markdown(rows: Row[], skipped: Record<string, string>, memory: MemoryFigures | null, meta: Record<string, unknown>): string {
  const lines: string[] = [];
  lines.push(`# Benchmark results (${meta.date})`, '');
  lines.push(
    `Mode ${meta.mode}: ${config.rounds} round(s) × ${config.duration} s per contender and route, ${config.warmup} s warm-up, ` +
      `${config.connections} connections, autocannon. ${meta.machine}. Pinning: ${pinning ? 'server on core 0; load generator, Redis and PostgreSQL on core 1' : 'none (taskset missing or one core)'}.`,
    '',
    'req/s, latency and CPU are medians over rounds; "× bare" is the median of per-round ratios to bare Express on the same route; CPU is server process CPU (user+system) per request, "+CPU" what the session layer adds to bare Express.',
    '',
  );
  for (const route of ROUTES) {
    lines.push(`## GET /${route}`, '');
    lines.push('| contender | req/s | × bare | p50 ms | p99 ms | CPU µs/req | +CPU µs/req | errors |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows.filter((x) => x.route === route)) {
      lines.push(
        `| ${r.contender} | ${fmt(r.rps)} | ${fmt(r.ratio, 2)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.cpuPerReq)} | ${r.contender === BARE ? '–' : fmt(r.extraCpuPerReq)} | ${r.errors} |`,
      );
    }
    lines.push('');
  }
  if (Object.keys(skipped).length) {
    lines.push('## Skipped', '');
    for (const [name, why] of Object.entries(skipped)) lines.push(`- ${name}: ${why}`);
    lines.push('');
  }
  if (memory) {
    lines.push(`## Memory (${memory.sessions.toLocaleString('en')} idle sessions holding { user: 'ada' })`, '');
    lines.push('| store | heap bytes per session | RSS growth MB |');
    lines.push('|---|---:|---:|');
    for (const m of memory.rows) lines.push(`| ${m.store} | ${fmt(m.bytesPerSession)} | ${fmt(m.rssGrowthMb, 1)} |`);
    lines.push('');
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  const started = Date.now();
  const names = Object.keys(contenders).filter(
    (n) => n === BARE || ((withFloor || !n.startsWith(FLOOR_PREFIX)) && (!only || only.some((o) => n.includes(o)))),
  );
  const tmp = mkdtempSync(join(tmpdir(), 'sesh-bench-'));
  const cleanups: Array<() => Promise<void>> = [];
  const env: Record<string, string> = {};
  const skipped: Record<string, string> = {};
  const live: Contender[] = [];
  const wanted = (list: string[]) => list.some((n) => names.includes(n));

  const shutdown = async () => {
    await Promise.allSettled(live.map(stopContender));
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    void shutdown().finally(() => process.exit(130));
  });

  try {
    if (wanted(needs.redis)) {
      try {
        const { startRedis } = await import('../test/support/redis.js');
        const redis = await startRedis();
        cleanups.push(() => redis.dispose());
        env.BENCH_REDIS_URL = redis.url;
      } catch (err) {
        for (const n of needs.redis) skipped[n] = `no Redis server: ${(err as Error).message.split('\n')[0]}`;
      }
    }
    if (wanted(needs.postgres)) {
      try {
        const { startPostgres } = await import('../test/support/postgres.js');
        const pg = await startPostgres();
        cleanups.push(() => pg.destroy());
        env.BENCH_PG = JSON.stringify(pg.config);
      } catch (err) {
        for (const n of needs.postgres) skipped[n] = `no PostgreSQL server: ${(err as Error).message.split('\n')[0]}`;
      }
    }

    for (const name of names) {
      if (skipped[name]) continue;
      const c = await startContender(name, env, tmp);
      if (c.skipped) {
        skipped[name] = c.skipped;
        console.log(`skip  ${name}: ${c.skipped.split('\n')[0]}`);
      } else {
        live.push(c);
      }
    }
    if (!live.some((c) => c.name === BARE)) throw new Error('bare Express did not start; nothing to compare against.');

    console.log(
      `bench (${config.mode}): ${live.length} contenders × ${ROUTES.length} routes × ${config.rounds} round(s) × ${config.duration} s, ${config.connections} connections, pinning ${pinning ? 'on' : 'off'}`,
    );
    // Warm-up: every contender and route once (JIT, connection pools, table creation), not recorded.
    for (const c of live) for (const route of ROUTES) await measure(c, route, config.warmup, 0);

    const samples: Sample[] = [];
    for (let round = 1; round <= config.rounds; round++) {
      for (const route of ROUTES) {
        const order = live.map((_, i) => live[(i + round - 1) % live.length] as Contender);
        for (const c of order) {
          const s = await measure(c, route, config.duration, round);
          samples.push(s);
          console.log(
            `round ${round} /${route.padEnd(5)} ${c.name.padEnd(34)} ${fmt(s.rps).padStart(6)} req/s  p99 ${fmt(s.p99, 1).padStart(5)} ms  ${fmt(s.cpuPerReq).padStart(4)} µs/req${s.errors ? `  errors ${s.errors}` : ''}`,
          );
        }
      }
    }

    const memory = flag('no-memory') ? null : await measureMemory(config.memorySessions);
    const rows = summarise(
      samples,
      live.map((c) => c.name),
    );
    const date = new Date().toISOString();
    const meta = {
      date,
      mode: config.mode,
      config,
      machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}, ${process.platform}`,
      pinning,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    const md = markdown(rows, skipped, memory, meta);
    console.log(`\n${md}`);
    mkdirSync(RESULTS, { recursive: true });
    const json = `${JSON.stringify({ meta, rows, skipped, memory, samples }, null, 2)}\n`;
    writeFileSync(join(RESULTS, 'latest.md'), md);
    writeFileSync(join(RESULTS, 'latest.json'), json);
    if (config.mode === 'full' && !only) {
      // One file per day; a later run the same day gets the time too, never overwriting a kept run.
      let stamp = `${date.slice(0, 10)}-full`;
      if (existsSync(join(RESULTS, `${stamp}.md`))) stamp = `${date.slice(0, 10)}-${date.slice(11, 16).replace(':', '')}-full`;
      writeFileSync(join(RESULTS, `${stamp}.md`), md);
      writeFileSync(join(RESULTS, `${stamp}.json`), json);
    }
    console.log(`written to ${join('bench', 'results', 'latest.md')} and latest.json (${meta.seconds} s)`);
  } finally {
    await shutdown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
