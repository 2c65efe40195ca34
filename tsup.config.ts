import { defineConfig } from 'tsup';

/** One entry per public subpath (see ARCHITECTURE.md); keep in sync with package.json "exports". */
export const entries = {
  index: 'src/index.ts',
  express: 'src/adapters/express/index.ts',
  'stores/memory': 'src/stores/memory/index.ts',
  'stores/sqlite': 'src/stores/sqlite/index.ts',
  'stores/postgres': 'src/stores/postgres/index.ts',
  'stores/redis': 'src/stores/redis/index.ts',
  'stores/connect': 'src/stores/connect/index.ts',
  'express-session': 'src/compat/index.ts',
  stateless: 'src/stateless/index.ts',
  testing: 'src/testing/index.ts',
};

export default defineConfig({
  entry: entries,
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  sourcemap: false,
  treeshake: true,
  // Keep `node:` specifiers: `node:test` (used by sesh/testing) has no unprefixed form.
  removeNodeProtocol: false,
  external: ['express', 'better-sqlite3', 'ioredis', 'redis', 'pg', 'vitest'],
});
