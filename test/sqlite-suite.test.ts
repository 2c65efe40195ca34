import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import { runStoreSuite } from '../src/testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sesh-sqlite-suite-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

runStoreSuite(({ clock }) => new SqliteStore({ path: join(dir, `suite-${n++}.db`), clock, purgeInterval: 0 }), {
  name: 'SqliteStore (file, WAL) passes the sesh store conformance suite',
  require: ['userIndex', 'purge', 'close', 'syncRead', 'syncWrite'],
  describe,
  it,
});

runStoreSuite(({ clock }) => new SqliteStore({ path: ':memory:', clock, purgeInterval: 0, purgeBatchSize: 7 }), {
  name: 'SqliteStore (:memory:, small purge batches) passes the sesh store conformance suite',
  require: ['userIndex', 'purge', 'close', 'syncRead', 'syncWrite'],
  describe,
  it,
});
