import { type CompiledCookie, compileCookie, readCookie } from '../cookie/index.js';
import { type AeadRing, aeadRing, type OpenFailure, openSealed, seal, sealedLength } from '../crypto/aead.js';
import { hmac, keyRing, sha256 } from '../crypto/index.js';
import { OptionsError, SeshError, SessionTooLargeError, StoreUnavailableError } from '../errors.js';
import { type ResolvedOptions, resolveOptions, type SessionOptions } from '../options.js';
import { applyPatch, parseStoredJson, type Store } from '../store.js';
import type { DataRecord, SeshEventType, SessionData, SessionMeta, SessionPatch, StoredSession } from '../types.js';
import {
  dropsInsecureCookie,
  eventEmitter,
  isPlainObject,
  isTime,
  refusesInsecureLoad,
  storeCaller,
  warnIfInsecureDevMode,
} from './common.js';
import type { CommitResult, Sessions } from './engine.js';
import type { EngineInternals, RequestContext, SyncWrites } from './internals.js';
import { type LoadedSession, SessionState } from './session.js';
import { storeKeyOf } from './token.js';

/*
 * Stateless sessions: the whole session is sealed (AES-256-GCM) into the cookie.
 *
 * The dirty tracking, proxy and lifecycle of `SessionState` are reused unchanged: each request gets
 * a one-record in-memory "store" (RequestScope) holding the session opened from the cookie. The
 * state runs its usual create / patch / touch / destroy against it; at commit the resulting record
 * is sealed back into the cookie, only when something was written (a change, a due idle touch,
 * `rolling`) or when an older key opened it. The optional revocation store holds only deny-list
 * entries and per-user "valid after" times.
 */

/** Largest Set-Cookie line (name, value and attributes) a browser is guaranteed to keep. */
export const MAX_COOKIE_BYTES = 4096;
/**
 * Most cookies one session may be split across. Browsers send every cookie back in one `Cookie`
 * header and Node refuses requests whose headers exceed 16 KiB (431), so three full chunks
 * (about 12 KiB) is the most that leaves room for the other headers.
 */
export const MAX_CHUNKS = 3;
/** Tolerated clock skew for times read from a cookie (ms). */
const MAX_SKEW = 60_000;
const SID = /^[A-Za-z0-9_-]{43}$/;
const CHUNK0 = /^([2-9])\.(.+)$/s;
const SET_MARK = '\u0000set';
const CLEAR_MARK = '\u0000clear';

/** Options of {@link createStatelessSessions} (and of `session()` from `sesh/stateless`). */
export interface StatelessOptions extends SessionOptions {
  /**
   * Optional revocation store (any sesh `Store`: memory, SQLite, Redis, PostgreSQL). With it,
   * `destroy()`/`regenerate()` (logout, login) deny-list the old session ID until the cookie could
   * have expired anyway, and {@link StatelessSessions.revokeUser} rejects every cookie of a user
   * issued before now. It never holds session data. Without it, a copied cookie stays valid until
   * it expires: logout cannot revoke a stolen copy.
   */
  store?: Store;
  /**
   * Application ID bound into every sealed value, so a cookie of another app sharing the same
   * secret is rejected. Default `'sesh'`; set it when several apps share a secret.
   */
  appId?: string;
  /**
   * Split a session too large for one cookie across up to this many cookies (`<name>.0`,
   * `<name>.1`, ...). Default 1 (no splitting: a too large session throws `SESSION_TOO_LARGE`);
   * at most {@link MAX_CHUNKS}.
   */
  maxChunks?: number;
  /**
   * Optional authorization version of a user (e.g. a counter bumped when roles change). It is
   * sealed into the cookie at login and compared on every request of a logged-in user; a
   * mismatch means "no session", so a replayed cookie from before a demotion is refused. Called
   * once per request with a user; cache it if it is expensive. A throw answers 503.
   */
  authVersion?: (userId: string) => number | string | Promise<number | string>;
}

/** Why a sealed session cookie was not accepted (typed, for events and tests). */
export type StatelessRejection =
  | OpenFailure
  /** The plaintext is not a sesh session payload (shape, types, ID). */
  | 'bad_payload'
  /** Issued, created or last seen more than 60 s in the future. */
  | 'future'
  /** Idle or absolute timeout passed. */
  | 'expired';

/** The session carried by a sealed cookie, as {@link StatelessSessions.openCookie} returns it. */
export interface StatelessPayload {
  /** Random session ID (never used as a cookie by itself). */
  sid: string;
  /** When this cookie was issued (ms). */
  issuedAt: number;
  /** Session creation time (ms): the basis of the absolute timeout. */
  createdAt: number;
  /** Last activity (ms): the basis of the idle timeout. */
  lastSeen: number;
  /** Absolute deadline (ms). */
  expiresAt: number;
  userId: string | null;
  /** The user's authorization version when sealed (see `authVersion`). */
  authVersion: number | string | undefined;
  data: DataRecord;
  meta: SessionMeta;
}

/** Result of {@link StatelessSessions.openCookie}. */
export type StatelessOpenResult = { ok: true; payload: StatelessPayload; keyIndex: number } | { ok: false; reason: StatelessRejection };

/**
 * The stateless engine. It is a {@link Sessions} engine, so adapters and the auth helpers use it
 * exactly like the engine of `createSessions`; its `store` holds nothing (sessions live in the
 * cookie) and has no per-user index, so `listSessions`/`revokeAllSessions` answer `NOT_SUPPORTED`:
 * use {@link StatelessSessions.revokeUser} instead.
 */
export interface StatelessSessions<D = SessionData> extends Sessions<D> {
  /** The validated options with defaults filled in. */
  readonly options: ResolvedOptions;
  /** The revocation store, if any (deny-list and per-user "valid after" entries only). */
  readonly revocationStore: Store | undefined;
  /** The application ID bound into sealed values. */
  readonly appId: string;
  /** Most cookies one session may use. */
  readonly maxChunks: number;
  /**
   * Open the session carried by the request's cookie(s). A missing, garbage, tampered, truncated,
   * expired, revoked or foreign cookie gives a new empty session, never a throw. Rejects with
   * `StoreUnavailableError` (503) only when the revocation store (or `authVersion`) fails.
   */
  load(request: RequestContext): Promise<SessionState<D>>;
  /**
   * Seal what changed and return the Set-Cookie values (including deletions of stale chunks).
   * Rejects with `SessionTooLargeError` when the session does not fit.
   */
  commit(state: SessionState<D>): Promise<CommitResult>;
  /** Open one sealed cookie value (no revocation check): for diagnostics and tests. */
  openCookie(value: string): StatelessOpenResult;
  /**
   * Reject every cookie of `userId` issued before now ("log out everywhere", password change).
   * Needs the revocation store; throws `INVALID_OPTIONS` without one.
   */
  revokeUser(userId: string): Promise<void>;
  /** Deny-list one session ID until `until` (ms). Needs the revocation store. */
  revokeSession(sid: string, until: number): Promise<void>;
  /** Close the revocation store if it owns resources. */
  close(): Promise<void>;
}

/** The `store` of a stateless engine: sessions are in the cookie, so there is nothing to find. */
const cookieOnlyStore: Store = Object.freeze({
  get: async () => null,
  create: async () => false,
  patch: async () => false,
  touch: async () => false,
  destroy: async () => false,
});

interface LoadedCookie {
  sid: string;
  key: string;
  /** Latest instant any copy of this cookie can still be accepted. */
  deadline: number;
}

/** Stand-ins of the longest session ID and `authVersion` a payload carries, for its size check. */
const SAMPLE_SID = 'x'.repeat(43);
const SAMPLE_VERSION = '0'.repeat(16);

/** Number of bits set in a small non-negative integer. */
function bitCount(n: number): number {
  let c = 0;
  for (let b = n; b !== 0; b &= b - 1) c++;
  return c;
}

/**
 * Create the stateless engine: sessions live entirely in an AES-256-GCM sealed cookie. Same
 * options as `createSessions` (secret or key ring, timeouts, cookie attributes, clock, events),
 * plus `appId`, `maxChunks`, `authVersion` and an optional revocation `store`.
 *
 * ```ts
 * const sessions = createStatelessSessions({ secret: process.env.SESSION_SECRET!, appId: 'shop' });
 * const state = await sessions.load({ cookie: req.headers.cookie, secure: true });
 * state.session.views = (state.session.views ?? 0) + 1;
 * const { setCookie } = await sessions.commit(state);
 * ```
 */
export function createStatelessSessions<D = SessionData>(options: StatelessOptions): StatelessSessions<D> {
  if (options === null || typeof options !== 'object') {
    throw new OptionsError('session options are required: pass at least `{ secret }`.');
  }
  const maxChunks = options.maxChunks ?? 1;
  if (!Number.isInteger(maxChunks) || maxChunks < 1 || maxChunks > MAX_CHUNKS) {
    throw new OptionsError(`\`maxChunks\` must be an integer from 1 to ${MAX_CHUNKS}; got ${String(options.maxChunks)}.`);
  }
  const appId = options.appId ?? 'sesh';
  if (typeof appId !== 'string' || appId.length === 0 || appId.length > 128) {
    throw new OptionsError('`appId` must be a non-empty string of at most 128 characters.');
  }
  if (options.authVersion !== undefined && typeof options.authVersion !== 'function') {
    throw new OptionsError('`authVersion` must be a function (userId) => number | string.');
  }
  const revocation = options.store;
  if (revocation !== undefined) {
    for (const m of ['get', 'create', 'patch', 'destroy'] as const) {
      if (!revocation || typeof revocation[m] !== 'function') {
        throw new OptionsError(`The revocation \`store\` has no ${m}() method; pass a sesh Store (e.g. MemoryStore, SQLite, Redis).`);
      }
    }
  }
  const opts = resolveOptions({
    ...options,
    // Device tracking (IP, User-Agent) would only inflate the cookie: there is no device list here.
    trackClient: options.trackClient ?? false,
    // Only a cheap guard before sealing: the real limit is the cookie size, checked on every write.
    maxSize: options.maxSize ?? MAX_COOKIE_BYTES * MAX_CHUNKS * 2,
  });
  const { clock, onEvent } = opts;
  const idle = opts.idleTimeout;
  const absolute = opts.absoluteTimeout;
  const name = opts.cookie.name;
  const context = [appId, name] as const;
  const ring: AeadRing = aeadRing(opts.secrets, 'session');
  const logKey = keyRing(opts.secrets.slice(0, 1), 'log-hash').keys[0] as Buffer;
  const sidHash = (id: string) => hmac(logKey, id).slice(0, 22);
  const mainCookie: CompiledCookie = compileCookie(opts.cookie);
  const chunkCookies: CompiledCookie[] = [];
  const chunkPrefix = `${name}.`;
  const chunkCookieNames: string[] = [];
  for (let i = 0; i < MAX_CHUNKS; i++) {
    chunkCookieNames.push(`${chunkPrefix}${i}`);
    chunkCookies.push(compileCookie({ ...opts.cookie, name: chunkCookieNames[i] as string }));
  }
  /**
   * Longest attributes a main Set-Cookie line can carry (Max-Age of a whole lifetime, Expires; with
   * slack for a longer Max-Age), so a value shorter than the rest of the line always fits.
   */
  const worstOverhead = mainCookie.serialize('', Math.ceil(absolute / 1000), clock.now()).length + 8;
  /** Longest cookie value worth opening: anything longer cannot come from us. */
  const maxValue = MAX_COOKIE_BYTES * MAX_CHUNKS;

  const emit = eventEmitter(onEvent, sidHash);
  const revocationCall = storeCaller(opts.storeTimeout, 'revocation store', onEvent, revocation);
  const call = <T>(operation: string, fn: () => Promise<T>): Promise<T> => revocationCall(operation, fn, undefined);

  const expiresAt = (createdAt: number, lastSeen: number) => {
    const hard = createdAt + absolute;
    return idle === false ? hard : Math.min(hard, lastSeen + idle);
  };
  const isLive = (r: StoredSession) => {
    const now = clock.now();
    if (r.createdAt > now + MAX_SKEW || r.lastSeen > now + MAX_SKEW) return false;
    if (now >= r.expiresAt || now >= r.createdAt + absolute) return false;
    return idle === false || now < r.lastSeen + idle;
  };

  const denyKey = (sid: string) => sha256(`sesh:stateless:deny:${appId}:${sid}`);
  const userKey = (userId: string) => sha256(`sesh:stateless:user:${appId}:${userId}`);

  async function revokeSession(sid: string, until: number): Promise<void> {
    if (!revocation) throw new OptionsError('revokeSession needs the revocation `store` option.');
    const now = clock.now();
    if (until <= now) return;
    const record: StoredSession = {
      data: {},
      meta: { revoked: true },
      createdAt: now,
      lastSeen: now,
      expiresAt: until,
      userId: null,
    };
    // `false` means it is already deny-listed: nothing more to do.
    await call('create', () => revocation.create(denyKey(sid), record));
  }

  async function revokeUser(userId: string): Promise<void> {
    if (!revocation) {
      throw new OptionsError('revokeUser needs the revocation `store` option: without it a sealed cookie cannot be revoked.');
    }
    if (typeof userId !== 'string' || userId.length === 0) throw new OptionsError('revokeUser needs a non-empty userId.');
    const now = clock.now();
    // Every cookie issued before `now` dies by its absolute timeout before this entry expires.
    const until = now + absolute + MAX_SKEW;
    const key = userKey(userId);
    const patch: SessionPatch = { metaSet: { validAfter: now }, expiresAt: until, lastSeen: now };
    if (await call('patch', () => revocation.patch(key, patch))) return;
    const record: StoredSession = {
      data: {},
      meta: { validAfter: now },
      createdAt: now,
      lastSeen: now,
      expiresAt: until,
      userId: null,
    };
    if (await call('create', () => revocation.create(key, record))) return;
    await call('patch', () => revocation.patch(key, patch));
  }

  /** Serialize the payload (strict JSON, as the server-side engine does). */
  function payloadJson(sid: string, issuedAt: number, r: StoredSession, version: number | string | undefined): string {
    const body: Record<string, unknown> = {
      v: 1,
      sid,
      iat: issuedAt,
      cat: r.createdAt,
      ls: r.lastSeen,
      exp: r.createdAt + absolute,
      uid: r.userId,
      d: r.data,
      m: r.meta,
    };
    if (version !== undefined) body.ue = version;
    try {
      return JSON.stringify(body);
    } catch (err) {
      throw new SeshError('UNSERIALIZABLE_VALUE', `Session data cannot be sealed as JSON: ${(err as Error).message}`, { cause: err });
    }
  }

  function openCookie(value: string): StatelessOpenResult {
    const opened = openSealed(ring, value, context, maxValue);
    if (!opened.ok) return opened;
    let raw: unknown;
    try {
      raw = parseStoredJson(opened.plaintext.toString('utf8'));
    } catch {
      return { ok: false, reason: 'bad_payload' };
    }
    if (!isPlainObject(raw) || raw.v !== 1) return { ok: false, reason: 'bad_payload' };
    const { sid, iat, cat, ls, exp, uid, ue, d, m } = raw;
    if (
      typeof sid !== 'string' ||
      !SID.test(sid) ||
      !isTime(iat) ||
      !isTime(cat) ||
      !isTime(ls) ||
      !isTime(exp) ||
      ls < cat ||
      !(uid === null || (typeof uid === 'string' && uid.length > 0)) ||
      !(ue === undefined || typeof ue === 'number' || typeof ue === 'string') ||
      !isPlainObject(d) ||
      !isPlainObject(m)
    ) {
      return { ok: false, reason: 'bad_payload' };
    }
    const now = clock.now();
    if (iat > now + MAX_SKEW || cat > now + MAX_SKEW || ls > now + MAX_SKEW) return { ok: false, reason: 'future' };
    if (now >= exp || now >= cat + absolute || (idle !== false && now >= ls + idle)) return { ok: false, reason: 'expired' };
    return {
      ok: true,
      keyIndex: opened.keyIndex,
      payload: {
        sid,
        issuedAt: iat,
        createdAt: cat,
        lastSeen: ls,
        expiresAt: Math.min(exp, expiresAt(cat, ls)),
        userId: uid,
        authVersion: ue,
        data: d,
        meta: m as SessionMeta,
      },
    };
  }

  /** Set-Cookie attribute overhead and value capacity of each cookie, for one Max-Age. */
  function layout(token: string, maxAgeSec: number | undefined): string[] | null {
    const now = clock.now();
    const single = mainCookie.serialize(token, maxAgeSec, now);
    if (single.length <= MAX_COOKIE_BYTES) return [token];
    for (let n = 2; n <= maxChunks; n++) {
      const caps: number[] = [];
      let total = 0;
      for (let i = 0; i < n; i++) {
        const overhead = (chunkCookies[i] as CompiledCookie).serialize('', maxAgeSec, now).length + (i === 0 ? 2 : 0);
        const cap = MAX_COOKIE_BYTES - overhead;
        caps.push(cap);
        total += cap;
      }
      if (total < token.length) continue;
      // Spread evenly (each chunk under its cap) so the last one is not a sliver.
      const pieces: string[] = [];
      let pos = 0;
      for (let i = 0; i < n; i++) {
        const share = Math.min(caps[i] as number, Math.ceil((token.length - pos) / (n - i)));
        pieces.push((i === 0 ? `${n}.` : '') + token.slice(pos, pos + share));
        pos += share;
      }
      return pos === token.length ? pieces : null;
    }
    return null;
  }

  const tooLargeHint =
    maxChunks < MAX_CHUNKS
      ? `Keep large data server-side (sesh/express with a store), store less in the session, or allow splitting with \`maxChunks\` (up to ${MAX_CHUNKS}).`
      : 'Keep large data server-side (sesh/express with a store) or store less in the session.';

  function maxAgeOf(r: StoredSession): number | undefined {
    return r.meta.remember === true ? Math.max(0, r.createdAt + absolute - clock.now()) / 1000 : undefined;
  }

  /** Throw SessionTooLargeError early (at `save()` or commit) when a record cannot fit. */
  function checkSize(r: StoredSession): void {
    const json = payloadJson(SAMPLE_SID, clock.now(), r, options.authVersion && r.userId ? SAMPLE_VERSION : undefined);
    // Most sessions are far below the limit: an upper bound of the UTF-8 size settles it.
    if (sealedLength(json.length * 3) + worstOverhead <= MAX_COOKIE_BYTES) return;
    const bytes = Buffer.byteLength(json);
    const length = sealedLength(bytes);
    const maxAge = maxAgeOf(r);
    if (layout('x'.repeat(length), maxAge) === null) {
      const overhead = mainCookie.serialize('', maxAge, clock.now()).length;
      throw new SessionTooLargeError(
        length + overhead,
        maxChunks === 1 ? MAX_COOKIE_BYTES : MAX_COOKIE_BYTES * maxChunks,
        'sealed session cookie',
        tooLargeHint,
      );
    }
  }

  /**
   * The one-record "store" of a request, and the engine services its session state uses
   * (`EngineInternals`): one object per request instead of a services object with its closures.
   */
  class RequestScope implements Store, EngineInternals {
    key: string | null = null;
    record: StoredSession | null = null;
    written = false;
    loaded: LoadedCookie | null = null;
    /** When the request passed the checks: the `iat` of the cookie sealed for it. */
    readonly issuedAt = clock.now();
    /** Chunks the request's chunk set announced (0: none). */
    chunkCount = 0;
    /**
     * Cookies the request carried, cleared when no longer used: bit 0 the main one, bit i + 1
     * chunk i (a number, not a Set: nothing to allocate per request).
     */
    seen = 0;

    async get(key: string): Promise<StoredSession | null> {
      return key === this.key && this.record ? structuredClone(this.record) : null;
    }
    async create(key: string, session: StoredSession): Promise<boolean> {
      return this.createSync(key, session);
    }
    async patch(key: string, patch: SessionPatch): Promise<boolean> {
      return this.patchSync(key, patch);
    }
    async touch(key: string, lastSeen: number, expires: number): Promise<boolean> {
      return this.touchSync(key, lastSeen, expires);
    }
    createSync(key: string, session: StoredSession): boolean {
      if (this.record && key === this.key) return false;
      checkSize(session);
      this.key = key;
      // Fresh top-level objects from the session state; what they share with the app's data is
      // written again (per key) before the cookie is sealed, so no deep copy is needed.
      this.record = session;
      this.written = true;
      return true;
    }
    patchSync(key: string, patch: SessionPatch): boolean {
      if (!this.record || key !== this.key) return false;
      const next = applyPatch(this.record, patch);
      checkSize(next);
      this.record = next;
      this.written = true;
      return true;
    }
    touchSync(key: string, lastSeen: number, expires: number): boolean {
      if (!this.record || key !== this.key) return false;
      this.record = { ...this.record, lastSeen, expiresAt: expires };
      // Without an idle timeout a moved lastSeen changes no deadline: no need to re-seal for it.
      if (idle !== false) this.written = true;
      return true;
    }
    get options(): ResolvedOptions {
      return opts;
    }
    get store(): Store {
      return this;
    }
    /** The scope has the synchronous writes itself (all in memory). */
    get writeNow(): SyncWrites {
      return this;
    }
    /** The scope is in memory; revocation store calls inside it carry their own timeout. */
    call<T>(_operation: string, fn: (store: Store) => Promise<T>): Promise<T> {
      return fn(this);
    }
    emit(type: SeshEventType, sid?: string | null, detail?: string, ip?: string): void {
      emit(type, sid, detail, ip);
    }
    expiresAt(createdAt: number, lastSeen: number): number {
      return expiresAt(createdAt, lastSeen);
    }
    remainingLifetime(createdAt: number): number {
      return Math.max(0, createdAt + absolute - clock.now());
    }
    isLive(r: StoredSession): boolean {
      return isLive(r);
    }
    setCookie(): string {
      return SET_MARK;
    }
    clearCookie(): string {
      return CLEAR_MARK;
    }
    async destroy(key: string): Promise<boolean> {
      if (!this.record || key !== this.key) return false;
      const loaded = this.loaded;
      // Deny-list first: when the revocation store fails, nothing has changed (the caller gets a
      // 503 and the session is intact), rather than a cookie cleared here but still valid elsewhere.
      if (loaded && loaded.key === key && revocation) await revokeSession(loaded.sid, loaded.deadline);
      if (loaded && loaded.key === key) this.loaded = null;
      this.record = null;
      this.key = null;
      return true;
    }
  }

  /** A session state on its request scope (which `scopeOf` finds again as the state's engine). */
  function newState(scope: RequestScope, ctx: RequestContext, loaded: LoadedSession | null, clear: boolean): SessionState<D> {
    return new SessionState<D>(scope, ctx, loaded, clear);
  }

  /** Every candidate sealed value in the header: the plain cookie and a reassembled chunk set. */
  function candidates(header: string | undefined, scope: RequestScope): string[] {
    // A single cookie longer than a Set-Cookie line can hold cannot be ours: refused before any crypto (A06).
    const out = readCookie(header, name, MAX_COOKIE_BYTES);
    if (out.length > 0) scope.seen |= 1;
    // Most requests carry no chunk at all: one search instead of a read per chunk name.
    if (header === undefined || !header.includes(chunkPrefix)) return out;
    const chunks: string[][] = [];
    for (let i = 0; i < MAX_CHUNKS; i++) {
      const values = readCookie(header, chunkCookieNames[i] as string, MAX_COOKIE_BYTES);
      if (values.length > 0) scope.seen |= 2 << i;
      chunks.push(values);
    }
    const first = chunks[0] as string[];
    if (first.length === 0) {
      // Later chunks without a first one are leftovers: one invalid candidate, so they get cleared.
      if (chunks.some((c) => c.length > 0)) out.push('');
      return out;
    }
    const m = first.length === 1 ? CHUNK0.exec(first[0] as string) : null;
    const n = m ? Number(m[1]) : 0;
    scope.chunkCount = n;
    let token = m ? (m[2] as string) : '';
    for (let i = 1; m && i < n; i++) {
      const part = chunks[i];
      if (part?.length !== 1) {
        token = '';
        break;
      }
      token += part[0];
    }
    // An incomplete, duplicated or oversized chunk set is one invalid candidate.
    out.push(n > 0 && n <= MAX_CHUNKS && token ? token : '');
    return out;
  }

  /** The cookie that passed its checks, with what the request carried. */
  interface Found {
    payload: StatelessPayload;
    keyIndex: number;
  }

  /**
   * Load without a promise when nothing outside the process has a say: no revocation store and no
   * `authVersion` (or an anonymous session); otherwise those checks run, then the same state.
   */
  function loadNow(ctx: RequestContext): SessionState<D> | Promise<SessionState<D>> {
    try {
      const scope = new RequestScope();
      const values = candidates(ctx.cookie, scope);
      if (values.length === 0 || refusesInsecureLoad(opts, ctx, emit)) return newState(scope, ctx, null, false);
      ctx.hadCookie = true;
      let found: Found | undefined;
      let distinct = 0;
      for (const value of values) {
        const r = openCookie(value);
        if (!r.ok) {
          const type = r.reason === 'expired' ? 'expired' : r.reason === 'malformed' ? 'malformed_cookie' : 'invalid_signature';
          emit(type, null, r.reason, ctx.ip);
          continue;
        }
        if (r.payload.sid !== found?.payload.sid) {
          distinct++;
          found = r;
        } else if (r.payload.issuedAt > found.payload.issuedAt) {
          found = r; // Two copies of one session (e.g. a lost chunk cleanup): the newer wins.
        }
      }
      if (distinct !== 1 || found === undefined) {
        // No valid value, or two different valid sessions (cookie tossing): trust neither.
        if (distinct > 1) emit('duplicate_cookie', null, undefined, ctx.ip);
        return newState(scope, ctx, null, true);
      }
      if (revocation || (options.authVersion && found.payload.userId !== null)) return revalidated(ctx, scope, values, found);
      return accepted(ctx, scope, values, found);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  function load(ctx: RequestContext): Promise<SessionState<D>> {
    const state = loadNow(ctx);
    return state instanceof Promise ? state : Promise.resolve(state);
  }

  /** The revocation store's and `authVersion`'s say on a cookie that passed its checks. */
  async function revalidated(ctx: RequestContext, scope: RequestScope, values: string[], found: Found): Promise<SessionState<D>> {
    const p = found.payload;
    if (revocation) {
      const [denied, user] = await Promise.all([
        call('get', () => revocation.get(denyKey(p.sid))),
        p.userId === null ? null : call('get', () => revocation.get(userKey(p.userId as string))),
      ]);
      const validAfter = user?.meta?.validAfter;
      if (denied) {
        emit('revoked', p.sid, 'session deny-listed');
        return newState(scope, ctx, null, true);
      }
      if (typeof validAfter === 'number' && p.issuedAt <= validAfter) {
        emit('revoked', p.sid, 'issued before the user was revoked');
        return newState(scope, ctx, null, true);
      }
    }
    if (options.authVersion && p.userId !== null) {
      const current = await currentAuthVersion(p.userId);
      if (current !== p.authVersion) {
        emit('revoked', p.sid, 'authorization version changed');
        return newState(scope, ctx, null, true);
      }
    }
    return accepted(ctx, scope, values, found);
  }

  /** The session of an accepted cookie. */
  function accepted(ctx: RequestContext, scope: RequestScope, values: string[], found: Found): SessionState<D> {
    const p = found.payload;
    const record: StoredSession = {
      data: p.data,
      meta: p.meta,
      createdAt: p.createdAt,
      lastSeen: p.lastSeen,
      expiresAt: p.expiresAt,
      userId: p.userId,
    };
    const key = storeKeyOf(p.sid);
    scope.key = key;
    scope.record = record;
    const now = clock.now();
    scope.loaded = {
      sid: p.sid,
      key,
      // Every copy of this cookie carries a lastSeen <= now, so none outlives this instant.
      deadline: Math.min(p.createdAt + absolute, idle === false ? Number.POSITIVE_INFINITY : now + idle) + MAX_SKEW,
    };
    if (found.keyIndex > 0) emit('key_rotated', p.sid);
    // Re-seal under the current key, and re-issue (cleaning up) when the request carried several
    // copies or leftover chunks.
    const untidy = values.length > 1 || ((scope.seen & 1) === 0 && bitCount(scope.seen) !== scope.chunkCount);
    return newState(scope, ctx, { id: p.sid, key, record, reissue: found.keyIndex > 0 || untidy }, false);
  }

  async function currentAuthVersion(userId: string): Promise<number | string> {
    try {
      const v = await (options.authVersion as NonNullable<StatelessOptions['authVersion']>)(userId);
      if (typeof v !== 'number' && typeof v !== 'string') throw new TypeError('authVersion must return a number or a string.');
      return v;
    } catch (err) {
      throw new StoreUnavailableError('authVersion', `authVersion(userId) failed: ${(err as Error)?.message ?? String(err)}`, err);
    }
  }

  /** The Set-Cookie values of the sealed session (`version`: the user's current `authVersion`). */
  function sealCookies(scope: RequestScope, sid: string, r: StoredSession, version: number | string | undefined): string[] {
    const token = seal(ring, payloadJson(sid, scope.issuedAt, r, version), context, opts.random);
    const maxAge = maxAgeOf(r);
    const pieces = layout(token, maxAge);
    if (!pieces) {
      throw new SessionTooLargeError(
        mainCookie.serialize(token, maxAge, clock.now()).length,
        maxChunks === 1 ? MAX_COOKIE_BYTES : MAX_COOKIE_BYTES * maxChunks,
        'sealed session cookie',
        tooLargeHint,
      );
    }
    const now = clock.now();
    let out: string[];
    let used: number;
    if (pieces.length === 1) {
      out = [mainCookie.serialize(token, maxAge, now)];
      used = 1;
    } else {
      out = pieces.map((piece, i) => (chunkCookies[i] as CompiledCookie).serialize(piece, maxAge, now));
      used = ((1 << pieces.length) - 1) << 1;
    }
    clearCookies(scope.seen & ~used, out);
    return out;
  }

  /** Append the deletions of the cookies in `bits` (as in `RequestScope.seen`) to `out`. */
  function clearCookies(bits: number, out: string[]): void {
    if (bits & 1) out.push(mainCookie.clear());
    for (let i = 0; i < MAX_CHUNKS; i++) if (bits & (2 << i)) out.push((chunkCookies[i] as CompiledCookie).clear());
  }

  /**
   * The Set-Cookie values once the session was flushed: the sealed session when it changed (or
   * must be re-issued), deletions when it ended. A promise only when `authVersion` has a say.
   */
  function cookiesAfterFlush(state: SessionState<D>, scope: RequestScope): string[] | Promise<string[]> {
    const marks = state.cookieHeaders();
    const record = scope.record;
    if (record && !state.gone && (scope.written || marks.includes(SET_MARK))) {
      const sid = state.id;
      if (state.storeKey !== scope.key) throw new SeshError('NO_SESSION', 'Stateless session state out of sync with its cookie.');
      const sealed = (version: number | string | undefined) => {
        const out = sealCookies(scope, sid, record, version);
        scope.written = false;
        return out;
      };
      return options.authVersion && record.userId !== null ? currentAuthVersion(record.userId).then(sealed) : sealed(undefined);
    }
    if (!record && marks.includes(CLEAR_MARK) && scope.seen !== 0) {
      const out: string[] = [];
      clearCookies(scope.seen, out);
      scope.seen = 0;
      return out;
    }
    return [];
  }

  function scopeOf(state: SessionState<D>): RequestScope {
    // RequestScope is this engine's own class: a state from another engine is refused.
    const scope = state.engine;
    if (!(scope instanceof RequestScope)) throw new SeshError('NO_SESSION', 'This session state was not loaded by this stateless engine.');
    return scope;
  }

  function result(state: SessionState<D>, setCookie: string[]): CommitResult {
    if (dropsInsecureCookie(setCookie, opts, state.request, emit)) return { setCookie: [] };
    return { setCookie };
  }

  async function commit(state: SessionState<D>): Promise<CommitResult> {
    const scope = scopeOf(state);
    await state.flush(true);
    return result(state, await cookiesAfterFlush(state, scope));
  }

  /**
   * {@link commit} without a promise when no other step on the session (a save, an end) is
   * running and `authVersion` has no say: the flush and the sealing are both in-process. As with
   * cookie-session, a change made after the response started is not in the cookie.
   */
  function commitNow(state: SessionState<D>): CommitResult | Promise<CommitResult> {
    try {
      const scope = scopeOf(state);
      if (!state.flushNow()) return commit(state);
      const cookies = cookiesAfterFlush(state, scope);
      return cookies instanceof Promise ? cookies.then((c) => result(state, c)) : result(state, cookies);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  warnIfInsecureDevMode(opts);

  return {
    options: opts,
    store: cookieOnlyStore,
    capabilities: { userIndex: false, purge: false, close: typeof revocation?.close === 'function', syncRead: false, syncWrite: false },
    storeKey: storeKeyOf,
    revocationStore: revocation,
    appId,
    maxChunks,
    load,
    loadNow,
    commit,
    commitNow,
    openCookie,
    revokeUser,
    revokeSession,
    sidHash,
    close: async () => {
      await revocation?.close?.();
    },
  };
}
