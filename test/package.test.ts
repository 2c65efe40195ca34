import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { entries } from '../tsup.config.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, unknown>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dependencies?: Record<string, string>;
};
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

const subpathOf = (entry: string) => (entry === 'index' ? '.' : `./${entry}`);

describe('package layout (one entry = one exports key = one README section)', () => {
  it('exports exactly the built entries, each with ESM and CJS types', () => {
    const fromBuild = Object.keys(entries).map(subpathOf).sort();
    const fromExports = Object.keys(pkg.exports)
      .filter((k) => k !== './package.json')
      .sort();
    expect(fromExports).toEqual(fromBuild);
    for (const entry of Object.keys(entries)) {
      const file = entry;
      expect(pkg.exports[subpathOf(entry)]).toEqual({
        import: { types: `./dist/${file}.d.ts`, default: `./dist/${file}.js` },
        require: { types: `./dist/${file}.d.cts`, default: `./dist/${file}.cjs` },
      });
    }
  });

  it('documents every public subpath in the README', () => {
    for (const entry of Object.keys(entries)) {
      const name = entry === 'index' ? 'sesh' : `sesh/${entry}`;
      expect(readme, name).toContain(`\`${name}\``);
    }
  });

  it('keeps drivers and frameworks optional peer dependencies, never runtime dependencies', () => {
    for (const driver of ['express', 'better-sqlite3', 'ioredis', 'redis', 'pg']) {
      expect(pkg.dependencies?.[driver], driver).toBeUndefined();
      if (pkg.peerDependencies?.[driver]) expect(pkg.peerDependenciesMeta?.[driver]?.optional, driver).toBe(true);
    }
  });
});

describe('dual package (ESM and CJS builds loaded in one process)', () => {
  it('keeps the sessions of apps on either copy of sesh/express', () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    if (!existsSync(`${root}dist/express.cjs`) || !existsSync(`${root}dist/stores/memory.js`)) {
      execFileSync(process.execPath, [`${root}node_modules/tsup/dist/cli-default.js`], { cwd: root, stdio: 'ignore' });
    }
    const out = execFileSync(process.execPath, [fileURLToPath(new URL('./fixtures/dual-package.mjs', import.meta.url))], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(JSON.parse(out)).toEqual({ esm: ['1', '2', '3'], cjs: ['1', '2', '3'], esmAgain: ['1', '2', '3'] });
  }, 120_000);
});
