import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** MemoryStore behaviour that needs a process of its own: timers that must not hold it open, one-time warnings. */
const root = fileURLToPath(new URL('..', import.meta.url));
const storeUrl = new URL('../src/stores/memory/index.ts', import.meta.url).href;

function runChild(body: string, env: Record<string, string | undefined>) {
  const source = `import { MemoryStore } from ${JSON.stringify(storeUrl)};\n${body}`;
  const childEnv: Record<string, string | undefined> = { ...process.env };
  delete childEnv.NODE_ENV;
  Object.assign(childEnv, env);
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    cwd: root,
    env: childEnv,
    encoding: 'utf8',
    timeout: 20_000,
  });
}

describe('MemoryStore in its own process', () => {
  it('the sweep timer runs but does not keep the process alive', () => {
    const r = runChild(
      `
      const store = new MemoryStore({ sweepInterval: 10 });
      await store.create('k', { data: {}, meta: {}, createdAt: Date.now(), lastSeen: Date.now(), expiresAt: Date.now() + 30, userId: null });
      setTimeout(() => console.log('size after sweep', store.size), 300);
      // No close(): the process must still exit on its own once the timeout above has fired.
      `,
      {},
    );
    expect(r.signal, `child was killed (timer kept it alive?) stderr: ${r.stderr}`).toBeNull();
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('size after sweep 0');
    expect(r.status).toBe(0);
  });

  it('warns once under NODE_ENV=production, not when quiet', () => {
    const r = runChild(
      `
      new MemoryStore({ quiet: true, sweepInterval: 0 });
      console.error('--marker--');
      new MemoryStore({ sweepInterval: 0 });
      new MemoryStore({ sweepInterval: 0 });
      new MemoryStore();
      `,
      { NODE_ENV: 'production' },
    );
    expect(r.status).toBe(0);
    const [before, after = ''] = r.stderr.split('--marker--');
    expect(before).not.toContain('MemoryStore');
    expect(after.match(/\[sesh\] MemoryStore/g)).toHaveLength(1);
    expect(after).toMatch(/NODE_ENV=production/);
  });

  it('does not warn outside production', () => {
    const r = runChild('new MemoryStore(); new MemoryStore({ sweepInterval: 0 });', { NODE_ENV: 'development' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });
});
