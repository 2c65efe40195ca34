import { describe, it } from 'vitest';
import { runStoreSuite } from '../../testing/index.js';
import { MemoryStore } from './index.js';

runStoreSuite(({ clock }) => new MemoryStore({ clock, sweepInterval: 0 }), {
  name: 'MemoryStore conformance',
  describe,
  it,
  require: ['userIndex', 'purge', 'close'],
});
