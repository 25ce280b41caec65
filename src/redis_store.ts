/**
 * `RedisStore`: user state in Redis (or Redis Cluster, Valkey, Upstash),
 * behind a minimal command interface.
 *
 * @module
 */

import { waitForLease } from "./_lease_wait.ts";
import { LeaseLostError, StoreError } from "./errors.ts";
import {
  ASIDE_LIMIT,
  type BeginOptions,
  type CommitOptions,
  type Lease,
  type ResolvedStoreOptions,
  resolveStoreOptions,
  type StateStore,
  type StoreOptions,
  type StoreTiming,
} from "./store.ts";

/**
 * The Redis commands `RedisStore` sends: `EVALSHA`, and `EVAL` when the
 * server answers `NOSCRIPT`. An ioredis `Redis` or `Cluster` is one as it is;
 * for node-redis and `@upstash/redis`, use the adapters in
 * `@botnodes/core/node-redis` and `@botnodes/core/upstash`.
 *
 * Both methods resolve to the script's reply as the client decodes it:
 * strings, numbers (integers), `null` and arrays of those.
 *
 * @example An ioredis client fits as is
 * ```ts ignore
 * import Redis from "ioredis";
 * import type { RedisLike } from "@botnodes/core";
 *
 * const redis: RedisLike = new Redis(process.env.REDIS_URL!);
 * ```
 */
export interface RedisLike {
  /** Runs a Lua script: `EVAL script numkeys key... arg...`. */
  eval(
    script: string,
    numkeys: number,
    ...keysAndArgs: string[]
  ): Promise<unknown>;
  /**
   * `true` for a client of a Redis Cluster (an ioredis `Cluster` says so
   * itself; the node-redis adapter sets it for `createCluster` clients):
   * `RedisStore` then refuses the `batch` option, whose calls span slots.
   */
  readonly isCluster?: boolean | undefined;
  /** Runs a cached Lua script: `EVALSHA sha1 numkeys key... arg...`. */
  evalsha(
    sha1: string,
    numkeys: number,
    ...keysAndArgs: string[]
  ): Promise<unknown>;
}

/**
 * Options of {@linkcode RedisStore}.
 *
 * @example
 * ```ts
 * import type { RedisStoreOptions } from "@botnodes/core";
 *
 * const options: RedisStoreOptions = { prefix: "foodbot", ttl: 30 * 86_400_000 };
 * ```
 */
export interface RedisStoreOptions extends StoreOptions {
  /**
   * The prefix of every key, so that several bots share one Redis. Must not
   * contain `{` or `}`. Default `"botnodes"`.
   */
  readonly prefix?: string | undefined;
  /**
   * Send the lease scripts of users whose events run at the same moment
   * together, as one script call per event-loop turn instead of one per
   * user. Each event still takes two round trips and stays atomic; Redis and
   * the client do less work per event. Standalone Redis only: on a Cluster
   * users live in different slots. Default `false`.
   */
  readonly batch?: boolean | undefined;
}

// The keys of a user, all in the same Cluster slot, go to every script as a
// group of four: the state hash (fields s: state, v: version), the lease, the
// aside list, the list of recent committed event ids. BEGIN and COMMIT take
// the groups of one or more users (see the `batch` option) and treat each
// user exactly as if alone: each user's part runs under its own pcall, so a
// user whose keys fail cannot fail the others, and each part checks what can
// fail before its first write, so it is written whole or not at all.
//
// Versions: the `v` field holds the token of the lease that wrote it last.
// Tokens are unique to their lease (a random tag per store instance and a
// counter), so a version never repeats for a user; deleting a state keeps
// the hash with its version (a tombstone without `s`), so that a delete does
// not bring back a version a stale lease still holds.
//
// A key that holds another Redis type than ours (written by something else)
// never blocks a user: the state key reads as its raw value (a string's
// content, or a description) under the version FOREIGN, which the commit
// that replaces it expects; the aside and events lists are moved out of the
// way. Nothing is deleted that the user could want back: a foreign value
// other than a string is renamed to `<key>:foreign:<token>`.

/** Lua shared by the scripts. */
const PRELUDE = `
local FOREIGN = '!foreign'
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

/**
 * Per user (ARGV[1] the lease time; then token and event id per user, the
 * event id '' for none and ':' + id otherwise): takes the lease and returns
 * {1, state, version}; {0, pttl, false} when the lease is held by another;
 * {2, false, false} when the event was committed already (the lease is given
 * back at once); {3, message, false} when this user's part failed. A BEGIN
 * sent again after a lost reply finds its own lease and goes on.
 */
const BEGIN = PRELUDE + `
local function begin(state, lease, events, token, event)
  if not redis.call('SET', lease, token, 'NX', 'PX', ARGV[1]) then
    local holder = redis.pcall('GET', lease)
    if holder ~= token then
      local pttl = redis.call('PTTL', lease)
      -- our leases always expire: a key without expiry is not one
      if pttl ~= -1 then return {0, pttl, false} end
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
  local ok, r = pcall(begin, KEYS[i * 4 + 1], KEYS[i * 4 + 2],
    KEYS[i * 4 + 4], ARGV[i * 2 + 2], ARGV[i * 2 + 3])
  if not ok then r = {3, message(r), false} end
  out[#out + 1] = r[1]; out[#out + 1] = r[2]; out[#out + 1] = r[3]
end
return out
`;

/**
 * Per user (ARGV[1] the idle TTL or '', ARGV[2] the aside limit, ARGV[3] the
 * event id limit; then per user token, version read at begin, '1' to write
 * or '0' to delete, state, '1' to keep a value aside, that value, event id or
 * ''): 1 at once when this very commit was applied already (a client that
 * resent it after a dropped connection); when fenced (the version changed),
 * 0 if this lease expired, -1 if it is still held (a holder whose lease had
 * expired wrote meanwhile); else writes or deletes the state, keeps the
 * value aside, remembers the event, releases the lease if still ours, 1. A
 * part that failed is its error message.
 */
const COMMIT = PRELUDE + `
local function commit(state, lease, aside, events, a)
  local token = ARGV[a + 1]
  local version = redis.pcall('HGET', state, 'v')
  local foreign = type(version) == 'table'
  if foreign then version = FOREIGN end
  version = version or ''
  if version == token then return 1 end
  if version ~= ARGV[a + 2] then
    if redis.pcall('GET', lease) == token then return -1 end
    return 0
  end
  -- the writes that could meet a key of another type come first
  if ARGV[a + 5] == '1' then push(aside, ARGV[a + 6], ARGV[2], token) end
  if ARGV[a + 7] ~= '' then push(events, ARGV[a + 7], ARGV[3], token) end
  if foreign then
    if redis.call('TYPE', state).ok == 'string' then redis.call('DEL', state)
    else redis.call('RENAME', state, state .. ':foreign:' .. token) end
  end
  if ARGV[a + 3] == '1' then
    redis.call('HSET', state, 's', ARGV[a + 4], 'v', token)
  else
    redis.call('HSET', state, 'v', token)
    redis.call('HDEL', state, 's')
  end
  if ARGV[1] ~= '' then
    redis.call('PEXPIRE', state, ARGV[1])
    redis.call('PEXPIRE', events, ARGV[1])
    redis.call('PEXPIRE', aside, ARGV[1])
  else
    redis.call('PERSIST', state)
    if ARGV[a + 7] ~= '' then redis.call('PERSIST', events) end
    if ARGV[a + 5] == '1' then redis.call('PERSIST', aside) end
  end
  if redis.pcall('GET', lease) == token then redis.call('DEL', lease) end
  return 1
end
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local k = i * 4
  local ok, r = pcall(commit, KEYS[k + 1], KEYS[k + 2], KEYS[k + 3],
    KEYS[k + 4], 3 + i * 7)
  if ok then out[i + 1] = r else out[i + 1] = message(r) end
end
return out
`;

/** Releases the lease if it is still ours. */
const RELEASE = `
if redis.pcall('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`;

/** Extends the lease (ARGV[2] ms) if it is still ours (ARGV[1]): 1, else 0. */
const RENEW = `
if redis.pcall('GET', KEYS[2]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
`;

/** Reads the state, or the aside list when ARGV[1] = 'aside'. */
const READ = PRELUDE + `
if ARGV[1] == 'aside' then return redis.call('LRANGE', KEYS[3], 0, -1) end
local s = load(KEYS[1], nil)
return s
`;

/**
 * What a user id may not hold as is in a key: `%` (the escape), braces (the
 * hash tag) and lone surrogates (UTF-8 would turn them all into U+FFFD, so
 * two ids could meet in one key).
 */
const UNSAFE =
  /[%{}]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function escapeChar(char: string): string {
  if (char === "%") return "%25";
  if (char === "{") return "%7B";
  if (char === "}") return "%7D";
  return `%u${char.charCodeAt(0).toString(16).toUpperCase()}`;
}

type ScriptName = "begin" | "commit" | "release" | "renew" | "read";

interface Script {
  source: string;
  /** The SHA1, once computed. */
  sha: string | undefined;
  computing: Promise<string>;
}

/** How many users' keys are kept computed. */
const KEY_CACHE_SIZE = 4_096;

/** The most users in one batched script call. */
const MAX_BATCH = 128;

/** One user's part of a BEGIN or COMMIT call, waiting to be sent. */
interface Call {
  userId: string;
  args: string[];
  resolve(reply: unknown[]): void;
  reject(error: unknown): void;
}

/** Ids longer than this are not kept in the key cache. */
const MAX_CACHED_ID = 256;

/**
 * A random tag, unique to a store instance: with a counter, it makes lease
 * tokens that never repeat across instances, processes and restarts.
 */
function randomTag(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(12)),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
}

/**
 * A `StateStore` in Redis: one hash per user, a lease key and a list of
 * values kept aside, all sharing the user's `{...}` hash tag so that they live
 * in one Redis Cluster slot. An uncontended event costs exactly two round
 * trips: one script takes the lease and reads the state, one checks the
 * version, writes and releases.
 *
 * Keys: `<prefix>:{<id>}` (hash: `s` state, `v` version),
 * `<prefix>:{<id>}:lease`, `<prefix>:{<id>}:aside` and
 * `<prefix>:{<id>}:events` (recent event ids), where `<id>` is the user
 * id with `%`, `{`, `}` and lone surrogates percent-encoded (and the empty id
 * written `%`), so no id reaches another user's keys.
 *
 * A commit that fails with a `StoreError` because the connection broke may or
 * may not have been applied (Redis ran the script or not, never half of it).
 *
 * @example With ioredis
 * ```ts ignore
 * import Redis from "ioredis";
 * import { RedisStore } from "@botnodes/core";
 *
 * const store = new RedisStore(new Redis(process.env.REDIS_URL!), {
 *   prefix: "foodbot",
 * });
 * ```
 */
export class RedisStore implements StateStore {
  readonly #redis: RedisLike;
  readonly #prefix: string;
  readonly #options: ResolvedStoreOptions;
  readonly #scripts: Record<ScriptName, Script>;
  readonly #tag = randomTag();
  #tokens = 0;
  readonly #keyCache = new Map<
    string,
    readonly [string, string, string, string]
  >();
  readonly #batch: boolean;
  readonly #queued: Record<"begin" | "commit", Call[]> = {
    begin: [],
    commit: [],
  };

  /**
   * Makes a store on a Redis client.
   *
   * @param redis A client with `eval` and `evalsha` (an ioredis `Redis` or
   * `Cluster`, or an adapter).
   * @param options The key prefix, lease and idle times, and clock.
   * @throws {TypeError} When `redis` lacks the commands or the prefix has a
   * brace.
   * @throws {RangeError} When a time option is not a positive number.
   */
  constructor(redis: RedisLike, options: RedisStoreOptions = {}) {
    if (
      redis === null || typeof redis !== "object" ||
      typeof redis.eval !== "function" || typeof redis.evalsha !== "function"
    ) {
      throw new TypeError(
        "Cannot create RedisStore: the client must have eval and evalsha methods",
      );
    }
    const prefix = options.prefix ?? "botnodes";
    if (/[{}]/.test(prefix)) {
      throw new TypeError(
        `Cannot create RedisStore: prefix "${prefix}" contains a brace`,
      );
    }
    if (options.batch && redis.isCluster) {
      throw new TypeError(
        'Cannot create RedisStore: option "batch" needs a standalone Redis, not a Cluster',
      );
    }
    this.#redis = redis;
    this.#prefix = prefix;
    this.#batch = options.batch ?? false;
    this.#options = resolveStoreOptions(options);
    const script = (source: string): Script => {
      const made: Script = { source, sha: undefined, computing: sha1(source) };
      made.computing.then((sha) => made.sha = sha, () => {});
      return made;
    };
    this.#scripts = {
      begin: script(BEGIN),
      commit: script(COMMIT),
      release: script(RELEASE),
      renew: script(RENEW),
      read: script(READ),
    };
  }

  /**
   * The keys of a user: state, lease, aside list and recent event ids.
   *
   * @param userId The user.
   * @returns The four keys.
   *
   * @example
   * ```ts
   * import { RedisStore } from "@botnodes/core";
   *
   * const fake = { eval: async () => null, evalsha: async () => null };
   * new RedisStore(fake, { prefix: "bot" }).keys("a{b}");
   * // ["bot:{a%7Bb%7D}", "bot:{a%7Bb%7D}:lease", "bot:{a%7Bb%7D}:aside",
   * //  "bot:{a%7Bb%7D}:events"]
   * ```
   */
  keys(
    userId: string,
  ): [state: string, lease: string, aside: string, events: string] {
    return [...this.#keys(userId)] as [string, string, string, string];
  }

  /** The keys of a user, from a small cache: the hot path of every call. */
  #keys(userId: string): readonly [string, string, string, string] {
    let keys = this.#keyCache.get(userId);
    if (keys === undefined) {
      const id = userId === "" ? "%" : userId.replace(UNSAFE, escapeChar);
      const state = `${this.#prefix}:{${id}}`;
      keys = [state, `${state}:lease`, `${state}:aside`, `${state}:events`];
      if (userId.length <= MAX_CACHED_ID) {
        if (this.#keyCache.size >= KEY_CACHE_SIZE) this.#keyCache.clear();
        this.#keyCache.set(userId, keys);
      }
    }
    return keys;
  }

  /** {@inheritDoc StateStore.get} */
  async get(userId: string): Promise<string | undefined> {
    const reply = await this.#run("get", userId, "read", ["state"]);
    return typeof reply === "string" ? reply : undefined;
  }

  /** {@inheritDoc StateStore.begin} */
  begin(userId: string, options: BeginOptions = {}): Promise<Lease> {
    const { clock, wait } = this.#options;
    const eventId = options.eventId;
    return waitForLease(
      userId,
      async () => {
        const token = `${this.#tag}.${++this.#tokens}`;
        let reply: unknown[];
        try {
          reply = await this.#call("begin", userId, [
            token,
            eventId === undefined ? "" : `:${eventId}`,
          ]);
          if (reply[0] === 3) {
            throw new StoreError("begin", userId, new Error(String(reply[1])));
          }
        } catch (error) {
          // The script may still run (a timed-out command that Redis runs
          // later): release what it would take, on the same connection, by
          // EVAL so that no NOSCRIPT answer needs a reply we will not read.
          this.#run("release", userId, "release", [token], true)
            .catch(() => {});
          throw error;
        }
        if (reply[0] === 0) {
          return typeof reply[1] === "number" && reply[1] > 0 ? reply[1] : 1;
        }
        const lease: Lease = {
          userId,
          token,
          state: typeof reply[1] === "string" ? reply[1] : undefined,
          version: typeof reply[2] === "string" ? reply[2] : undefined,
          ...(eventId === undefined ? {} : { eventId }),
          ...(reply[0] === 2 ? { duplicate: true } : {}),
        };
        return lease;
      },
      clock,
      wait,
    );
  }

  /** {@inheritDoc StateStore.commit} */
  async commit(
    lease: Lease,
    state: string | undefined,
    options: CommitOptions = {},
  ): Promise<void> {
    const [reply] = await this.#call("commit", lease.userId, [
      lease.token,
      lease.version ?? "",
      state === undefined ? "0" : "1",
      state ?? "",
      options.aside === undefined ? "0" : "1",
      options.aside ?? "",
      lease.eventId === undefined ? "" : `:${lease.eventId}`,
    ]);
    if (reply === 1) return;
    if (reply === 0) throw new LeaseLostError(lease.userId, "expired");
    if (reply === -1) throw new LeaseLostError(lease.userId, "overtaken");
    if (typeof reply === "string") {
      throw new StoreError("commit", lease.userId, new Error(reply));
    }
    if (reply !== 1) throw this.#unexpected("commit", lease.userId, reply);
  }

  /**
   * Sends one user's part of a BEGIN or COMMIT: at once, or with the other
   * users' parts of this event-loop turn when batching. Resolves to this
   * user's part of the reply; rejects with a `StoreError`.
   */
  #call(
    operation: "begin" | "commit",
    userId: string,
    args: string[],
  ): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      const queue = this.#queued[operation];
      queue.push({ userId, args, resolve, reject });
      if (!this.#batch) this.#flush(operation);
      else if (queue.length === 1) queueMicrotask(() => this.#flush(operation));
    });
  }

  /** Sends the queued parts of an operation, at most MAX_BATCH users a call. */
  #flush(operation: "begin" | "commit"): void {
    const queue = this.#queued[operation];
    while (queue.length > 0) {
      const calls = queue.splice(0, MAX_BATCH);
      const { leaseTtl, ttl, seenEvents } = this.#options;
      const head = operation === "begin" ? [String(leaseTtl)] : [
        ttl === undefined ? "" : String(Math.ceil(ttl)),
        String(ASIDE_LIMIT),
        String(seenEvents),
      ];
      const keys: string[] = [];
      const args = head;
      for (const call of calls) {
        keys.push(...this.#keys(call.userId));
        args.push(...call.args);
      }
      const width = operation === "begin" ? 3 : 1;
      this.#eval(operation, keys, args).then((reply) => {
        if (!Array.isArray(reply) || reply.length !== calls.length * width) {
          for (const call of calls) {
            call.reject(this.#unexpected(operation, call.userId, reply));
          }
          return;
        }
        calls.forEach((call, i) =>
          call.resolve(reply.slice(i * width, (i + 1) * width))
        );
      }, (error) => {
        for (const call of calls) {
          call.reject(new StoreError(operation, call.userId, error));
        }
      });
    }
  }

  /** {@inheritDoc StateStore.release} */
  async release(lease: Lease): Promise<void> {
    await this.#run("release", lease.userId, "release", [lease.token]);
  }

  /** {@inheritDoc StateStore.renew} */
  async renew(lease: Lease): Promise<boolean> {
    const reply = await this.#run("renew", lease.userId, "renew", [
      lease.token,
      String(this.#options.leaseTtl),
    ]);
    return reply === 1;
  }

  /** {@inheritDoc StateStore.timing} */
  get timing(): StoreTiming {
    return this.#options;
  }

  /** {@inheritDoc StateStore.aside} */
  async aside(userId: string): Promise<string[]> {
    const reply = await this.#run("aside", userId, "read", ["aside"]);
    if (!Array.isArray(reply)) throw this.#unexpected("aside", userId, reply);
    return reply.map(String);
  }

  /** Runs one user's script, failures as `StoreError`. */
  async #run(
    operation: string,
    userId: string,
    name: "release" | "renew" | "read",
    args: string[],
    byEval = false,
  ): Promise<unknown> {
    try {
      return await this.#eval(name, [...this.#keys(userId)], args, byEval);
    } catch (error) {
      throw new StoreError(operation, userId, error);
    }
  }

  /** Runs a script by EVALSHA, by EVAL when the server lost it. */
  async #eval(
    name: ScriptName,
    keys: string[],
    args: string[],
    byEval = false,
  ): Promise<unknown> {
    const script = this.#scripts[name];
    if (byEval) {
      return await this.#redis.eval(
        script.source,
        keys.length,
        ...keys,
        ...args,
      );
    }
    try {
      const sha = script.sha ?? await script.computing;
      return await this.#redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String((error as Error)?.message ?? error).includes("NOSCRIPT")) {
        throw error;
      }
      return await this.#redis.eval(
        script.source,
        keys.length,
        ...keys,
        ...args,
      );
    }
  }

  #unexpected(operation: string, userId: string, reply: unknown): StoreError {
    return new StoreError(
      operation,
      userId,
      new TypeError(`unexpected reply ${JSON.stringify(reply)}`),
    );
  }
}

async function sha1(source: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(source),
  );
  return Array.from(
    new Uint8Array(digest),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
}
