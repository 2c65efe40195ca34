/**
 * `sesh/testing`: tools for testing sesh apps and stores. {@link FakeClock} controls time;
 * {@link runStoreSuite} is the conformance suite every store must pass (see `docs/testing.md`).
 * Runtime code never imports this entry, and it never imports a test runner.
 */
export { FakeClock } from './clock.js';
export {
  type MakeStore,
  runStoreSuite,
  type StoreCapability,
  type StoreFixture,
  type StoreSuiteOptions,
  type SuiteDescribe,
  type SuiteIt,
  type SuiteTestFn,
} from './suite.js';
