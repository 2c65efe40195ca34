/**
 * Per-operation time limits without a timer per operation.
 *
 * `Promise.race` with a fresh `setTimeout` per store call costs a timer insert and removal, a
 * `Timeout` object and two extra promises on every request, even when the store answers at once.
 * Here every operation of one engine shares a single timer: the limit is the same for all of them,
 * so operations expire in the order they started and the timer only ever waits for the oldest. The
 * timer keeps the process alive only while an operation is pending (it is unref'd when idle).
 */

/** Run promise-returning operations with a shared time limit. */
export interface DeadlineRunner {
  /**
   * Settle like `op(arg)`, or reject with `onTimeout(operation)` when it has not settled within the
   * limit (a late result is then ignored). A synchronous throw from `op` becomes a rejection.
   */
  run<A, T>(operation: string, op: (arg: A) => Promise<T>, arg: A): Promise<T>;
}

interface Pending {
  deadline: number;
  operation: string;
  settled: boolean;
  expire: (err: unknown) => void;
}

/** Create a runner whose operations fail with `onTimeout(operation)` after `limitMs`. */
export function deadlineRunner(limitMs: number, onTimeout: (operation: string) => unknown): DeadlineRunner {
  const pending = new Set<Pending>();
  let timer: NodeJS.Timeout | undefined;
  /** True while the timer is scheduled (it may be scheduled early; `check` then re-arms it). */
  let armed = false;

  function check(): void {
    armed = false;
    // A timer may fire up to a millisecond before performance.now() says the time is up (the event
    // loop caches its clock), hence the tolerance.
    const now = performance.now() + 1;
    for (const p of pending) {
      if (p.deadline > now) {
        clearTimeout(timer);
        timer = setTimeout(check, Math.ceil(p.deadline - now));
        armed = true;
        return;
      }
      pending.delete(p);
      p.settled = true;
      p.expire(onTimeout(p.operation));
    }
    timer?.unref();
  }

  const done = (entry: Pending): boolean => {
    if (entry.settled) return false;
    entry.settled = true;
    pending.delete(entry);
    if (pending.size === 0) timer?.unref();
    return true;
  };

  return {
    run<A, T>(operation: string, op: (arg: A) => Promise<T>, arg: A): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const entry: Pending = { deadline: performance.now() + limitMs, operation, settled: false, expire: reject };
        let result: Promise<T>;
        try {
          result = op(arg);
        } catch (err) {
          reject(err);
          return;
        }
        if (pending.size === 0) {
          if (!armed) {
            if (timer) timer.refresh();
            else timer = setTimeout(check, limitMs);
            armed = true;
          }
          // Hold the event loop only while something is pending, like a per-call timer would.
          timer?.ref();
        }
        pending.add(entry);
        Promise.resolve(result).then(
          (value) => {
            if (done(entry)) resolve(value);
          },
          (err: unknown) => {
            if (done(entry)) reject(err);
          },
        );
      });
    },
  };
}
