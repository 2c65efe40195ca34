export { FakeClock } from './clock.js';
