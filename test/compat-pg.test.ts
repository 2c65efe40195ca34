/**
 * A real third-party store, unchanged: connect-pg-simple on a throw-away PostgreSQL server, under
 * sesh/express-session (cross-compatible with express-session on the same table) and under the
 * native engine through sesh/stores/connect (conformance suite).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Request, Response } from 'express';
import expressSession from 'express-session';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import session from '../src/compat/index.js';
import { ConnectStore } from '../src/stores/connect/index.js';
import { runStoreSuite } from '../src/testing/index.js';
import { closeAll } from './compat-harness.js';
import { expressVersions, listen, type Running, request } from './support/http.js';
import { makePool, type PgServer, startPostgres } from './support/postgres.js';

const require = createRequire(import.meta.url);
type PgStoreCtor = new (o: Record<string, unknown>) => expressSession.Store & { close(): Promise<void> };
const connectPg = require('connect-pg-simple') as (s: unknown) => PgStoreCtor;
// connect-pg-simple takes the session module and extends its Store: ours works as that module.
const PgStore = connectPg(session);

let server: PgServer | undefined;
let pool: pg.Pool | undefined;
beforeAll(async () => {
  server = await startPostgres();
  pool = makePool(server);
  // connect-pg-simple's own schema (its table.sql names the primary key "session_pkey", so one table per database).
  await pool.query(readFileSync(require.resolve('connect-pg-simple/table.sql'), 'utf8'));
}, 120_000);
afterAll(async () => {
  await pool?.end();
  await server?.destroy();
});

const newStore = () => new PgStore({ pool, pruneSessionInterval: false });

describe('ConnectStore over connect-pg-simple (real PostgreSQL)', () => {
  runStoreSuite(
    ({ clock }) => {
      const inner = newStore();
      return {
        store: new ConnectStore(inner, { clock }),
        cleanup: async () => {
          await inner.close();
          await (pool as pg.Pool).query('TRUNCATE session');
        },
      };
    },
    { describe, it, name: 'conformance (connect-pg-simple)' },
  );
});

for (const { name, express } of expressVersions) {
  describe(`sesh/express-session on connect-pg-simple (${name})`, () => {
    const servers: Running[] = [];
    afterAll(() => closeAll(servers));

    it('stores sessions in the table as express-session does; cookies work across both libraries', async () => {
      const table = 'session';
      const opts = () => ({ secret: 's3cret', resave: false, saveUninitialized: false, store: newStore(), cookie: { maxAge: 60_000 } });
      const mk = async (mw: unknown) => {
        const a = express();
        a.use(mw as never);
        a.get('/set/:v', (req: Request, res: Response) => {
          (req as unknown as { session: Record<string, unknown> }).session.v = req.params.v;
          res.send('ok');
        });
        a.get('/get', (req: Request, res: Response) => {
          res.send(String((req as unknown as { session: Record<string, unknown> }).session.v ?? 'none'));
        });
        const s = await listen(a);
        servers.push(s);
        return s;
      };
      const ours = await mk(session(opts()));
      const oracle = await mk(expressSession(opts()));
      const r = await request(`${ours.url}/set/pg`);
      const c = r.setCookie[0]?.split(';')[0] as string;
      expect(c).toMatch(/^connect\.sid=s%3A/);
      const id = decodeURIComponent(c.split('=')[1] as string)
        .slice(2)
        .split('.')[0] as string;
      const rows = await (pool as pg.Pool).query(`SELECT sess, expire FROM ${table} WHERE sid = $1`, [id]);
      expect(rows.rows[0].sess).toMatchObject({ v: 'pg', cookie: { originalMaxAge: 60_000, httpOnly: true, path: '/' } });
      expect(new Date(rows.rows[0].expire).valueOf()).toBeGreaterThan(Date.now() + 50_000);
      expect((await request(`${oracle.url}/get`, { cookie: c })).body).toBe('pg');
      const back = (await request(`${oracle.url}/set/es`)).setCookie[0]?.split(';')[0] as string;
      expect((await request(`${ours.url}/get`, { cookie: back })).body).toBe('es');
    });
  });
}
