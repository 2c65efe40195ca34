import { deadlineRunner } from '../deadline.js';
import { StoreUnavailableError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import type { Store } from '../store.js';
import type { SeshEventType } from '../types.js';
import type { RequestContext } from './internals.js';

/** @internal Pieces shared by the server-side engine and the stateless engine. */

/** A plain object (`{}` or `Object.create(null)`), not an array, class instance or null. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A positive, finite epoch-milliseconds value inside the range of `Date`. */
export function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 && v < 8.64e15;
}

/** The last `Host` header {@link isLoopbackHost} looked at, and its answer (most apps see one or two hosts). */
let lastHost = '';
let lastHostIsLoopback = false;

/** True for `localhost`, `*.localhost`, `::1` and `127.x.x.x`, with or without a port. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  if (host === lastHost) return lastHostIsLoopback;
  const h = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  const loopback = h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
  lastHost = host;
  lastHostIsLoopback = loopback;
  return loopback;
}

/** An engine's event reporter: the session ID only ever leaves as its keyed hash. */
export type Emit = (type: SeshEventType, sid?: string | null, detail?: string, ip?: string) => void;

/** Build the `emit` of an engine from its `onEvent` option and its keyed ID hash. */
export function eventEmitter(onEvent: ResolvedOptions['onEvent'], sidHash: (id: string) => string): Emit {
  return (type, sid, detail, ip) => {
    if (!onEvent) return;
    const event: Parameters<typeof onEvent>[0] = { type };
    if (sid) event.sidHash = sidHash(sid);
    if (detail) event.detail = detail;
    if (ip) event.ip = ip;
    onEvent(event);
  };
}

/**
 * What a failed store call becomes: a `StoreUnavailableError` (HTTP 503), reported as a
 * `store_error` event. `what` names the store in messages ("session store", "revocation store").
 */
export function storeFailure(
  what: string,
  onEvent: ResolvedOptions['onEvent'],
): (error: unknown, operation: string) => StoreUnavailableError {
  return (err, operation) => {
    const e =
      err instanceof StoreUnavailableError
        ? err
        : new StoreUnavailableError(operation, `The ${what} failed on ${operation}: ${(err as Error)?.message ?? String(err)}`, err);
    if (onEvent) onEvent({ type: 'store_error', detail: e.message, error: e });
    return e;
  };
}

/**
 * Run store calls under the engine's `storeTimeout` (one shared timer, see deadline.ts). A timeout
 * or any failure becomes a `StoreUnavailableError` (HTTP 503) and a `store_error` event.
 * `what` names the store in messages ("session store", "revocation store"). When the store bounds
 * its own operations within `storeTimeout` (`Store.operationTimeout`, read at each call), no
 * second deadline is set: failures are only mapped and reported.
 */
export function storeCaller(
  limitMs: number,
  what: string,
  onEvent: ResolvedOptions['onEvent'],
  store?: Pick<Store, 'operationTimeout'>,
): <A, T>(operation: string, fn: (arg: A) => Promise<T>, arg: A) => Promise<T> {
  const failure = storeFailure(what, onEvent);
  // The mapping runs inside the deadline runner, before its one promise rejects: no async wrapper
  // (its promise, try/catch and an extra microtask hop) on the path of every successful call.
  const deadlines = deadlineRunner(
    limitMs,
    (operation) => new StoreUnavailableError(operation, `The ${what} did not answer ${operation} within ${limitMs} ms (storeTimeout).`),
    failure,
  );
  if (store === undefined || !('operationTimeout' in store)) return (operation, fn, arg) => deadlines.run(operation, fn, arg);
  // One rejection handler per operation name (a handful), made once: nothing is allocated per
  // call but the promise `then` returns.
  const handlers = new Map<string, (err: unknown) => never>();
  const handler = (operation: string) => {
    let h = handlers.get(operation);
    if (h === undefined) {
      h = (err) => {
        throw failure(err, operation);
      };
      handlers.set(operation, h);
    }
    return h;
  };
  return (operation, fn, arg) => {
    // Read at each call: a store may bound its operations only from some point on.
    const own = store.operationTimeout;
    if (typeof own !== 'number' || !(own > 0 && own <= limitMs)) return deadlines.run(operation, fn, arg);
    let result: Promise<unknown>;
    try {
      result = fn(arg);
    } catch (err) {
      return Promise.reject(failure(err, operation));
    }
    return Promise.resolve(result).then(undefined, handler(operation)) as ReturnType<typeof fn>;
  };
}

let warnedInsecure = false;

/**
 * True when a Secure cookie is about to go out over plain http to a host that is not loopback: the
 * browser would drop it, so the engine sends nothing, reports `insecure_transport` and warns once
 * per process with the fix (trust proxy, or `insecureDevMode` for development).
 */
export function dropsInsecureCookie(setCookie: readonly string[], opts: ResolvedOptions, request: RequestContext, emit: Emit): boolean {
  // The host check first: `secure` runs the framework's trust-proxy rules (Express: a few µs).
  if (setCookie.length === 0 || !opts.cookie.secure || isLoopbackHost(request.host) || request.secure) return false;
  emit('insecure_transport', null, 'Secure session cookie not sent over plain http');
  if (!warnedInsecure) {
    warnedInsecure = true;
    console.warn(
      '[sesh] A session cookie was not sent because the request arrived over plain http. Behind a TLS-terminating proxy, enable your framework\'s trust proxy setting (Express: app.set("trust proxy", 1)); for plain-http development on another host, set insecureDevMode: true.',
    );
  }
  return true;
}

/**
 * With `strictTransport`, true when a session cookie arrived on a plain-http request to a host that
 * is not loopback: the session is not loaded and `insecure_transport` is reported.
 */
export function refusesInsecureLoad(opts: ResolvedOptions, request: RequestContext, emit: Emit): boolean {
  if (!opts.strictTransport || !opts.cookie.secure || isLoopbackHost(request.host) || request.secure) return false;
  emit('insecure_transport', null, 'Secure session cookie refused on a plain-http request (strictTransport)', request.ip);
  return true;
}

/** Warn at startup when `insecureDevMode` is on. */
export function warnIfInsecureDevMode(opts: ResolvedOptions): void {
  if (opts.insecureDevMode) {
    console.warn(
      '[sesh] insecureDevMode is on: the session cookie is sent without Secure and without the __Host- prefix. Never use this in production.',
    );
  }
}
