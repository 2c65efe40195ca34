import { type Clock, systemClock } from './clock.js';
import { type CookieAttributes, cookieAttributesProblem, type SameSite } from './cookie/index.js';
import type { RandomSource } from './crypto/index.js';
import { OptionsError } from './errors.js';
import type { Store } from './store.js';
import type { SeshEvent } from './types.js';

/** Timeout presets (see the security model in the README). */
export type TimeoutPreset = 'standard' | 'high' | 'low';

const PRESETS: Record<TimeoutPreset, { idle: number | false; absolute: number }> = {
  standard: { idle: 30 * 60_000, absolute: 12 * 3_600_000 },
  high: { idle: 15 * 60_000, absolute: 12 * 3_600_000 },
  low: { idle: false, absolute: 30 * 86_400_000 },
};

/** Cookie options. Defaults: `__Host-sid; Path=/; Secure; HttpOnly; SameSite=Lax`, no Domain, no Max-Age. */
export interface CookieOptions {
  /** Cookie name. Default `__Host-sid` (`sid` in `insecureDevMode`). */
  name?: string;
  /** Default `/`. A `__Host-` name requires `/`. */
  path?: string;
  /** Default none (host-only). A `__Host-` name forbids a Domain. */
  domain?: string;
  /** Default `true`. Only `insecureDevMode` may turn it off. */
  secure?: boolean;
  /** Default `true`. */
  httpOnly?: boolean;
  /** Default `'lax'`. */
  sameSite?: SameSite | false;
  /** CHIPS `Partitioned` attribute. Default `false`. */
  partitioned?: boolean;
  /** Chrome's `Priority` attribute. Default none. */
  priority?: 'low' | 'medium' | 'high';
}

/** Options of {@link createSessions} and of the framework adapters. */
export interface SessionOptions {
  /**
   * The signing secret, at least 32 characters; or a key ring `[current, ...previous]`: the first
   * signs, all verify, and a cookie signed by an older one is re-issued under the current one.
   * Load it from the environment (e.g. `process.env.SESSION_SECRET`), never hard-code it.
   */
  secret: string | readonly string[];
  /** Where sessions live. The adapters default to the embedded store when omitted. */
  store?: Store;
  /** Cookie attributes. */
  cookie?: CookieOptions;
  /** Timeout preset: `standard` (30 min idle / 12 h absolute, default), `high` (15 min / 12 h), `low` (none / 30 days). */
  preset?: TimeoutPreset;
  /** Idle timeout in ms (or `false` for none). Overrides the preset. */
  idleTimeout?: number | false;
  /** Absolute timeout in ms since creation; always finite. Overrides the preset. */
  absoluteTimeout?: number;
  /** A read-only request writes `lastSeen` at most once per this many ms. Default 60 000. */
  touchAfter?: number;
  /** Send the cookie again on every response that has a session. Default `false`. */
  rolling?: boolean;
  /** Store new sessions even when nothing was written to them. Default `false`. */
  saveUninitialized?: boolean;
  /** Maximum serialized size of session data, in bytes. Default 65 536. */
  maxSize?: number;
  /** Per-operation store timeout in ms; past it the request fails with 503. Default 2000. */
  storeTimeout?: number;
  /** Record client IP and User-Agent in session metadata (for device lists). Default `true`. */
  trackClient?: boolean;
  /**
   * Plain-http development on a host other than localhost: drops the `__Host-` prefix and `Secure`,
   * and logs a warning. Never use it in production. Default `false`.
   */
  insecureDevMode?: boolean;
  /**
   * Refuse to load a session from a request that arrived over plain http (to a host that is not
   * loopback): the Secure cookie it carries was meant for https only, so the request is treated as
   * having no session and `insecure_transport` is reported. Catches a TLS-terminating proxy that is
   * not trusted (`trust proxy`) or a downgrade. Default `false` (the cookie is still never *issued*
   * over plain http).
   */
  strictTransport?: boolean;
  /** Time source. Default: the system clock. */
  clock?: Clock;
  /** Random source for session IDs. Default: `crypto.randomBytes`. */
  random?: RandomSource;
  /** Receives security and lifecycle events (IDs only as keyed hashes). */
  onEvent?: (event: SeshEvent) => void;
}

/** Options after validation, with every default filled in. */
export interface ResolvedOptions {
  secrets: readonly string[];
  cookie: CookieAttributes;
  idleTimeout: number | false;
  absoluteTimeout: number;
  touchAfter: number;
  rolling: boolean;
  saveUninitialized: boolean;
  maxSize: number;
  storeTimeout: number;
  trackClient: boolean;
  insecureDevMode: boolean;
  strictTransport: boolean;
  clock: Clock;
  random: RandomSource | undefined;
  onEvent: ((event: SeshEvent) => void) | undefined;
}

/** Placeholders that appear in tutorials and READMEs; a secret containing one is refused. */
const PLACEHOLDERS = [
  'keyboard cat',
  'changeme',
  'change-me',
  'change me',
  'your-secret',
  'your secret',
  'yoursecret',
  'mysecret',
  'my-secret',
  'my secret',
  'secret-key',
  'supersecret',
  'replace-me',
  'replace with',
  'xxxxxxxx',
  'placeholder',
];

/** Minimum secret length in characters. */
export const MIN_SECRET_LENGTH = 32;

/** Throw an {@link OptionsError} unless `secret` is usable. */
export function validateSecrets(secret: unknown, option = 'secret'): readonly string[] {
  if (secret === undefined || secret === null || secret === '') {
    throw new OptionsError(
      `\`${option}\` is required: pass a random string of at least ${MIN_SECRET_LENGTH} characters, e.g. from process.env.SESSION_SECRET (generate one with: node -e "console.log(crypto.randomBytes(32).toString('base64url'))").`,
    );
  }
  const list = Array.isArray(secret) ? secret : [secret];
  if (list.length === 0) throw new OptionsError(`\`${option}\` is an empty array: give at least one secret.`);
  list.forEach((s: unknown, i) => {
    const where = Array.isArray(secret) ? `\`${option}[${i}]\`` : `\`${option}\``;
    if (typeof s !== 'string') throw new OptionsError(`${where} must be a string.`);
    if (s.length < MIN_SECRET_LENGTH) {
      throw new OptionsError(`${where} is ${s.length} characters; use at least ${MIN_SECRET_LENGTH} random characters.`);
    }
    const lower = s.toLowerCase();
    const hit = PLACEHOLDERS.find((p) => lower.includes(p));
    if (hit || new Set(s).size < 8) {
      throw new OptionsError(
        `${where} looks like a placeholder${hit ? ` ("${hit}")` : ''}, not a random secret; generate one with: node -e "console.log(crypto.randomBytes(32).toString('base64url'))".`,
      );
    }
  });
  return Object.freeze([...(list as string[])]);
}

function duration(name: string, value: unknown, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new OptionsError(
      `\`${name}\` must be a finite ${allowZero ? 'non-negative' : 'positive'} number of milliseconds; got ${String(value)}.`,
    );
  }
  return value;
}

function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new OptionsError(`\`${name}\` must be true or false; got ${String(value)}.`);
  return value;
}

/** Validate options once at startup and fill in the secure defaults. Throws {@link OptionsError}. */
export function resolveOptions(options: SessionOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new OptionsError('session options are required: pass at least `{ secret }`.');
  }
  const secrets = validateSecrets(options.secret);
  const presetName = options.preset ?? 'standard';
  const preset = PRESETS[presetName];
  if (!preset) throw new OptionsError(`\`preset\` must be one of standard, high, low; got ${String(presetName)}.`);

  const idleTimeout =
    options.idleTimeout === false
      ? false
      : options.idleTimeout === undefined
        ? preset.idle
        : duration('idleTimeout', options.idleTimeout, 0);
  if (options.absoluteTimeout === Number.POSITIVE_INFINITY) {
    throw new OptionsError('`absoluteTimeout` must be finite: a session that never expires cannot be revoked by time.');
  }
  const absoluteTimeout = duration('absoluteTimeout', options.absoluteTimeout, preset.absolute);
  if (idleTimeout !== false && idleTimeout > absoluteTimeout) {
    throw new OptionsError(
      `\`idleTimeout\` (${idleTimeout} ms) is longer than \`absoluteTimeout\` (${absoluteTimeout} ms); make it shorter.`,
    );
  }
  const touchAfter = duration('touchAfter', options.touchAfter, 60_000, true);
  if (idleTimeout !== false && touchAfter >= idleTimeout) {
    throw new OptionsError(`\`touchAfter\` (${touchAfter} ms) must be shorter than \`idleTimeout\` (${idleTimeout} ms).`);
  }

  const insecureDevMode = bool('insecureDevMode', options.insecureDevMode, false);
  const c = options.cookie ?? {};
  if (typeof c !== 'object') throw new OptionsError('`cookie` must be an object.');
  const secure = bool('cookie.secure', c.secure, !insecureDevMode);
  if (!secure && !insecureDevMode) {
    throw new OptionsError(
      '`cookie.secure: false` is only allowed with `insecureDevMode: true` (plain-http development); browsers accept Secure cookies on http://localhost, so local development needs neither.',
    );
  }
  const sameSite = c.sameSite === undefined ? 'lax' : c.sameSite;
  if (sameSite !== false && sameSite !== 'lax' && sameSite !== 'strict' && sameSite !== 'none') {
    throw new OptionsError(`\`cookie.sameSite\` must be 'lax', 'strict', 'none' or false; got ${String(sameSite)}.`);
  }
  if (c.priority !== undefined && !['low', 'medium', 'high'].includes(c.priority)) {
    throw new OptionsError(`\`cookie.priority\` must be 'low', 'medium' or 'high'; got ${String(c.priority)}.`);
  }
  const cookie: CookieAttributes = {
    name: c.name ?? (secure ? '__Host-sid' : 'sid'),
    path: c.path ?? '/',
    domain: c.domain,
    secure,
    httpOnly: bool('cookie.httpOnly', c.httpOnly, true),
    sameSite,
    partitioned: bool('cookie.partitioned', c.partitioned, false),
    priority: c.priority,
  };
  for (const k of ['name', 'path', 'domain'] as const) {
    if (cookie[k] !== undefined && typeof cookie[k] !== 'string') throw new OptionsError(`\`cookie.${k}\` must be a string.`);
  }
  const problem = cookieAttributesProblem(cookie);
  if (problem) throw new OptionsError(`Invalid cookie options: ${problem}`);

  const maxSize = duration('maxSize', options.maxSize, 65_536);
  const storeTimeout = duration('storeTimeout', options.storeTimeout, 2_000);
  if (options.clock !== undefined && typeof options.clock?.now !== 'function') {
    throw new OptionsError('`clock` must have a now() method returning milliseconds.');
  }
  if (options.random !== undefined && typeof options.random !== 'function') {
    throw new OptionsError('`random` must be a function (size) => Uint8Array.');
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw new OptionsError('`onEvent` must be a function.');
  }
  return {
    secrets,
    cookie,
    idleTimeout,
    absoluteTimeout,
    touchAfter,
    rolling: bool('rolling', options.rolling, false),
    saveUninitialized: bool('saveUninitialized', options.saveUninitialized, false),
    maxSize,
    storeTimeout,
    trackClient: bool('trackClient', options.trackClient, true),
    insecureDevMode,
    strictTransport: bool('strictTransport', options.strictTransport, false),
    clock: options.clock ?? systemClock,
    random: options.random,
    onEvent: options.onEvent,
  };
}
