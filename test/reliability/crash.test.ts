/**
 * Crash: an Express app on the SQLite store runs as a child process (test/fixtures/sqlite-server.ts)
 * and is killed with SIGKILL while clients write per-key updates to existing sessions and create new
 * ones. It is restarted on the same file (alternating Express 5 and 4) and killed again, for
 * SESH_STRESS_CRASH_CYCLES cycles (default 3). After each restart every acknowledged write (a 200
 * response received) must be present, and at the end the database passes `PRAGMA integrity_check`.
 * Writes cut off mid-flight may or may not be there; they are counted, not asserted.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { cookiePair, request } from '../support/http.js';
import { type ChildServer, killAll, startServer } from '../support/sqlite.js';
import { disposeServers, param, type Row, report, sleep, tempDir } from './harness.js';

const CYCLES = param('SESH_STRESS_CRASH_CYCLES', 3, 20);
const WORKERS = 8;
const SESSIONS = 20;
const rows: Row[] = [];

afterAll(async () => {
  await killAll();
  await disposeServers();
  await report('crash', `Crash: SQLite app process SIGKILLed under write load, ${CYCLES} cycles`, rows);
});

describe('SQLite store, app process SIGKILLed under write load', () => {
  it(`every acknowledged write survives ${CYCLES} kill/restart cycles`, async () => {
    const db = join(tempDir('sesh-rel-crash-'), 'sessions.db');
    let server: ChildServer = await startServer(db, { major: '5' });
    // Existing sessions that the load writes keys into.
    const sessions: { cookie: string; expect: Map<string, string> }[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const r = await request(`${server.url}/new?v=s${i}`);
      expect(r.status).toBe(200);
      sessions.push({ cookie: cookiePair(r) as string, expect: new Map([['v', `s${i}`]]) });
    }
    let seq = 0;
    let acked = 0;
    let cutOff = 0;
    let created = 0;
    let verified = 0;
    let lost = 0;
    const missing: string[] = [];

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      let stop = false;
      const base = acked;
      const url = server.url;
      const workers = Array.from({ length: WORKERS }, async (_, w) => {
        while (!stop) {
          const n = seq++;
          try {
            if (n % 10 === 9) {
              // A new session now and then: its cookie is only known once the response arrived.
              const r = await request(`${url}/new?v=n${n}`);
              const cookie = cookiePair(r);
              if (r.status === 200 && cookie) {
                sessions.push({ cookie, expect: new Map([['v', `n${n}`]]) });
                created++;
                acked++;
              }
            } else {
              const s = sessions[(n * 7 + w) % sessions.length] as (typeof sessions)[number];
              // Each worker owns its keys and writes them one at a time; keys get overwritten, so the
              // last acknowledged value (or a later one cut off mid-flight) must be the stored one.
              const k = `w${w}_${n % 8}`;
              const r = await request(`${url}/set?k=${k}&v=${n}`, { cookie: s.cookie });
              if (r.status === 200) {
                s.expect.set(k, String(n));
                acked++;
              }
            }
          } catch {
            cutOff++; // the process died under this request
          }
        }
      });
      const deadline = Date.now() + 10_000;
      while (acked - base < 200 && Date.now() < deadline) await sleep(5);
      expect(acked - base).toBeGreaterThanOrEqual(200);
      await server.kill('SIGKILL'); // requests are in flight right now
      stop = true;
      await Promise.all(workers);
      expect(server.proc.signalCode).toBe('SIGKILL');

      server = await startServer(db, { major: cycle % 2 === 0 ? '4' : '5' });
      for (let i = 0; i < sessions.length; i += 25) {
        await Promise.all(
          sessions.slice(i, i + 25).map(async (s) => {
            const r = await request(`${server.url}/read`, { cookie: s.cookie });
            const data = r.status === 200 ? (JSON.parse(r.body) as Record<string, string>) : {};
            for (const [k, v] of s.expect) {
              verified++;
              // The last acknowledged value, or a later one from the request the kill cut off.
              const ok = k === 'v' ? data[k] === v : data[k] !== undefined && Number(data[k]) >= Number(v);
              if (!ok) {
                lost++;
                missing.push(`cycle ${cycle} ${k}=${v}: got ${JSON.stringify(data[k])} (${r.status})`);
              }
            }
          }),
        );
      }
      // Values in flight at the kill may have landed: adopt what the store now says as the baseline.
      for (const s of sessions) {
        const data = JSON.parse((await request(`${server.url}/read`, { cookie: s.cookie })).body) as Record<string, string>;
        for (const k of Object.keys(data)) if (k !== 'v') s.expect.set(k, data[k] as string);
      }
    }
    await server.kill('SIGKILL');
    expect(missing.slice(0, 10)).toEqual([]);
    expect(lost).toBe(0);
    const check = new Database(db);
    const integrity = check.pragma('integrity_check', { simple: true });
    check.close();
    expect(integrity).toBe('ok');
    rows.push({
      store: 'sqlite (better-sqlite3, WAL)',
      'kill cycles': CYCLES,
      'acknowledged writes': acked,
      'sessions created under load': created,
      'cut off mid-flight': cutOff,
      'values checked': verified,
      integrity: String(integrity),
      lost,
    });
  });
});
