import type { Clock } from '../clock.js';

/**
 * A controllable clock for tests. It starts at the real current time (so stores that hand
 * deadlines to a server, such as Redis TTLs, get sensible values) and moves only when told.
 */
export class FakeClock implements Clock {
  #now: number;

  constructor(start: number = Date.now()) {
    this.#now = start;
  }

  /** Current fake time in ms. */
  now(): number {
    return this.#now;
  }

  /** Move time forward (or backward, with a negative value) by `ms`. */
  advance(ms: number): void {
    this.#now += ms;
  }

  /** Jump to an absolute time. */
  set(ms: number): void {
    this.#now = ms;
  }
}
