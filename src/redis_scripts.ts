/**
 * The Lua scripts of `RedisStore`, and beside each the functions that build
 * its `KEYS` and `ARGV`, so that the layout a script reads is written once.
 *
 * A user has two keys in one Cluster slot (`UserKeys`): the state hash and
 * the lease. The hash holds everything that lives as long as the state, so
 * that one write and one expiry cover it all:
 *
 * - `s`: the state (absent when there is none);
 * - `v`: the version, the token of the lease that wrote it last, with `~`
 *   appended when the key has an idle TTL (so a commit knows, without a read,
 *   whether it must remove one);
 * - `e`: the user's recent event ids, newest first, one per line (escaped);
 * - `a`: the raw values kept aside, newest first, a JSON array;
 * - `p`: the version the last commit replaced, so that a commit sent again
 *   after a lost reply, with another commit after it, knows it was applied
 *   (without its tag when the tag is that of `v`, written by the same store
 *   instance: `.<counter>`).
 *
 * BEGIN and COMMIT take the keys of one or more users (coalescing) and treat
 * each user exactly as if alone: each user's part runs under its own
 * `pcall`, so a user whose keys fail cannot fail the others, and each part
 * checks what can fail before its first write, so it is written whole or not
 * at all.
 *
 * Versions never repeat for a user: tokens are unique to their lease (a
 * random tag per store instance and a counter), and deleting a state keeps
 * the hash with its version (a tombstone without `s`).
 *
 * The fast path of COMMIT, and why it is safe. When the lease key still holds
 * exactly this handler's token, nobody can have written since BEGIN read the
 * state: every writer either holds the lease or takes the slow path below,
 * which marks a live holder's lease. So the fast path writes without reading
 * the version. The slow path (the lease is not ours as it was: expired, taken
 * by another, or marked) checks the version: a commit whose version changed
 * is fenced; one whose version is unchanged (a late commit of an expired
 * lease that nobody overtook) is written, and if another handler holds the
 * lease by then, its lease is marked (`!` appended, same expiry), so that its
 * holder's commit takes the slow path and is fenced instead of overwriting
 * the late one. RELEASE and RENEW accept a marked lease of their own.
 *
 * A key that holds another Redis type than ours (written by something else)
 * never blocks a user: the state key reads as its raw value (a string's
 * content, or a description) under the version FOREIGN, which the commit that
 * replaces it expects; something foreign at the lease key is moved out of
 * the way. Nothing is deleted unseen: a foreign value other than a string
 * (whose content the commit keeps aside) is renamed to
 * `<key>:foreign:<token>`.
 *
 * @module
 */

import { escapeId, unescapeId } from "./redis_keys.ts";

/** A script: its source, and how many reply items each user's part has. */
export interface ScriptSource {
  /** The Lua source. */
  readonly source: string;
  /** Reply items per user, for the scripts that take several users. */
  readonly width: number;
  /**
   * For a script that takes several users: the same script for users in
   * several slots of one Cluster master (see {@linkcode spreadCall}).
   */
  readonly spread?: ScriptSource | undefined;
  /** The error of one user's part of the reply, when that part failed. */
  failed?(items: unknown[]): string | undefined;
}

/**
 * What the scripts that take several users read their keys and arguments
 * from: `K` and `A`, which are `KEYS` and `ARGV` as given.
 */
const KEYED = `local K, A = KEYS, ARGV
`;

/**
 * The same for users whose keys lie in several slots of one Cluster master
 * (Redis 7 and later), sent on a connection to that master: KEYS holds one
 * key only (the master must serve it, or the whole call is refused);
 * ARGV[1] is the number of the users' keys, which follow, then the
 * arguments. A user's keys are then not declared: the script is flagged to
 * reach keys of several slots, and Redis checks each command's keys as it
 * runs (a key that is not on this master, say after the slot moved, fails
 * that user's part alone, before the part writes anything but a lease under
 * its own token; the caller sends that part again on its own).
 */
const SPREAD = `#!lua flags=allow-cross-slot-keys
local n = tonumber(ARGV[1])
local K, A = {}, {}
for i = 1, n do K[i] = ARGV[i + 1] end
for i = n + 2, #ARGV do A[#A + 1] = ARGV[i] end
`;

/**
 * A script that takes several users, as one keyed by the users' keys and as
 * one spread over a master's slots (`spread`).
 */
function usersScript(
  width: number,
  body: string,
  failed: (items: unknown[]) => string | undefined,
): ScriptSource {
  return {
    source: KEYED + body,
    width,
    failed,
    spread: { source: SPREAD + body, width, failed },
  };
}

/**
 * The KEYS and ARGV of a call of a script's `spread` variant, from those of
 * the keyed one: the first key alone as KEYS (Redis refuses the whole call
 * when the master does not serve it), then ARGV as that variant reads it.
 */
export function spreadCall(
  call: { keys: readonly string[]; args: readonly string[] },
): { keys: string[]; args: string[] } {
  const { keys, args } = call;
  return {
    keys: [keys[0]!],
    args: [String(keys.length), ...keys, ...args],
  };
}

/** Lua shared by the scripts. */
const PRELUDE = `
local FOREIGN = '!foreign'
-- a command whose WRONGTYPE error is an answer (something not written by
-- botnodes is at the key); any other error (a key not on this Cluster node)
-- is raised
local function try(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err and
    not string.find(r.err, 'WRONGTYPE', 1, true) then error(r) end
  return r
end
-- what a lease of ours holds: a token (hex tag, dot, counter), maybe marked
local LEASE = '^%x+%.%d+!?$'
-- the state, version and recent events of a user, whatever the key holds;
-- token: the lease that would replace a foreign value, to name where it goes
local function load(key, token)
  local r = try('HMGET', key, 's', 'v', 'e')
  if not r.err then return r[1], r[2], r[3] end
  local kind = redis.call('TYPE', key).ok
  if kind == 'string' then return redis.call('GET', key), FOREIGN, false end
  local text = 'a Redis ' .. kind .. ' at ' .. key
  if token then text = text .. ', moved to ' .. key .. ':foreign:' .. token ..
    ' when replaced' end
  return text, FOREIGN, false
end
-- whether a version is the one a lease's commit wrote (with or without the
-- '~' of an idle TTL)
local function written(version, token)
  return version == token or version == token .. '~'
end
-- the tag of a token (the store instance's part, before the dot), or nil
local function tagOf(token)
  return string.match(token, '^(%x+)%.')
end
-- whether the newline-separated list holds the id
local function holds(list, id)
  return list and string.find('\\n' .. list .. '\\n', '\\n' .. id .. '\\n', 1,
    true) ~= nil
end
-- the message of an error caught by pcall
local function message(e)
  if type(e) == 'table' then return e.err or 'ERR unknown' end
  return tostring(e)
end
`;

/** BEGIN's arguments per user: token, event id. */
const BEGIN_ARITY = 2;

/**
 * Takes the lease of one or more users. ARGV[1] is the lease time; then
 * {@linkcode beginArgs} per user. Per user: `{1, state, version}` when taken;
 * `{0, pttl, false}` when another holds it; `{2, false, false}` when the event
 * was committed already (the lease is given back at once); `{3, message,
 * false}` when this user's part failed. A BEGIN sent again after a lost reply
 * finds its own lease and goes on.
 */
export const BEGIN: ScriptSource = usersScript(
  3,
  PRELUDE + `
local function begin(state, lease, token, event)
  if not redis.call('SET', lease, token, 'NX', 'PX', A[1]) then
    local holder = try('GET', lease)
    if holder ~= token and holder ~= token .. '!' then
      -- a lease of ours always expires; anything else there is foreign:
      -- moved out of the way, never waited for
      local pttl = redis.call('PTTL', lease)
      if type(holder) == 'string' and string.match(holder, LEASE) then
        if pttl ~= -1 then return {0, pttl, false} end
      else
        redis.call('RENAME', lease, lease .. ':foreign:' .. token)
      end
      redis.call('SET', lease, token, 'PX', A[1])
    end
  end
  local s, v, e = load(state, token)
  if event ~= '' and holds(e, event) then
    redis.call('DEL', lease)
    return {2, false, false}
  end
  return {1, s, v}
end
local out = {}
for i = 0, #K / 2 - 1 do
  local a = 1 + i * ${BEGIN_ARITY}
  local ok, r = pcall(begin, K[i * 2 + 1], K[i * 2 + 2], A[a + 1], A[a + 2])
  if not ok then r = {3, message(r), false} end
  out[#out + 1] = r[1]; out[#out + 1] = r[2]; out[#out + 1] = r[3]
end
return out
`,
  (items) => items[0] === 3 ? String(items[1]) : undefined,
);

/** BEGIN's ARGV before the users' parts. */
export function beginHead(leaseTtl: number): string[] {
  return [String(leaseTtl)];
}

/**
 * One user's arguments of BEGIN: the new lease's token and the event id (''
 * for none).
 */
export function beginArgs(
  token: string,
  eventId: string | undefined,
): string[] {
  return [token, eventArg(eventId)];
}

/**
 * An event id as the scripts take it: '' for none; otherwise ':' and the id
 * escaped (`%`, braces, lone surrogates and newlines), so that an empty id is
 * an id too, two ids never meet in UTF-8, and ids separate by newlines.
 */
function eventArg(eventId: string | undefined): string {
  return eventId === undefined
    ? ""
    : `:${escapeId(eventId).replaceAll("\n", "%0A")}`;
}

/** COMMIT's arguments per user (see {@linkcode commitArgs}). */
const COMMIT_ARITY = 7;

/**
 * Writes or deletes the state of one or more users and releases their
 * leases (unless a user's part keeps it). ARGV[1] is the idle TTL or '',
 * ARGV[2] the aside limit, ARGV[3] the event id limit
 * ({@linkcode commitHead}); then {@linkcode commitArgs} per user. Per user:
 * 1 when written (or when this very commit was applied already: a client
 * that resent it after a lost reply); when fenced (the version changed), 0
 * if this lease expired, -1 if it is still held (a late commit of an expired
 * lease overtook it). A part that failed is its error
 * message.
 */
export const COMMIT: ScriptSource = usersScript(
  1,
  PRELUDE + `
local TTL, ASIDE, EVENTS = A[1], tonumber(A[2]), tonumber(A[3])
-- whether a decoded JSON value is a list of strings (what we write there)
local function strings(t)
  if type(t) ~= 'table' then return false end
  local n = 0
  for k, v in pairs(t) do
    if type(k) ~= 'number' or type(v) ~= 'string' then return false end
    n = n + 1
  end
  return n == #t
end
-- the first n lines of a newline-separated list
local function first(list, n)
  local at = 0
  for _ = 1, n do
    at = string.find(list, '\\n', at + 1, true)
    if not at then return list end
  end
  return string.sub(list, 1, at - 1)
end
local function commit(state, lease, a)
  local token, expected = A[a + 1], A[a + 2]
  local write, value = A[a + 3] == '1', A[a + 4]
  local kept, event = A[a + 5], A[a + 6]
  -- '1': the lease is kept, for the caller to release later
  local release = A[a + 7] ~= '1'
  local holder = try('GET', lease)
  local ours = holder == token or holder == token .. '!'
  local foreign = expected == FOREIGN
  local mark = false
  -- a lease kept by its commit is still ours when that commit is sent again
  -- (a lost reply): its version, written, says it was applied
  if not release and holder == token and not foreign then
    if written(try('HGET', state, 'v'), token) then return 1 end
  end
  if holder ~= token or foreign then
    -- the slow path: the version decides
    local version = try('HGET', state, 'v')
    if type(version) == 'table' then version = FOREIGN end
    version = version or ''
    if written(version, token) then return 1 end
    if version ~= expected then
      -- this very commit, sent again after another one followed it: the
      -- commit that followed read its version (kept in 'p'), or its event
      -- was remembered
      local r = try('HMGET', state, 'p', 'e')
      local p, e = false, false
      if not r.err then p, e = r[1], r[2] end
      -- 'p' without its tag: the tag of the version written with it
      if p and string.sub(p, 1, 1) == '.' then
        local tag = tagOf(version)
        p = tag and tag .. p
      end
      if written(p, token) or
        (event ~= '' and type(e) == 'string' and holds(e, event)) then
        if ours and release then redis.call('DEL', lease) end
        return 1
      end
      if ours then return -1 end
      return 0
    end
    foreign = version == FOREIGN
    -- a live holder of the lease read the state this commit replaces: its
    -- lease is marked (below), so that its commit is fenced
    mark = type(holder) == 'string' and not ours and
      string.sub(holder, -1) ~= '!' and string.match(holder, LEASE) ~= nil
  end
  -- everything that could fail comes before the first write
  local fields = {'v', TTL ~= '' and token .. '~' or token}
  -- the version this commit replaces: a commit of that version whose reply
  -- was lost, sent again, finds here that it was applied
  if expected ~= '' and not foreign then
    -- without the tag when it is this token's (same store instance): it
    -- is the tag of 'v', written with it
    local tag, p = tagOf(expected), expected
    if tag and tag == tagOf(token) then p = string.sub(expected, #tag + 1) end
    fields[#fields + 1] = 'p'; fields[#fields + 1] = p
  end
  if event ~= '' or kept ~= '' then
    local old = {false, false}
    if not foreign then old = redis.call('HMGET', state, 'e', 'a') end
    if event ~= '' then
      local e = event
      if old[1] and EVENTS > 1 then
        e = event .. '\\n' .. first(old[1], EVENTS - 1)
      end
      fields[#fields + 1] = 'e'; fields[#fields + 1] = e
    end
    if kept ~= '' then
      local list = {}
      if old[2] then
        local ok, decoded = pcall(cjson.decode, old[2])
        if ok and strings(decoded) then list = decoded
        else list = {old[2]} end
      end
      -- '=': the value stored now (what BEGIN read: the version says so),
      -- copied here byte for byte; the client's copy when it expired since
      local value = string.sub(kept, 2)
      if string.sub(kept, 1, 1) == '=' then
        value = load(state, token) or value
      end
      table.insert(list, 1, value)
      while #list > ASIDE do table.remove(list) end
      fields[#fields + 1] = 'a'; fields[#fields + 1] = cjson.encode(list)
    end
  end
  if mark then redis.call('SET', lease, holder .. '!', 'KEEPTTL') end
  if foreign then
    if redis.call('TYPE', state).ok == 'string' then redis.call('DEL', state)
    else redis.call('RENAME', state, state .. ':foreign:' .. token) end
  end
  if write then
    fields[#fields + 1] = 's'; fields[#fields + 1] = value
    redis.call('HSET', state, unpack(fields))
  else
    redis.call('HSET', state, unpack(fields))
    redis.call('HDEL', state, 's')
  end
  if TTL ~= '' then redis.call('PEXPIRE', state, TTL)
  elseif string.sub(expected, -1) == '~' then redis.call('PERSIST', state) end
  if ours and release then redis.call('DEL', lease) end
  return 1
end
local out = {}
for i = 0, #K / 2 - 1 do
  local ok, r = pcall(commit, K[i * 2 + 1], K[i * 2 + 2],
    3 + i * ${COMMIT_ARITY})
  if ok then out[i + 1] = r else out[i + 1] = message(r) end
end
return out
`,
  (items) => typeof items[0] === "string" ? items[0] : undefined,
);

/** COMMIT's ARGV before the users' parts. */
export function commitHead(
  ttl: number | undefined,
  asideLimit: number,
  seenEvents: number,
): string[] {
  return [
    ttl === undefined ? "" : String(ttl),
    String(asideLimit),
    String(seenEvents),
  ];
}

/**
 * One user's arguments of COMMIT, in the order the script reads them (its
 * `a + 1` to `a + 7`): token, version read at begin, '1' to write or '0' to
 * delete, the state, the value to keep aside ('' for none, ':' + value, or
 * '=' + value for the value stored now, which the script copies byte for
 * byte, as a client would read bytes that are not UTF-8 as U+FFFD; the
 * value given when the state expired since), the event id, '1' to keep the
 * lease (the caller releases it).
 */
export function commitArgs(
  token: string,
  version: string | undefined,
  state: string | undefined,
  aside: string | undefined,
  eventId: string | undefined,
  keep = false,
  asideStored = false,
): string[] {
  // COMMIT_ARITY items
  return [
    token,
    version ?? "",
    state === undefined ? "0" : "1",
    state ?? "",
    aside === undefined ? "" : `${asideStored ? "=" : ":"}${aside}`,
    eventArg(eventId),
    keep ? "1" : "",
  ];
}

/** Releases the lease if it is still ours (marked or not): ARGV[1] the token. */
export const RELEASE: ScriptSource = {
  width: 1,
  source: `
local holder = redis.pcall('GET', KEYS[2])
if holder == ARGV[1] or holder == ARGV[1] .. '!' then
  redis.call('DEL', KEYS[2])
end
return 1
`,
};

/** Extends the lease (ARGV[2] ms) if it is still ours (ARGV[1]): 1, else 0. */
export const RENEW: ScriptSource = {
  width: 1,
  source: `
local holder = redis.pcall('GET', KEYS[2])
if holder == ARGV[1] or holder == ARGV[1] .. '!' then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
`,
};

/**
 * Reads the state, or when ARGV[1] = 'aside' the values kept aside (a JSON
 * array, or false for none).
 */
export const READ: ScriptSource = {
  width: 1,
  source: PRELUDE + `
if ARGV[1] == 'aside' then
  local kept = redis.pcall('HGET', KEYS[1], 'a')
  if type(kept) == 'table' then return false end
  return kept
end
local s = load(KEYS[1], nil)
return s
`,
};

// The index of timers: one sorted set per store, `<prefix>:{}:timers` (an
// empty hash tag, which no user's key has), one member per scheduled timer
// (see `timerMember`), scored by when it is to be looked at: its due time, or
// later while it is claimed or deferred.

/**
 * What the scripts on the index share: `z(...)` runs a command on the index
 * (KEYS[1]); when anything but a sorted set is there (not written by
 * botnodes), it is renamed to `<key>:foreign:<n>` (the first n free) and the
 * command runs again, so that a stray value never blocks the timers.
 */
const INDEX_PRELUDE = `
local function z(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then
    if not string.find(r.err, 'WRONGTYPE', 1, true) then error(r) end
    local n = 1
    while redis.call('TYPE', KEYS[1] .. ':foreign:' .. n).ok ~= 'none' do
      n = n + 1
    end
    redis.call('RENAME', KEYS[1], KEYS[1] .. ':foreign:' .. n)
    r = redis.call(...)
  end
  return r
end
`;

/**
 * Changes entries of the index (KEYS[1]; each part passes it again, and
 * Redis reads it once): per part, ARGV holds an operation, a score and a
 * member; 'a' adds the member at the score, 'x' moves it there only if it
 * is in the index, 'r' removes it (the score is ignored). A run of parts
 * with the same operation goes as one command.
 */
export const INDEX: ScriptSource = {
  width: 1,
  source: INDEX_PRELUDE + `
local out, i = {}, 1
while i <= #ARGV do
  local op, args = ARGV[i], {}
  while i <= #ARGV and ARGV[i] == op and #args < 1000 do
    if op ~= 'r' then args[#args + 1] = ARGV[i + 1] end
    args[#args + 1] = ARGV[i + 2]
    out[#out + 1] = 1
    i = i + 3
  end
  if op == 'a' then z('ZADD', KEYS[1], unpack(args))
  elseif op == 'x' then z('ZADD', KEYS[1], 'XX', unpack(args))
  else z('ZREM', KEYS[1], unpack(args)) end
end
return out
`,
};

/** What an operation of {@linkcode INDEX} does. */
export type IndexOperation = "add" | "defer" | "remove";

/** One part of {@linkcode INDEX}: its operation, score and member. */
export function indexArgs(
  operation: IndexOperation,
  score: number,
  member: string,
): string[] {
  const op = operation === "add" ? "a" : operation === "defer" ? "x" : "r";
  return [op, scoreArg(score), member];
}

/**
 * The entries of the index to be looked at by ARGV[1] (a score, or '+inf'),
 * earliest first, at most ARGV[2]: a flat list of member, score.
 */
export const DUE: ScriptSource = {
  width: 1,
  source: INDEX_PRELUDE +
    `return z('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2], 'WITHSCORES')`,
};

/**
 * Claims the entries of the index (KEYS[1]) to be looked at by ARGV[1],
 * earliest first, at most ARGV[2]: moves each to the score ARGV[3], in one
 * atomic step, so that no other claim takes them before then. Replies the
 * score of the earliest entry afterwards (false for an empty index), then
 * the members claimed.
 */
export const CLAIM: ScriptSource = {
  width: 1,
  source: INDEX_PRELUDE + `
local taken = z('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE',
  'LIMIT', 0, ARGV[2])
for i = 1, #taken, 1000 do
  local args = {}
  for j = i, math.min(i + 999, #taken) do
    args[#args + 1] = ARGV[3]; args[#args + 1] = taken[j]
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local out = {first[2] or false}
for _, member in ipairs(taken) do out[#out + 1] = member end
return out
`,
};

/** A score as the scripts take it: '+inf' for `Infinity`. */
export function scoreArg(score: number): string {
  return score === Infinity ? "+inf" : String(score);
}

/**
 * The digits of a due time in a member: 64 of them, 6 bits each, in ASCII
 * order, so that members of one score sort by due time.
 */
const DIGITS =
  "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
/** How many digits: 7 cover due times up to 2^42 ms, the year 2109. */
const WIDTH = 7;
const LIMIT = 64 ** WIDTH;

/**
 * The member of a timer in the index: the due time in 7 digits of base 64,
 * then the user id. A due time that is not a whole number from 0 to 2^42
 * ms (a clock of its own) is written `~<due>\n<user id>` instead. Short:
 * a member of up to 14 bytes (user ids up to 7 characters) takes 16 bytes
 * less of Redis' memory than a longer one. An id that UTF-8 cannot carry
 * (a lone surrogate: Redis would hand back U+FFFD, another user) is
 * escaped, and its member starts with `%`, which no other member does.
 */
export function timerMember(userId: string, due: number): string {
  if (!wellFormed(userId)) return `%${timerMember(escapeId(userId), due)}`;
  if (!(Number.isInteger(due) && due >= 0 && due < LIMIT)) {
    return `~${due}\n${userId}`;
  }
  let digits = "";
  for (let rest = due, i = 0; i < WIDTH; i++, rest = Math.floor(rest / 64)) {
    digits = DIGITS[rest % 64] + digits;
  }
  return digits + userId;
}

/**
 * The user and due time of a member (see {@linkcode timerMember}), or
 * `undefined` for a member botnodes cannot have written.
 */
export function parseTimerMember(
  member: string,
): { userId: string; due: number } | undefined {
  const timer = parseAny(member);
  // only a member botnodes writes: another (`~5\nu`, `~0x10\nu`) would be
  // read as that user's timer, but never removed with it
  return timer && timerMember(timer.userId, timer.due) === member
    ? timer
    : undefined;
}

/** A member as `timerMember` would read, whether it wrote it or not. */
function parseAny(
  member: string,
): { userId: string; due: number } | undefined {
  if (!member.startsWith("%")) return parsePlain(member);
  // one `%` only (no recursion), around an escaped id
  const timer = parsePlain(member.slice(1));
  return timer && { userId: unescapeId(timer.userId), due: timer.due };
}

/** A member without the `%` of an escaped id. */
function parsePlain(
  member: string,
): { userId: string; due: number } | undefined {
  if (member.startsWith("~")) {
    const cut = member.indexOf("\n");
    const due = cut > 1 ? Number(member.slice(1, cut)) : NaN;
    return Number.isFinite(due)
      ? { userId: member.slice(cut + 1), due }
      : undefined;
  }
  if (member.length < WIDTH) return undefined;
  let due = 0;
  for (let i = 0; i < WIDTH; i++) {
    const digit = DIGITS.indexOf(member[i]!);
    if (digit < 0) return undefined;
    due = due * 64 + digit;
  }
  return { userId: member.slice(WIDTH), due };
}

/** The body of SCAN and SCAN_CLUSTER. */
const SCAN_BODY = `
local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local out = {r[1]}
for _, key in ipairs(r[2]) do
  -- a key a Cluster master lists but does not serve (a slot it imports, or
  -- one it lost in a failover) cannot be read here: listed without its
  -- state (false), to be read by a keyed call that the client routes
  local ok, s = pcall(load, key, nil)
  if ok then
    if s then out[#out + 1] = key; out[#out + 1] = s end
  else
    local e = type(s) == 'table' and s.err or tostring(s)
    -- any other failure fails the scan, as before: a user never vanishes
    if not string.find(e, 'non local key', 1, true) then error(s) end
    out[#out + 1] = key; out[#out + 1] = false
  end
end
return out
`;

/**
 * One round of a scan of the users: `SCAN` from cursor ARGV[1] with MATCH
 * ARGV[2] and COUNT ARGV[3], then each state key's state, read as `READ`
 * reads it (keys without a state, the tombstones, are left out). Replies
 * the next cursor, then key, state, key, state...; a key the server lists
 * but cannot read (a Cluster master importing its slot) comes with `false`
 * (nil) for a state, to be read by a keyed call. It declares no keys: a
 * read of what `SCAN` found, on the server that holds it.
 */
export const SCAN: ScriptSource = { width: 1, source: PRELUDE + SCAN_BODY };

/**
 * SCAN for one master of a Cluster (Redis 7+): flagged read-only, and
 * allowed to read the keys of every slot of its server.
 */
export const SCAN_CLUSTER: ScriptSource = {
  width: 1,
  source: "#!lua flags=no-writes,allow-cross-slot-keys\n" + PRELUDE +
    SCAN_BODY,
};

/**
 * `String.prototype.isWellFormed` (every runtime has it; typed here so that
 * the sources compile with TypeScript's lib before ES2024 too).
 */
const wellFormed = (text: string): boolean =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();
