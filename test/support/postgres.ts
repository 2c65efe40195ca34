/**
 * Starts a real, throw-away PostgreSQL 15 server for tests: `initdb` into a unique temp dir, then
 * `postgres` on a random loopback port, as an unprivileged system user when running as root
 * (PostgreSQL refuses to run as root). Several test files may start servers at the same time: each
 * gets its own data dir, socket dir and port.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const PG_USER = 'sesh-pg';
const BIN_DIRS = ['/usr/lib/postgresql/15/bin', '/usr/local/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'];

function bin(name: string): string {
  for (const dir of BIN_DIRS) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return name; // hope it is on PATH
}

interface RunAs {
  uid: number;
  gid: number;
  /** Prefix that runs a command as the unprivileged user, exec'ing it (same pid). */
  prefix: string[];
}

/** When root: make sure the system user exists and return how to run commands as it. */
function runAs(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const ids = () => {
    const uid = Number(execFileSync('id', ['-u', PG_USER], { stdio: 'pipe' }).toString().trim());
    const gid = Number(execFileSync('id', ['-g', PG_USER], { stdio: 'pipe' }).toString().trim());
    return { uid, gid };
  };
  let found: { uid: number; gid: number };
  try {
    found = ids();
  } catch {
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', PG_USER], { stdio: 'pipe' });
    } catch {
      // Another test file may have created it at the same moment; checked right below.
    }
    found = ids();
  }
  return {
    ...found,
    prefix: ['setpriv', `--reuid=${found.uid}`, `--regid=${found.gid}`, '--clear-groups', '--pdeathsig', 'SIGKILL', '--'],
  };
}

/** A free TCP port on 127.0.0.1 (a race with other processes is handled by retrying the start). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running test server. */
export interface PgServer {
  /** Connection settings for `new pg.Pool(...)`. */
  readonly config: { host: string; port: number; user: string; database: string };
  readonly port: number;
  readonly dataDir: string;
  /** Whether the postmaster is running. */
  readonly running: boolean;
  /**
   * Stop the server. `fast` (default) disconnects clients and shuts down cleanly; `immediate` is a
   * crash-like stop (recovery on next start).
   */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /**
   * Crash the server: SIGKILL to the postmaster and every backend at once (no shutdown, no
   * checkpoint; `start()` then runs crash recovery). Resolves when every one of them has exited.
   */
  kill(): Promise<void>;
  /** Start it again on the same data dir and port. */
  start(): Promise<void>;
  /** Stop and delete everything. Safe to call more than once. */
  destroy(): Promise<void>;
  /** Server log so far (for failure messages). */
  log(): string;
}

const live = new Set<PgServer>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if afterAll never ran: kill the postmasters and delete their dirs synchronously.
  process.on('exit', () => {
    for (const s of live) {
      const internal = s as unknown as { killNow(): void };
      internal.killNow();
    }
  });
}

/**
 * Delete data dirs left by test processes that were killed outright (no afterAll, no exit hook):
 * older than 10 minutes and with no running postmaster. Fresh dirs of concurrent tests are kept.
 */
function removeStaleDirs(): void {
  const root = tmpdir();
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n.startsWith('sesh-pg-'));
  } catch {
    return;
  }
  for (const n of names) {
    const dir = join(root, n);
    try {
      if (Date.now() - statSync(dir).mtimeMs < 10 * 60_000) continue;
      const pidFile = join(dir, 'data', 'postmaster.pid');
      if (existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
        if (pid > 0 && isAlive(pid)) continue;
      }
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // raced with its owner: leave it
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Options of {@link startPostgres}. */
export interface PgServerOptions {
  /**
   * Keep every acknowledged commit across a crash of the server process (`kill()`): runs with
   * `synchronous_commit=on`, so a commit is written to the OS before it is acknowledged. `fsync`
   * stays off (the OS keeps the writes of a killed process; only a power loss would drop them).
   * Default false: `synchronous_commit=off`, faster, but a crash may lose the last ~200 ms.
   */
  durable?: boolean;
}

/** Pids of the processes whose parent is `pid` (Linux /proc), e.g. the backends of a postmaster. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(n));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** True while `pid` runs (a zombie, dead but not yet reaped, counts as gone). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Start a fresh PostgreSQL server (initdb + postgres). Resolves once it accepts connections.
 * Always pair with `destroy()` in `afterAll`.
 */
export async function startPostgres(options: PgServerOptions = {}): Promise<PgServer> {
  installExitHook();
  removeStaleDirs();
  const as = runAs();
  const base = mkdtempSync(join(tmpdir(), 'sesh-pg-'));
  const dataDir = join(base, 'data');
  if (as) chownSync(base, as.uid, as.gid);
  const prefix = as?.prefix ?? [];
  const exec = (cmd: string, args: string[]) => {
    const all = [...prefix, cmd, ...args];
    return execFileSync(all[0] as string, all.slice(1), { stdio: 'pipe', cwd: base });
  };
  try {
    exec(bin('initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    const e = err as { stderr?: Buffer };
    throw new Error(`initdb failed: ${e.stderr?.toString() ?? String(err)}`);
  }

  let port = 0;
  let child: ChildProcess | undefined;
  let logText = '';
  let destroyed = false;

  const spawnPostgres = (): ChildProcess => {
    const args = [
      bin('postgres'),
      '-D',
      dataDir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `port=${port}`,
      '-c',
      `unix_socket_directories=${base}`,
      '-c',
      'fsync=off',
      '-c',
      `synchronous_commit=${options.durable ? 'on' : 'off'}`,
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=60',
      '-c',
      'shared_buffers=16MB',
    ];
    const all = [...prefix, ...args];
    const p = spawn(all[0] as string, all.slice(1), { cwd: base, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout?.on('data', (d: Buffer) => {
      logText += d.toString();
    });
    p.stderr?.on('data', (d: Buffer) => {
      logText += d.toString();
    });
    p.on('error', (err) => {
      logText += `spawn error: ${String(err)}\n`;
    });
    return p;
  };

  const exited = (p: ChildProcess) =>
    p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r()));

  const waitReady = async (p: ChildProcess): Promise<boolean> => {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (p.exitCode !== null || p.signalCode !== null) return false;
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SELECT 1');
        await c.end();
        return true;
      } catch {
        await c.end().catch(() => {});
        await sleep(50);
      }
    }
    throw new Error(`PostgreSQL did not start within 30 s:\n${logText}`);
  };

  const server: PgServer & { killNow(): void } = {
    get config() {
      return { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' };
    },
    get port() {
      return port;
    },
    dataDir,
    get running() {
      return !!child && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      if (server.running) return;
      for (let attempt = 0; ; attempt++) {
        if (!port) port = await freePort();
        const p = spawnPostgres();
        child = p;
        if (await waitReady(p)) return;
        // Exited early: most likely the port was taken meanwhile; on a first start pick another one.
        await exited(p);
        if (attempt >= 4) throw new Error(`PostgreSQL failed to start:\n${logText}`);
        if (/could not bind|address already in use/i.test(logText) && !hasStartedOnce) port = 0;
        await sleep(100);
      }
    },
    async stop(mode = 'fast') {
      const p = child;
      if (!p || !server.running) return;
      p.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
      const done = await Promise.race([exited(p).then(() => true), sleep(15_000).then(() => false)]);
      if (!done) {
        p.kill('SIGKILL');
        await exited(p);
      }
    },
    async kill() {
      const p = child;
      if (!p?.pid || !server.running) return;
      // Freeze the postmaster first so it cannot fork a new backend between the listing and the kill.
      p.kill('SIGSTOP');
      const victims = childPids(p.pid);
      for (const pid of victims) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      p.kill('SIGKILL');
      await exited(p);
      const deadline = Date.now() + 15_000;
      while (victims.some(running)) {
        if (Date.now() > deadline)
          throw new Error(`PostgreSQL backends still running 15 s after SIGKILL: ${victims.filter(running).join(', ')}`);
        await sleep(20);
      }
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      try {
        await server.stop('fast');
      } finally {
        live.delete(server);
        rmSync(base, { recursive: true, force: true });
      }
    },
    log: () => logText,
    killNow() {
      try {
        if (child && child.exitCode === null) child.kill('SIGKILL');
      } catch {
        // already gone
      }
      rmSync(base, { recursive: true, force: true });
    },
  };
  let hasStartedOnce = false;
  live.add(server);
  try {
    await server.start();
    hasStartedOnce = true;
  } catch (err) {
    await server.destroy().catch(() => {});
    throw err;
  }
  return server;
}

/** A pool with the settings docs/postgres.md recommends, plus an 'error' listener for idle clients. */
export function makePool(server: PgServer, extra: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({
    ...server.config,
    max: 10,
    connectionTimeoutMillis: 2000,
    idleTimeoutMillis: 10_000,
    ...extra,
  });
  pool.on('error', () => {
    // Idle clients die when the server stops (outage tests); the pool discards them by itself.
  });
  return pool;
}

/** A unique table name for one test (tables of different tests never collide). */
let tableCounter = 0;
export function uniqueTable(prefix = 't'): string {
  tableCounter++;
  return `${prefix}_${process.pid}_${tableCounter}_${Math.random().toString(36).slice(2, 8)}`;
}
