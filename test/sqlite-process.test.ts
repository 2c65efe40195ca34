import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cookiePair, request } from './support/http.js';
import { killAll, startServer } from './support/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'sesh-sqlite-proc-'));
afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('SQLite store across processes', () => {
  it('keeps every session whose response was received when the server is SIGKILLed mid-load, and after a restart (express 5 then 4)', {
    timeout: 90_000,
  }, async () => {
    const db = join(dir, 'durability.db');
    const server = await startServer(db, { major: '5' });
    const received: Array<{ cookie: string; v: string }> = [];
    let seq = 0;
    let stop = false;
    let failures = 0;
    // 8 concurrent clients creating sessions until the server is killed under them.
    const clients = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const v = `v${seq++}`;
        try {
          const reply = await request(`${server.url}/new?v=${v}`);
          const cookie = cookiePair(reply);
          if (reply.status === 200 && reply.body === v && cookie) received.push({ cookie, v });
        } catch {
          failures++; // the server died under this request: its session may or may not exist.
        }
      }
    });
    while (received.length < 300) await new Promise((r) => setTimeout(r, 5));
    await server.kill('SIGKILL'); // requests are in flight right now
    stop = true;
    await Promise.all(clients);
    expect(server.proc.signalCode).toBe('SIGKILL');
    expect(received.length).toBeGreaterThanOrEqual(300);
    expect(failures).toBeGreaterThan(0); // requests really were cut off mid-flight

    // Reopen the same file in a new process (on the other Express major): every acknowledged session is there.
    const restarted = await startServer(db, { major: '4' });
    const missing: string[] = [];
    for (let i = 0; i < received.length; i += 25) {
      await Promise.all(
        received.slice(i, i + 25).map(async ({ cookie, v }) => {
          const reply = await request(`${restarted.url}/read`, { cookie });
          if (reply.status !== 200 || JSON.parse(reply.body).v !== v) missing.push(`${v}: ${reply.status} ${reply.body}`);
        }),
      );
    }
    expect(missing).toEqual([]);
    // And the restarted server keeps writing to those sessions.
    const { cookie } = received[0] as { cookie: string };
    expect((await request(`${restarted.url}/set?k=after&v=restart`, { cookie })).status).toBe(200);
    expect(JSON.parse((await request(`${restarted.url}/read`, { cookie })).body).after).toBe('restart');
    await restarted.kill();
  });

  it('shares one file between two processes: reads each other, parallel patches lose nothing', { timeout: 90_000 }, async () => {
    const db = join(dir, 'shared.db');
    // Both processes open (and migrate) the new file at the same time.
    const [a, b] = await Promise.all([startServer(db, { major: '5' }), startServer(db, { major: '4' })]);

    const created = await request(`${a.url}/new?v=from-a`);
    const cookie = cookiePair(created) as string;
    expect(cookie).toBeDefined();
    expect(JSON.parse((await request(`${b.url}/read`, { cookie })).body)).toEqual({ v: 'from-a' });

    // 60 concurrent per-key writes, half through each process, all on one session.
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      writes.push(request(`${a.url}/set?k=a${i}&v=${i}`, { cookie }));
      writes.push(request(`${b.url}/set?k=b${i}&v=${i}`, { cookie }));
    }
    const replies = (await Promise.all(writes)) as Array<{ status: number }>;
    expect(replies.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);

    const expected: Record<string, string> = { v: 'from-a' };
    for (let i = 0; i < 30; i++) {
      expected[`a${i}`] = String(i);
      expected[`b${i}`] = String(i);
    }
    expect(JSON.parse((await request(`${a.url}/read`, { cookie })).body)).toEqual(expected);
    expect(JSON.parse((await request(`${b.url}/read`, { cookie })).body)).toEqual(expected);
    await Promise.all([a.kill(), b.kill()]);
  });
});
