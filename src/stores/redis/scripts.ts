import { createHash } from 'node:crypto';

/**
 * The Lua scripts of the Redis store. Each touches exactly one key (`KEYS[1]`), so each is atomic
 * on standalone Redis and on Cluster alike (one key = one slot).
 *
 * Session hash layout (see docs/redis.md): `_c` createdAt, `_l` lastSeen, `_e` expiresAt, `_u`
 * userId (absent when anonymous), `d:<name>` JSON of each data key, `m:<name>` JSON of each meta key.
 * `ARGV[1]` of the session scripts is the store clock's "now" in ms: a record whose `_e` is at or
 * before it is treated as absent, exactly as `get` does, even before Redis' own TTL removes it.
 */

/** One script: its source and SHA-1 (what EVALSHA wants). */
export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, body: string): Script {
  const source = `${LIB}\n${body}`;
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Helpers shared by the scripts: chunked HSET/HDEL so a large session never overflows Lua's stack. */
const LIB = `
-- A record is live while its '_e' (the value of HGET/HMGET, false when absent) is after now.
local function alive(e, now)
  return e and tonumber(e) > tonumber(now)
end
local function argvRange(command, key, from, to)
  while from <= to do
    local last = math.min(from + 199, to)
    redis.call(command, key, unpack(ARGV, from, last))
    from = last + 1
  end
end
-- The user index set must outlive every session in it. '_ix' remembers how long the set was last
-- made to live; only when the session would outlive it (h: the HMGET of '_e', '_u', '_ix') is the
-- set extended (by the caller, with the returned proposal), so a logged-in session costs an extra
-- round trip about once per slack.
local function extendsIndex(h, at)
  return h[2] and not (h[3] and tonumber(h[3]) >= tonumber(at))
end`;

/**
 * create: insert if absent (or dead). ARGV: now, pexpireat, then field/value pairs (times included).
 * Returns 1 when inserted, 0 when a live record exists.
 */
export const CREATE = script(
  'create',
  `
if alive(redis.call('HGET', KEYS[1], '_e'), ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
argvRange('HSET', KEYS[1], 3, #ARGV)
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1`,
);

/**
 * patch: per-field update of a live record (update-if-exists). The caller puts everything to write
 * in the two lists, the times and the user fields included, so the script runs three Redis commands
 * (every command a script calls costs about as much as the script's own start).
 * ARGV: 1 now, 2 pexpireat, 3 user op ('' keeps the user, anything else means the lists rebind or
 * clear it), 4 index expiry proposal, 5 n = number of fields to delete, then the n field names,
 * then field/value pairs to set.
 * Returns {0} when there is no live record, else {1, previousUserId-or-false, extendIndexTo-or-false}.
 */
export const PATCH = script(
  'patch',
  `
local h = redis.call('HMGET', KEYS[1], '_e', '_u', '_ix')
if not alive(h[1], ARGV[1]) then return {0} end
local n = tonumber(ARGV[5])
argvRange('HDEL', KEYS[1], 6, 5 + n)
argvRange('HSET', KEYS[1], 6 + n, #ARGV)
local extend = false
if ARGV[3] == '' and extendsIndex(h, ARGV[2]) then
  redis.call('HSET', KEYS[1], '_ix', ARGV[4])
  extend = ARGV[4]
end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return {1, h[2], extend}`,
);

/**
 * touch: move lastSeen/expiresAt of a live record.
 * ARGV: 1 now, 2 lastSeen, 3 expiresAt, 4 pexpireat, 5 index expiry proposal.
 * Returns {0} when there is no live record, else {1, userId-or-false, extendIndexTo-or-false}.
 */
export const TOUCH = script(
  'touch',
  `
local h = redis.call('HMGET', KEYS[1], '_e', '_u', '_ix')
if not alive(h[1], ARGV[1]) then return {0} end
local extend = false
if extendsIndex(h, ARGV[4]) then
  redis.call('HSET', KEYS[1], '_l', ARGV[2], '_e', ARGV[3], '_ix', ARGV[5])
  extend = ARGV[5]
else
  redis.call('HSET', KEYS[1], '_l', ARGV[2], '_e', ARGV[3])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return {1, h[2], extend}`,
);

/**
 * destroy: delete the record. ARGV: now, and optionally a userId: when given, delete only if the
 * record is bound to that user (used by destroyByUser, so a re-bound session is never touched).
 * Returns {found, live, userId-or-false}: found 0 = no record (or not that user's), 1 = deleted.
 */
export const DESTROY = script(
  'destroy',
  `
local h = redis.call('HMGET', KEYS[1], '_e', '_u')
if not h[1] then return {0, 0, h[2]} end
if ARGV[2] and h[2] ~= ARGV[2] then return {0, 0, h[2]} end
redis.call('DEL', KEYS[1])
return {1, alive(h[1], ARGV[1]) and 1 or 0, h[2]}`,
);

/**
 * index: add a session key to a user's set and make the set live at least until pexpireat (never
 * shortens it). ARGV: member, pexpireat. Works on Redis 5+ (no PEXPIREAT GT).
 */
export const INDEX = script(
  'index',
  `
redis.call('SADD', KEYS[1], ARGV[1])
local at = tonumber(ARGV[2])
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
  return 1
end
local t = redis.call('TIME')
local current = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + pttl
if at > current then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1`,
);
