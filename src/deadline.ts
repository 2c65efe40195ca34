/**
 * Per-operation time limits without a timer per operation.
 *
 * `Promise.race` with a fresh `setTimeout` per store call costs a timer insert and removal, a
 * `Timeout` object and two extra promises on every request, even when the store answers at once.
 * Here every operation of one runner (an engine's store calls, a Redis store's commands) shares a
 * single timer: the limit is the same for all of them,
 * so operations expire in the order they started and the timer only ever waits for the oldest. The
 * timer keeps the process alive only while an operation is pending (it is unref'd when idle).
 *
 * Pending operations form a doubly linked list in start (= deadline) order: adding and removing
 * one allocates nothing, unlike a `Set` whose table is rebuilt as entries come and go. Each
 * operation costs one entry, the promise returned to the caller and the reaction on the
 * operation's own promise; failures are mapped (`onFailure`) before that one promise rejects, so
 * callers need no wrapper of their own (each wrapper would add a promise and a microtask hop).
 *
 * Part of the floor (imports nothing), so the engine and the stores can both use it.
 */

/** Run promise-returning operations with a shared time limit. */
export interface DeadlineRunner {
  /**
   * Settle like `op(arg)`, or reject with `onTimeout(operation)` when it has not settled within the
   * limit (a late result is then ignored). A synchronous throw from `op` becomes a rejection. Every
   * rejection reason goes through the runner's `onFailure` first, when it has one.
   */
  run<A, T>(operation: string, op: (arg: A) => Promise<T>, arg: A): Promise<T>;
}

const noop = (): void => undefined;

class Pending {
  prev: Pending | null = null;
  next: Pending | null = null;
  settled = false;
  resolve: (value: unknown) => void = noop;
  reject: (reason: unknown) => void = noop;
  constructor(
    readonly deadline: number,
    readonly operation: string,
  ) {}
}

/** The entry `new Promise(captureResolvers)` is being built for (set just before, synchronously). */
let capturing: Pending | null = null;

/** One shared executor instead of a closure per operation. */
function captureResolvers(resolve: (value: unknown) => void, reject: (reason: unknown) => void): void {
  const entry = capturing as Pending;
  entry.resolve = resolve;
  entry.reject = reject;
}

/**
 * Create a runner whose operations fail with `onTimeout(operation)` after `limitMs`. `onFailure`,
 * when given, maps every rejection reason (the operation's own failure, a synchronous throw, or the
 * timeout error) to the one the caller sees; if it throws, its error is the rejection reason.
 */
export function deadlineRunner(
  limitMs: number,
  onTimeout: (operation: string) => unknown,
  onFailure?: (error: unknown, operation: string) => unknown,
): DeadlineRunner {
  let head: Pending | null = null;
  let tail: Pending | null = null;
  let timer: NodeJS.Timeout | undefined;
  /** True while the timer is scheduled (it may be scheduled early; `check` then re-arms it). */
  let armed = false;

  function failure(error: unknown, operation: string): unknown {
    if (!onFailure) return error;
    try {
      return onFailure(error, operation);
    } catch (err) {
      return err;
    }
  }

  function unlink(p: Pending): void {
    if (p.prev) p.prev.next = p.next;
    else head = p.next;
    if (p.next) p.next.prev = p.prev;
    else tail = p.prev;
    p.prev = null;
    p.next = null;
  }

  function check(): void {
    armed = false;
    // A timer may fire up to a millisecond before performance.now() says the time is up (the event
    // loop caches its clock), hence the tolerance.
    const now = performance.now() + 1;
    for (let p = head; p !== null; p = head) {
      if (p.deadline > now) {
        clearTimeout(timer);
        timer = setTimeout(check, Math.ceil(p.deadline - now));
        armed = true;
        return;
      }
      unlink(p);
      p.settled = true;
      let reason: unknown;
      try {
        reason = onTimeout(p.operation);
      } catch (err) {
        reason = err;
      }
      p.reject(failure(reason, p.operation));
    }
    timer?.unref();
  }

  /** Take a settled operation off the list; false when it had already timed out. */
  function done(entry: Pending): boolean {
    if (entry.settled) return false;
    entry.settled = true;
    unlink(entry);
    if (head === null) timer?.unref();
    return true;
  }

  return {
    run<A, T>(operation: string, op: (arg: A) => Promise<T>, arg: A): Promise<T> {
      const deadline = performance.now() + limitMs;
      let result: Promise<T>;
      try {
        result = op(arg);
      } catch (err) {
        return Promise.reject(failure(err, operation));
      }
      const entry = new Pending(deadline, operation);
      capturing = entry;
      const promise = new Promise<T>(captureResolvers as (resolve: (value: T) => void, reject: (reason: unknown) => void) => void);
      capturing = null;
      if (head === null) {
        if (!armed) {
          if (timer) timer.refresh();
          else timer = setTimeout(check, limitMs);
          armed = true;
        }
        // Hold the event loop only while something is pending, like a per-call timer would.
        timer?.ref();
      }
      entry.prev = tail;
      if (tail) tail.next = entry;
      else head = entry;
      tail = entry;
      Promise.resolve(result).then(
        (value) => {
          if (done(entry)) entry.resolve(value);
        },
        (err: unknown) => {
          if (done(entry)) entry.reject(failure(err, operation));
        },
      );
      return promise;
    },
  };
}
