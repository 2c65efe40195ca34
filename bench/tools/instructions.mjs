// Instructions per request, counted by valgrind's callgrind: repeatable where CPU time on a shared
// VM is not (the same build gives the same count within ~1-2 % whatever else the machine does).
// Each variant of isolate.mjs runs as its own server under callgrind with V8's --predictable
// (single-threaded, deterministic GC and compilation: the garbage collector's work is counted on
// the main thread); a warm-up runs uninstrumented, then instrumentation is switched on for the
// measured requests only (callgrind_control).
//
//   node bench/tools/instructions.mjs [variants] [route] [requests]
//   e.g. node bench/tools/instructions.mjs bare,layer,prop,sesh read 3000
//
// Needs valgrind (Debian package `valgrind`). Slow: two to three minutes per variant. SESH_DIST=/dir
// measures another build of sesh (default: dist/).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [variantsArg = 'bare,layer,prop,sesh', route = 'read', countArg = '3000'] = process.argv.slice(2);
const count = Number(countArg);
// V8 is still optimizing sesh's code after a few thousand requests (about 300 functions compiled
// between requests 1 and 4000 of /new, a handful after 12,000, none after 16,000), and with
// --predictable it compiles on the main thread, where the count sees it: warm up past that.
// WARMUP=n to change.
const warmup = Number(process.env.WARMUP ?? 16000);
// One connection by default: requests then never share an event-loop turn, which keeps the count
// repeatable (with several, how requests batch up varies from run to run). CONN=n for more.
const CONNECTIONS = Number(process.env.CONN ?? 1);
const isolate = fileURLToPath(new URL('./isolate.mjs', import.meta.url));
try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('valgrind is not installed (Debian: apt-get install valgrind).');
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'sesh-callgrind-'));

async function measure(variant) {
  const out = join(dir, `${variant}.out`);
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      '--smc-check=all-non-file',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--predictable',
      isolate,
      '--serve',
      variant,
    ],
    { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: { ...process.env, NODE_ENV: 'production' } },
  );
  const port = await new Promise((resolve) => child.on('message', (m) => m.type === 'ready' && resolve(m.port)));
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const get = (path, cookie) =>
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path, agent, headers: cookie ? { cookie } : {} }, (res) => {
          res.resume();
          res.on('end', () => resolve(res));
        })
        .on('error', reject);
    });
  let cookie;
  if (route !== 'new') {
    const login = await get('/login');
    cookie = (login.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ') || undefined;
  }
  const burst = async (n) => {
    let i = 0;
    const worker = async () => {
      while (i++ < n) {
        const res = await get(`/${route}`, cookie);
        if (res.statusCode !== 200) throw new Error(`${variant}: HTTP ${res.statusCode}`);
      }
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  };
  await burst(warmup);
  execFileSync('callgrind_control', ['-i', 'on', String(child.pid)], { stdio: 'ignore' });
  await burst(count);
  execFileSync('callgrind_control', ['-i', 'off', String(child.pid)], { stdio: 'ignore' });
  agent.destroy();
  child.send({ type: 'close' });
  await new Promise((resolve) => child.on('exit', resolve));
  const text = execFileSync('callgrind_annotate', ['--threshold=100', out], { maxBuffer: 1 << 30 }).toString();
  const total = Number(/([\d,]+)\s+(?:\(100\.0%\)\s+)?PROGRAM TOTALS/.exec(text)?.[1].replace(/,/g, ''));
  return total / count;
}

const results = [];
for (const v of variantsArg.split(',')) {
  const ir = await measure(v);
  results.push([v, ir]);
  console.log(`${v.padEnd(8)} ${Math.round(ir).toLocaleString('en').padStart(9)} instructions per GET /${route}`);
}
const bare = results.find(([v]) => v === 'bare')?.[1];
if (bare) {
  console.log("\nAs a ratio (bare / variant: the share of bare Express's speed, were time proportional to instructions):");
  for (const [v, ir] of results) console.log(`${v.padEnd(8)} ${(bare / ir).toFixed(3)}`);
}
rmSync(dir, { recursive: true, force: true });
