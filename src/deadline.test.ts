import { describe, expect, it } from 'vitest';
import { deadlineRunner } from './deadline.js';

const never = () => new Promise<never>(() => undefined);
const later = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
const timeout = (operation: string) => new Error(`timeout:${operation}`);

describe('deadlineRunner', () => {
  it('settles like the operation when it answers in time', async () => {
    const r = deadlineRunner(200, timeout);
    await expect(r.run('get', (x: number) => Promise.resolve(x + 1), 1)).resolves.toBe(2);
    await expect(r.run('get', () => Promise.reject(new Error('boom')), null)).rejects.toThrow('boom');
    await expect(r.run('get', () => later(20, 'slow but fine'), null)).resolves.toBe('slow but fine');
  });

  it('turns a synchronous throw into a rejection', async () => {
    const r = deadlineRunner(200, timeout);
    const op = (): Promise<never> => {
      throw new Error('sync');
    };
    await expect(r.run('get', op, null)).rejects.toThrow('sync');
  });

  it('rejects with onTimeout(operation) after the limit and ignores a late answer', async () => {
    const r = deadlineRunner(50, timeout);
    const started = performance.now();
    await expect(r.run('patch', () => later(150, 'late'), null)).rejects.toThrow('timeout:patch');
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(45);
  });

  it('gives every operation its own limit, measured from its own start', async () => {
    const r = deadlineRunner(80, timeout);
    const t0 = performance.now();
    const first = r.run('a', never, null).catch((e: Error) => [e.message, performance.now() - t0] as const);
    await later(40, null);
    const second = r.run('b', never, null).catch((e: Error) => [e.message, performance.now() - t0] as const);
    const fast = r.run('c', () => later(10, 'ok'), null);
    const [a, b, c] = await Promise.all([first, second, fast]);
    expect(c).toBe('ok');
    expect(a[0]).toBe('timeout:a');
    expect(a[1]).toBeGreaterThanOrEqual(75);
    expect(b[0]).toBe('timeout:b');
    expect(b[1]).toBeGreaterThanOrEqual(115);
  });

  it('keeps working after idle periods (the shared timer is re-armed)', async () => {
    const r = deadlineRunner(30, timeout);
    await expect(r.run('x', () => Promise.resolve(1), null)).resolves.toBe(1);
    await later(60, null); // the idle timer fires with nothing pending
    await expect(r.run('y', never, null)).rejects.toThrow('timeout:y');
    await expect(r.run('z', () => Promise.resolve(2), null)).resolves.toBe(2);
    await expect(r.run('w', never, null)).rejects.toThrow('timeout:w');
  });

  it('does not keep the process alive once nothing is pending', async () => {
    const { spawnSync } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const here = fileURLToPath(new URL('./deadline.ts', import.meta.url));
    const tsx = fileURLToPath(new URL('../node_modules/tsx/dist/loader.mjs', import.meta.url));
    const script = `import { deadlineRunner } from ${JSON.stringify(here)};
      const r = deadlineRunner(60000, () => new Error('t'));
      const t0 = Date.now();
      r.run('get', () => Promise.resolve(1), null).then(() => process.on('exit', () => console.log(Date.now() - t0)));`;
    const out = spawnSync(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(out.status).toBe(0);
    expect(Number(out.stdout.trim())).toBeLessThan(5_000);
  });
  it('maps every rejection through onFailure (rejection, synchronous throw, timeout), and a throwing mapper still rejects', async () => {
    const seen: string[] = [];
    const r = deadlineRunner(40, timeout, (err, operation) => {
      seen.push(`${operation}:${(err as Error).message}`);
      return new Error(`mapped:${(err as Error).message}`);
    });
    await expect(r.run('get', () => Promise.reject(new Error('boom')), null)).rejects.toThrow('mapped:boom');
    const sync = (): Promise<never> => {
      throw new Error('sync');
    };
    await expect(r.run('create', sync, null)).rejects.toThrow('mapped:sync');
    await expect(r.run('patch', never, null)).rejects.toThrow('mapped:timeout:patch');
    await expect(r.run('get', (x: number) => Promise.resolve(x * 2), 21)).resolves.toBe(42);
    expect(seen).toEqual(['get:boom', 'create:sync', 'patch:timeout:patch']);
    const throwing = deadlineRunner(40, timeout, () => {
      throw new Error('mapper');
    });
    await expect(throwing.run('get', () => Promise.reject(new Error('x')), null)).rejects.toThrow('mapper');
    await expect(throwing.run('get', never, null)).rejects.toThrow('mapper');
  });

  it('settles many interleaved operations, each by its own outcome', async () => {
    const r = deadlineRunner(60, timeout);
    const ops = Array.from({ length: 50 }, (_, i) =>
      i % 5 === 0 ? r.run(`n${i}`, never, null).catch((e: Error) => e.message) : r.run(`v${i}`, () => later(i % 7, i), null),
    );
    const out = await Promise.all(ops);
    for (const [i, v] of out.entries()) expect(v).toBe(i % 5 === 0 ? `timeout:n${i}` : i);
  });
});
