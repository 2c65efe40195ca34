import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Heap bytes per idle session and RSS growth for N sessions, per memory store. */
export interface MemoryFigures {
  sessions: number;
  rows: Array<{ store: string; bytesPerSession: number; rssGrowthMb: number }>;
}

/** Measure each memory store in a fresh process (bench/memory-child.mjs, --expose-gc). */
export async function measureMemory(sessions: number): Promise<MemoryFigures> {
  const rows: MemoryFigures['rows'] = [];
  for (const [store, arg] of [
    ['sesh MemoryStore', 'sesh'],
    ['express-session MemoryStore', 'express-session'],
  ] as const) {
    const out = execFileSync(process.execPath, ['--expose-gc', join(HERE, 'memory-child.mjs'), arg, String(sessions)], {
      encoding: 'utf8',
      env: { ...process.env, NODE_ENV: 'production' },
    });
    const r = JSON.parse(out.trim().split('\n').pop() as string) as { bytesPerSession: number; rssGrowthMb: number };
    rows.push({ store, bytesPerSession: r.bytesPerSession, rssGrowthMb: r.rssGrowthMb });
    console.log(`memory ${store}: ${r.bytesPerSession.toFixed(0)} bytes/session, RSS +${r.rssGrowthMb.toFixed(1)} MB for ${sessions}`);
  }
  return { sessions, rows };
}
