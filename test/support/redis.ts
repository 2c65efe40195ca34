/**
 * Throwaway Redis servers for the tests: standalone `redis-server` processes and a 3-master Cluster,
 * each on 127.0.0.1 with a random free port and its own temp dir, stopped and removed afterwards.
 *
 * The binaries come from Debian's `redis-server` / `redis-tools` packages. When they are missing and
 * the process runs as root, they are installed once (apt-get, non-interactive), guarded by a lock
 * file so several vitest workers can ask at the same time; otherwise a clear error says what to
 * install. The system service is never used: every test runs its own process.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, realpathSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const HOST = '127.0.0.1';
const LOCK = join(tmpdir(), 'sesh-redis-install.lock');

function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin', '/usr/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function run(cmd: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, env: env ?? process.env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Take the install lock (O_EXCL file); a lock older than 10 minutes is considered stale. */
async function withInstallLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      const fd = openSync(LOCK, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 10 * 60_000) unlinkSync(LOCK);
      } catch {
        // the holder removed it meanwhile
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for the Redis install lock ${LOCK}.`);
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(LOCK);
    } catch {
      // already gone
    }
  }
}

let binaries: Promise<{ server: string; cli: string }> | undefined;

/**
 * Paths of `redis-server` and `redis-cli`, installing Debian's packages when they are missing and
 * the process is root. Safe to call from several workers at once.
 */
export function redisBinaries(): Promise<{ server: string; cli: string }> {
  binaries ??= (async () => {
    const found = () => {
      const server = findBinary('redis-server');
      const cli = findBinary('redis-cli');
      return server && cli ? { server, cli } : undefined;
    };
    const have = found();
    if (have) return have;
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
      throw new Error(
        'The Redis tests need `redis-server` and `redis-cli` on PATH. Install them (Debian/Ubuntu: `sudo apt-get install -y redis-server redis-tools`; macOS: `brew install redis`) and run the tests again.',
      );
    }
    return withInstallLock(async () => {
      const again = found();
      if (again) return again;
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      await run('apt-get', ['update'], 10 * 60_000, env);
      await run(
        'apt-get',
        ['install', '-y', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confold', 'redis-server', 'redis-tools'],
        10 * 60_000,
        env,
      );
      const installed = found();
      if (!installed) throw new Error('apt-get installed redis-server but the binaries are still not on PATH.');
      return installed;
    });
  })();
  binaries.catch(() => {
    binaries = undefined;
  });
  return binaries;
}

/** A free TCP port on loopback (and, with `bus`, port + 10000 free too, for Cluster). */
export async function freePort(bus = false): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = bus ? 20_000 + Math.floor(Math.random() * 30_000) : await ephemeral();
    if (!(await portFree(port))) continue;
    if (bus && !(await portFree(port + 10_000))) continue;
    return port;
  }
  throw new Error('Could not find a free loopback port.');
}

function ephemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

/** Send one inline command over raw TCP and return the raw reply (no client library involved). */
export function rawCommand(port: number, command: string, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: HOST, port });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no reply to ${command} on port ${port}`));
    }, timeoutMs);
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      // A simple-string/error reply ends with CRLF; a bulk reply carries its length.
      const m = /^\$(\d+)\r\n/.exec(buf);
      const done = m ? buf.length >= m[0].length + Number(m[1]) + 2 : buf.endsWith('\r\n');
      if (done) {
        clearTimeout(timer);
        sock.end();
        resolve(buf);
      }
    });
    sock.write(`${command}\r\n`);
  });
}

/** An error that ends {@link waitFor} at once instead of being retried. */
class Fatal extends Error {}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof Fatal) throw err;
      last = err;
    }
    await sleep(50);
  }
  throw new Error(`Timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Every child started here, killed on process exit if a test forgot (or crashed before) `stop()`. */
const children = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
}

/** Options of {@link startRedis}. */
export interface RedisServerOptions {
  /** Keep data across restarts: `appendonly yes` + `appendfsync always`. Default false. */
  persist?: boolean;
  /** Extra `redis-server` arguments (`['--cluster-enabled', 'yes']`...). */
  args?: string[];
}

/** One running (or stopped) `redis-server`. */
export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  /** `redis://127.0.0.1:port` */
  readonly url: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** Stop the process (SIGTERM, then SIGKILL after 5 s); the dir stays, so `start()` can resume. */
  stop(): Promise<void>;
  /** Kill the process abruptly (SIGKILL). */
  kill(): Promise<void>;
  /** Freeze the process (SIGSTOP): connections stay open but nothing is answered. */
  pause(): void;
  /** Undo {@link pause} (SIGCONT). */
  resume(): void;
  /** Start again on the same port and dir (after `stop`/`kill`). */
  start(): Promise<void>;
  /** Stop and remove the temp dir. Idempotent. */
  dispose(): Promise<void>;
}

/**
 * Start a throwaway `redis-server` on 127.0.0.1 with a random free port and a fresh temp dir, and wait
 * until it answers PING. Call `dispose()` in `afterAll` (it is also killed when the process exits).
 */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const { server: bin } = await redisBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'sesh-redis-'));
  const realDir = realpathSync(dir);
  const persistence = options.persist
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
    : ['--appendonly', 'no', '--save', ''];
  let child: ChildProcess | undefined;
  let port = 0;
  let log = '';

  const launch = async (): Promise<void> => {
    log = '';
    const args = [
      '--port',
      String(port),
      '--bind',
      HOST,
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--protected-mode',
      'no',
      '--logfile',
      '',
      '--loglevel',
      'warning',
      ...persistence,
      ...(options.args ?? []),
    ];
    const c = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(c);
    c.stdout?.on('data', (d) => {
      log += d.toString();
    });
    c.stderr?.on('data', (d) => {
      log += d.toString();
    });
    let exited = false;
    c.once('exit', () => {
      exited = true;
    });
    child = c;
    await waitFor(`redis-server on port ${port}`, 10_000, async () => {
      if (exited) throw new Fatal(`redis-server exited: ${log.trim()}`);
      if (!(await rawCommand(port, 'PING', 500)).startsWith('+PONG')) return false;
      // Make sure it is our server answering, not another test's that grabbed the port meanwhile.
      if (!(await rawCommand(port, 'CONFIG GET dir', 500)).includes(realDir)) throw new Fatal(`port ${port} is in use by another server`);
      return true;
    });
  };

  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGCONT'); // a paused server would never act on SIGTERM
    c.kill(signal);
    const timer = setTimeout(() => c.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  // A port picked free may be taken by someone else before redis binds it: retry with another.
  for (let attempt = 0; ; attempt++) {
    port = await freePort(options.args?.includes('--cluster-enabled') ?? false);
    try {
      await launch();
      break;
    } catch (err) {
      await stopWith('SIGKILL');
      if (attempt >= 4 || !/in use|bind/i.test(String(err))) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  return {
    host: HOST,
    get port() {
      return port;
    },
    dir,
    get url() {
      return `redis://${HOST}:${port}`;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    stop: () => stopWith('SIGTERM'),
    pause: () => {
      child?.kill('SIGSTOP');
    },
    resume: () => {
      child?.kill('SIGCONT');
    },
    kill: () => stopWith('SIGKILL'),
    async start() {
      if (child) return;
      await launch();
    },
    async dispose() {
      await stopWith('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A running 3-master Redis Cluster (no replicas) on loopback. */
export interface RedisCluster {
  readonly nodes: readonly RedisServer[];
  /** `{ host, port }` of every master, for `new Cluster(...)` / `createCluster({ rootNodes })`. */
  readonly startupNodes: { host: string; port: number }[];
  /** Stop every node and remove the dirs. Idempotent. */
  dispose(): Promise<void>;
}

/**
 * Start 3 cluster-enabled `redis-server`s and join them with `redis-cli --cluster create` (3 masters,
 * no replicas), then wait until every node reports `cluster_state:ok`.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const { cli } = await redisBinaries();
  const nodes: RedisServer[] = [];
  const dispose = async () => {
    await Promise.all(nodes.map((n) => n.dispose()));
  };
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await startRedis({
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'],
        }),
      );
    }
    await run(cli, ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], 60_000);
    await waitFor('cluster_state:ok on every node', 30_000, async () => {
      for (const n of nodes) {
        const info = await rawCommand(n.port, 'CLUSTER INFO', 1_000);
        if (!info.includes('cluster_state:ok')) return false;
      }
      return true;
    });
  } catch (err) {
    await dispose();
    throw err;
  }
  return {
    nodes,
    startupNodes: nodes.map((n) => ({ host: HOST, port: n.port })),
    dispose,
  };
}
