import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { session } from '../src/adapters/express/index.js';
import { isSeshError } from '../src/index.js';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import { cookiePair, expressVersions, listen, request } from './support/http.js';
import { killAll, ROOT, runNode, startServer, TSX } from './support/sqlite.js';

const SECRET = 'tV9q2Lr8WmXc4Ns7Yb1Hd6Jf3Kg0Pz5A';
const dir = mkdtempSync(join(tmpdir(), 'sesh-sqlite-default-'));
afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

async function withEnvPath<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env.SESH_SQLITE_PATH;
  process.env.SESH_SQLITE_PATH = path;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.SESH_SQLITE_PATH;
    else process.env.SESH_SQLITE_PATH = before;
  }
}

describe('session() without a store uses the SQLite store', () => {
  for (const { name, express } of expressVersions) {
    it(`${name}: sessions go to the default SQLite file and survive a new middleware on it`, { timeout: 90_000 }, async () => {
      const path = join(dir, `${name.replace(' ', '')}.db`);
      await withEnvPath(path, async () => {
        const build = () => {
          const mw = session({ secret: SECRET });
          const app = express();
          app.use(mw);
          app.get('/set', (req, res) => {
            (req.session as unknown as Record<string, unknown>).name = 'ada';
            res.send('ok');
          });
          app.get('/get', (req, res) => {
            res.send(String((req.session as unknown as Record<string, unknown>).name ?? 'none'));
          });
          return { mw, app };
        };
        const first = build();
        expect(first.mw.sessions.store).toBeInstanceOf(SqliteStore);
        expect((first.mw.sessions.store as SqliteStore).path).toBe(path);
        const server = await listen(first.app);
        const cookie = cookiePair(await request(`${server.url}/set`)) as string;
        expect(cookie).toBeDefined();
        expect((await request(`${server.url}/get`, { cookie })).body).toBe('ada');
        await server.close();
        await first.mw.close();

        const second = build();
        const again = await listen(second.app);
        expect((await request(`${again.url}/get`, { cookie })).body).toBe('ada');
        await again.close();
        await second.mw.close();
      });
    });
  }

  it('restart: a session created before the server process restarts still works after it (default store, over HTTP)', {
    timeout: 90_000,
  }, async () => {
    const env = { SESH_SQLITE_PATH: join(dir, 'restart', 'sessions.db') };
    const before = await startServer('default', { env });
    expect(JSON.parse((await request(`${before.url}/store`)).body)).toEqual({ kind: 'SqliteStore', path: env.SESH_SQLITE_PATH });
    const cookie = cookiePair(await request(`${before.url}/new?v=kept`)) as string;
    await before.kill('SIGTERM');
    const after = await startServer('default', { env, major: '4' });
    expect(JSON.parse((await request(`${after.url}/read`, { cookie })).body)).toEqual({ v: 'kept' });
    await after.kill();
  });

  it('bad options fail before any database file is created', { timeout: 90_000 }, async () => {
    const path = join(dir, 'never', 'sessions.db');
    await withEnvPath(path, async () => {
      let err: unknown;
      try {
        session({ secret: 'short' });
      } catch (e) {
        err = e;
      }
      expect(isSeshError(err, 'INVALID_OPTIONS')).toBe(true);
    });
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('a process that uses the default store exits by itself (no timer keeps it alive)', { timeout: 90_000 }, async () => {
    const script = `
      import { session } from ${JSON.stringify(join(ROOT, 'src/adapters/express/index.ts'))};
      const mw = session({ secret: ${JSON.stringify(SECRET)} });
      console.log(mw.sessions.store.constructor.name);`;
    const r = await runNode(['--import', TSX, '--input-type=module', '-e', script], {
      env: { SESH_SQLITE_PATH: join(dir, 'exit.db') },
      timeout: 45_000,
    });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('SqliteStore');
  });

  it('without better-sqlite3: session() fails at startup with DRIVER_MISSING saying what to install, and an explicit store still works', {
    timeout: 90_000,
  }, async () => {
    const script = `
      import { session } from ${JSON.stringify(join(ROOT, 'src/adapters/express/index.ts'))};
      import { MemoryStore } from ${JSON.stringify(join(ROOT, 'src/stores/memory/index.ts'))};
      const out = {};
      try { session({ secret: ${JSON.stringify(SECRET)} }); out.default = 'ok'; }
      catch (err) { out.default = { code: err.code, message: err.message }; }
      const mw = session({ secret: ${JSON.stringify(SECRET)}, store: new MemoryStore() });
      out.memory = mw.sessions.store.constructor.name;
      await mw.close();
      console.log(JSON.stringify(out));`;
    const r = await runNode(['--require', './test/fixtures/sqlite-no-driver.cjs', '--import', TSX, '--input-type=module', '-e', script], {
      env: { SESH_SQLITE_PATH: join(dir, 'nodriver', 'sessions.db') },
    });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { default: { code: string; message: string }; memory: string };
    expect(out.default.code).toBe('DRIVER_MISSING');
    expect(out.default.message).toContain('npm install better-sqlite3@12');
    expect(out.default.message).toContain('store: new MemoryStore()');
    expect(out.memory).toBe('MemoryStore');
    expect(existsSync(join(dir, 'nodriver'))).toBe(false);
  });
});
