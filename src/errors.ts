/**
 * Stable error codes. Branch on `err.code`, never on the message text.
 *
 * - `INVALID_OPTIONS`: an option is missing or wrong; thrown at startup.
 * - `STORE_UNAVAILABLE`: the store failed or timed out; the adapter answers 503.
 * - `SESSION_TOO_LARGE`: the serialized session exceeds `maxSize`.
 * - `UNSERIALIZABLE_VALUE`: a value cannot be stored as JSON (BigInt, circular, function, symbol...).
 * - `RESERVED_KEY`: the app wrote a name reserved by the session API (`id`, `save`, ...) or a
 *   prototype key (`__proto__`, `constructor`, `prototype`).
 * - `SESSION_GONE`: the session was destroyed or rotated by another request meanwhile.
 * - `NO_SESSION`: the session middleware did not run before code that needs it.
 * - `DRIVER_MISSING`: an optional driver package (better-sqlite3, ioredis, pg...) is not installed.
 * - `UNAUTHENTICATED`: the route needs a logged-in user and there is none (401).
 * - `FORBIDDEN`: the user lacks a required role (403).
 * - `CSRF_REJECTED`: an unsafe request failed the CSRF checks (403).
 * - `NOT_SUPPORTED`: the store lacks a capability the call needs (e.g. the per-user index).
 */
export type SeshErrorCode =
  | 'INVALID_OPTIONS'
  | 'STORE_UNAVAILABLE'
  | 'SESSION_TOO_LARGE'
  | 'UNSERIALIZABLE_VALUE'
  | 'RESERVED_KEY'
  | 'SESSION_GONE'
  | 'NO_SESSION'
  | 'DRIVER_MISSING'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'CSRF_REJECTED'
  | 'NOT_SUPPORTED';

/**
 * Every error thrown by sesh. It carries a stable {@link SeshErrorCode}, a message that says what to
 * change, the underlying `cause` when there is one, and the HTTP `status` an adapter should answer with.
 */
export class SeshError extends Error {
  /** Stable, machine-readable code. */
  readonly code: SeshErrorCode;
  /** HTTP status an adapter uses when this error ends a request (Express reads `status`). */
  readonly status: number;
  /** Express' default error handler only shows the message when `expose` is true (4xx). */
  readonly expose: boolean;

  constructor(code: SeshErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SeshError';
    this.code = code;
    this.status = options?.status ?? 500;
    this.expose = this.status < 500;
  }
}

/** An option is missing or invalid. Thrown synchronously at startup; the message names the option. */
export class OptionsError extends SeshError {
  constructor(message: string) {
    super('INVALID_OPTIONS', message);
    this.name = 'OptionsError';
  }
}

/**
 * The store failed, rejected or did not answer within `storeTimeout`. Adapters answer 503 and never
 * fall back to an anonymous session.
 */
export class StoreUnavailableError extends SeshError {
  /** The store operation that failed (`get`, `create`, `patch`, `touch`, `destroy`, ...). */
  readonly operation: string;
  constructor(operation: string, message: string, cause?: unknown) {
    super('STORE_UNAVAILABLE', message, { cause, status: 503 });
    this.name = 'StoreUnavailableError';
    this.operation = operation;
  }
}

/** The serialized session (or the sealed cookie) would exceed the configured size limit. */
export class SessionTooLargeError extends SeshError {
  /** The size the session would have had, in bytes. */
  readonly size: number;
  /** The configured limit, in bytes. */
  readonly limit: number;
  constructor(size: number, limit: number, what = 'session', hint = 'Store less in the session, or raise the `maxSize` option.') {
    super('SESSION_TOO_LARGE', `The ${what} is ${size} bytes, over the ${limit}-byte limit. ${hint}`, { status: 500 });
    this.name = 'SessionTooLargeError';
    this.size = size;
    this.limit = limit;
  }
}

/** True when `err` is a {@link SeshError}, optionally with the given code. */
export function isSeshError(err: unknown, code?: SeshErrorCode): err is SeshError {
  return err instanceof SeshError && (code === undefined || err.code === code);
}
