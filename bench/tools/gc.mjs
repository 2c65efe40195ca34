// What garbage collection costs per request under load: each variant of isolate.mjs runs as its
// own server with V8's --trace-gc-nvp, is driven by autocannon (warm-up, then the measured
// seconds), and the young-generation collections (scavenges) of the measured part are summed.
//
//   node bench/tools/gc.mjs [variants] [route] [seconds]
//   e.g. node bench/tools/gc.mjs bare,sesh read 5
//
// Prints, per variant: req/s, scavenges per 1000 requests, bytes promoted to the old generation
// per scavenge, scavenge pause per request (µs) and the number of full collections. Servers are
// pinned to core 0 and the load generator to core 1 when taskset exists. Environment: CONN
// (connections, default 50), SESH_DIST (another build of sesh).
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const [variantsArg = 'bare,sesh', route = 'read', secondsArg = '5'] = process.argv.slice(2);
const seconds = Number(secondsArg);
const connections = Number(process.env.CONN ?? 50);
const isolate = fileURLToPath(new URL('./isolate.mjs', import.meta.url));

function pin(pid, core) {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
  } catch {
    // no taskset, or one core: run unpinned
  }
}

const field = (line, name) => Number(new RegExp(`\\b${name}=([\\d.]+)`).exec(line)?.[1] ?? 0);

async function measure(variant) {
  const child = spawn(process.execPath, ['--trace-gc-nvp', isolate, '--serve', variant], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  pin(child.pid, 0);
  let log = '';
  let measuring = false;
  child.stdout.on('data', (d) => {
    if (measuring) log += d;
  });
  const port = await new Promise((resolve) => child.on('message', (m) => m.type === 'ready' && resolve(m.port)));
  let cookie;
  if (route !== 'new') {
    const r = await fetch(`http://127.0.0.1:${port}/login`);
    cookie = r.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
  }
  const run = (duration) =>
    autocannon({ url: `http://127.0.0.1:${port}/${route}`, connections, duration, headers: cookie ? { cookie } : {} });
  await run(3);
  measuring = true;
  const res = await run(seconds);
  measuring = false;
  child.send({ type: 'close' });
  await new Promise((resolve) => child.on('exit', resolve));
  const lines = log.split('\n');
  const scavenges = lines.filter((l) => l.includes(' gc=s '));
  const full = lines.filter((l) => / gc=m[cs] /.test(l)).length;
  const requests = res.requests.total;
  const promoted = scavenges.reduce((sum, l) => sum + field(l, 'promoted'), 0);
  const pause = scavenges.reduce((sum, l) => sum + field(l, 'pause'), 0);
  return {
    variant,
    rps: Math.round(res.requests.average),
    perK: (1000 * scavenges.length) / requests,
    promotedKB: scavenges.length ? promoted / scavenges.length / 1024 : 0,
    pauseUs: (pause * 1000) / requests,
    full,
  };
}

pin(process.pid, 1);
console.log(`GET /${route}, ${connections} connections, ${seconds} s after 3 s of warm-up`);
console.log('variant    req/s  scavenges/1k req  promoted KB/scavenge  scavenge µs/req  full GCs');
for (const v of variantsArg.split(',')) {
  const r = await measure(v);
  console.log(
    `${r.variant.padEnd(9)} ${String(r.rps).padStart(6)} ${r.perK.toFixed(2).padStart(17)} ${r.promotedKB.toFixed(0).padStart(21)} ${r.pauseUs.toFixed(1).padStart(16)} ${String(r.full).padStart(9)}`,
  );
}
