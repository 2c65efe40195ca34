/**
 * Time source used everywhere a decision depends on the current time (expiry, touch throttling,
 * store-side expiry checks). Inject a {@link Clock} to control time in tests; see `FakeClock` in
 * `sesh/testing`.
 */
export interface Clock {
  /** Current time in milliseconds since the Unix epoch. */
  now(): number;
}

/** The real wall clock (`Date.now()`). */
export const systemClock: Clock = Object.freeze({ now: () => Date.now() });
