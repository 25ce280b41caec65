/**
 * The Lua scripts of `RedisStore`, and beside each the functions that build
 * its `KEYS` and `ARGV`, so that the layout a script reads is written once.
 *
 * The keys of a user, all in the same Cluster slot, go to every script as a
 * group of four (`UserKeys`): the state hash (fields `s` state, `v`
 * version), the lease, the aside list, the list of recent committed event
 * ids. BEGIN and COMMIT take the groups of one or more users (batching) and
 * treat each user exactly as if alone: each user's part runs under its own
 * `pcall`, so a user whose keys fail cannot fail the others, and each part
 * checks what can fail before its first write, so it is written whole or not
 * at all.
 *
 * Versions: the `v` field holds the token of the lease that wrote it last.
 * Tokens are unique to their lease (a random tag per store instance and a
 * counter), so a version never repeats for a user; deleting a state keeps the
 * hash with its version (a tombstone without `s`), so that a delete does not
 * bring back a version a stale lease still holds.
 *
 * A key that holds another Redis type than ours (written by something else)
 * never blocks a user: the state key reads as its raw value (a string's
 * content, or a description) under the version FOREIGN, which the commit that
 * replaces it expects; the aside and events lists are moved out of the way.
 * Nothing is deleted that the user could want back: a foreign value other
 * than a string is renamed to `<key>:foreign:<token>`.
 *
 * @module
 */

import { escapeId } from "./redis_keys.ts";

/** A script: its source, and how many reply items each user's part has. */
export interface ScriptSource {
  /** The Lua source. */
  readonly source: string;
  /** Reply items per user, for the scripts that take several users. */
  readonly width: number;
}

/** Lua shared by the scripts. */
const PRELUDE = `
local FOREIGN = '!foreign'
-- what a lease token looks like (see RedisStore): hex tag, dot, counter
local TOKEN = '^%x+%.%d+$'
-- the state and version of a user, whatever the key holds; token: the
-- lease that would replace a foreign value, to name where it goes
local function load(key, token)
  local sv = redis.pcall('HMGET', key, 's', 'v')
  if not sv.err then return sv[1], sv[2] end
  local kind = redis.call('TYPE', key).ok
  if kind == 'string' then return redis.call('GET', key), FOREIGN end
  local text = 'a Redis ' .. kind .. ' at ' .. key
  if token then text = text .. ', moved to ' .. key .. ':foreign:' .. token ..
    ' when replaced' end
  return text, FOREIGN
end
-- the message of an error caught by pcall
local function message(e)
  if type(e) == 'table' then return e.err or 'ERR unknown' end
  return tostring(e)
end
-- pushes a value on a list of ours, first moving aside a key of another type
local function push(key, value, keep, token)
  if type(redis.pcall('LPUSH', key, value)) == 'table' then
    redis.call('RENAME', key, key .. ':foreign:' .. token)
    redis.call('LPUSH', key, value)
  end
  redis.call('LTRIM', key, 0, keep - 1)
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
export const BEGIN: ScriptSource = {
  width: 3,
  source: PRELUDE + `
local function begin(state, lease, events, token, event)
  if not redis.call('SET', lease, token, 'NX', 'PX', ARGV[1]) then
    local holder = redis.pcall('GET', lease)
    if holder ~= token then
      -- a lease of ours holds a token and always expires; anything else
      -- there is foreign: moved out of the way, never waited for
      local pttl = redis.call('PTTL', lease)
      if type(holder) == 'string' and string.match(holder, TOKEN) then
        if pttl ~= -1 then return {0, pttl, false} end
      else
        redis.call('RENAME', lease, lease .. ':foreign:' .. token)
      end
      redis.call('SET', lease, token, 'PX', ARGV[1])
    end
  end
  if event ~= '' then
    if type(redis.pcall('LPOS', events, event)) == 'number' then
      redis.call('DEL', lease)
      return {2, false, false}
    end
  end
  local s, v = load(state, token)
  return {1, s, v}
end
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local a = 1 + i * ${BEGIN_ARITY}
  local ok, r = pcall(begin, KEYS[i * 4 + 1], KEYS[i * 4 + 2],
    KEYS[i * 4 + 4], ARGV[a + 1], ARGV[a + 2])
  if not ok then r = {3, message(r), false} end
  out[#out + 1] = r[1]; out[#out + 1] = r[2]; out[#out + 1] = r[3]
end
return out
`,
};

/** BEGIN's ARGV before the users' parts. */
export function beginHead(leaseTtl: number): string[] {
  return [String(leaseTtl)];
}

/**
 * One user's arguments of BEGIN: the new lease's token and the event id (''
 * for none, ':' + id otherwise, so that an empty id is an id too).
 */
export function beginArgs(
  token: string,
  eventId: string | undefined,
): string[] {
  return [token, eventArg(eventId)];
}

/** An event id as the scripts take it: '' for none; escaped, after ':'. */
function eventArg(eventId: string | undefined): string {
  return eventId === undefined ? "" : `:${escapeId(eventId)}`;
}

/** COMMIT's arguments per user (see {@linkcode commitArgs}). */
const COMMIT_ARITY = 7;

/**
 * Writes or deletes the state of one or more users and releases their
 * leases. ARGV[1] is the idle TTL or '', ARGV[2] the aside limit, ARGV[3] the
 * event id limit ({@linkcode commitHead}); then {@linkcode commitArgs} per
 * user. Per user: 1 at once when this very commit was applied already (a
 * client that resent it after a lost reply); when fenced (the version
 * changed), 0 if this lease expired, -1 if it is still held (a holder whose
 * lease had expired wrote meanwhile); else writes or deletes the state, keeps
 * the value aside, remembers the event, refreshes every key's idle TTL,
 * releases the lease if still ours, 1. A part that failed is its error
 * message.
 */
export const COMMIT: ScriptSource = {
  width: 1,
  source: PRELUDE + `
local function commit(state, lease, aside, events, a)
  local token, expected = ARGV[a + 1], ARGV[a + 2]
  local write, value = ARGV[a + 3] == '1', ARGV[a + 4]
  local keep, kept, event = ARGV[a + 5] == '1', ARGV[a + 6], ARGV[a + 7]
  local version = redis.pcall('HGET', state, 'v')
  local foreign = type(version) == 'table'
  if foreign then version = FOREIGN end
  version = version or ''
  if version == token then return 1 end
  if version ~= expected then
    -- this very commit, sent again after another one followed it: its event
    -- was remembered in it
    if event ~= '' and type(redis.pcall('LPOS', events, event)) == 'number'
    then return 1 end
    if redis.pcall('GET', lease) == token then return -1 end
    return 0
  end
  -- the writes that could meet a key of another type come first
  if keep then push(aside, kept, ARGV[2], token) end
  if event ~= '' then push(events, event, ARGV[3], token) end
  if foreign then
    if redis.call('TYPE', state).ok == 'string' then redis.call('DEL', state)
    else redis.call('RENAME', state, state .. ':foreign:' .. token) end
  end
  if write then
    redis.call('HSET', state, 's', value, 'v', token)
  else
    redis.call('HSET', state, 'v', token)
    redis.call('HDEL', state, 's')
  end
  if ARGV[1] ~= '' then
    redis.call('PEXPIRE', state, ARGV[1])
    -- the lists expire with the state; something foreign there is left be
    if event ~= '' or redis.call('TYPE', events).ok == 'list' then
      redis.call('PEXPIRE', events, ARGV[1])
    end
    if keep or redis.call('TYPE', aside).ok == 'list' then
      redis.call('PEXPIRE', aside, ARGV[1])
    end
  else
    redis.call('PERSIST', state)
    if event ~= '' then redis.call('PERSIST', events) end
    if keep then redis.call('PERSIST', aside) end
  end
  if redis.pcall('GET', lease) == token then redis.call('DEL', lease) end
  return 1
end
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local k = i * 4
  local ok, r = pcall(commit, KEYS[k + 1], KEYS[k + 2], KEYS[k + 3],
    KEYS[k + 4], 3 + i * ${COMMIT_ARITY})
  if ok then out[i + 1] = r else out[i + 1] = message(r) end
end
return out
`,
};

/** COMMIT's ARGV before the users' parts. */
export function commitHead(
  ttl: number | undefined,
  asideLimit: number,
  seenEvents: number,
): string[] {
  return [
    ttl === undefined ? "" : String(ttl),
    String(asideLimit),
    String(
      seenEvents,
    ),
  ];
}

/**
 * One user's arguments of COMMIT, in the order the script reads them (its
 * `a + 1` to `a + 7`).
 */
export function commitArgs(
  token: string,
  version: string | undefined,
  state: string | undefined,
  aside: string | undefined,
  eventId: string | undefined,
): string[] {
  // COMMIT_ARITY items
  return [
    token,
    version ?? "",
    state === undefined ? "0" : "1",
    state ?? "",
    aside === undefined ? "0" : "1",
    aside ?? "",
    eventArg(eventId),
  ];
}

/** Releases the lease if it is still ours: ARGV[1] the token. */
export const RELEASE: ScriptSource = {
  width: 1,
  source: `
if redis.pcall('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`,
};

/** Extends the lease (ARGV[2] ms) if it is still ours (ARGV[1]): 1, else 0. */
export const RENEW: ScriptSource = {
  width: 1,
  source: `
if redis.pcall('GET', KEYS[2]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
`,
};

/** Reads the state, or the aside list when ARGV[1] = 'aside'. */
export const READ: ScriptSource = {
  width: 1,
  source: PRELUDE + `
if ARGV[1] == 'aside' then
  local kept = redis.pcall('LRANGE', KEYS[3], 0, -1)
  if not kept.err then return kept end
  -- something foreign there, moved aside by the next commit that keeps one
  local kind = redis.call('TYPE', KEYS[3]).ok
  if kind == 'string' then return {redis.call('GET', KEYS[3])} end
  return {'a Redis ' .. kind .. ' at ' .. KEYS[3]}
end
local s = load(KEYS[1], nil)
return s
`,
};
