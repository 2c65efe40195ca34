import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Repository root (tests spawn children from it so `--import tsx` resolves). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `--import` value that loads tsx from this repository, whatever the child's working directory. */
export const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

/** A child process running test/fixtures/sqlite-server.ts. */
export interface ChildServer {
  url: string;
  proc: ChildProcess;
  /** Output so far (for assertion messages). */
  output(): string;
  /** SIGKILL the child and wait until it is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const children = new Set<ChildProcess>();

/**
 * Start the fixture server (`db` is a file path, or `'default'` for the store session() picks)
 * and wait for its port. Rejects with the child's output if it exits or does not start in 45 s.
 */
export function startServer(db: string, opts: { major?: '4' | '5'; env?: Record<string, string> } = {}): Promise<ChildServer> {
  const proc = spawn(process.execPath, ['--import', TSX, 'test/fixtures/sqlite-server.ts', db, opts.major ?? '5'], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'test', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let out = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  exited.then(() => children.delete(proc));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void kill();
      reject(new Error(`fixture server did not start:\n${out}`));
    }, 45_000);
    proc.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: `http://127.0.0.1:${m[1]}`, proc, output: () => out, kill });
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`fixture server exited (${code ?? signal}) before listening:\n${out}`));
    });
  });
}

/** SIGKILL every child still running (afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...children].map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        }),
    ),
  );
}

/** Run a Node script (ESM source text, or a file with args) to completion; resolves code, stdout, stderr. */
export function runNode(
  args: string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string; timeout?: number } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const proc = spawn(process.execPath, args, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeout ?? 45_000);
  return new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(proc);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}
