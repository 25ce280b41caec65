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
}

// Keys of a user, all in the same Cluster slot: KEYS[1] the state hash
// (fields s: state, v: version), KEYS[2] the lease, KEYS[3] the aside list,
// KEYS[4] the list of recent committed event ids.

/**
 * Takes the lease and returns the state: {1, state, version}; {0, pttl} when
 * the lease is held; {2} when event ARGV[3] was committed already (the lease
 * is given back at once).
 */
const BEGIN = `
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if ARGV[3] ~= '' and redis.call('LPOS', KEYS[4], ARGV[3]) then
    redis.call('DEL', KEYS[2])
    return {2}
  end
  local sv = redis.call('HMGET', KEYS[1], 's', 'v')
  return {1, sv[1], sv[2]}
end
return {0, redis.call('PTTL', KEYS[2])}
`;

/**
 * Returns 1 at once when this very commit was applied already (a client
 * that resent it after a dropped connection). Checks the version, writes (ARGV[3] = '1') or deletes the state, keeps
 * ARGV[6] aside when ARGV[5] = '1', releases the lease if still ours.
 * Returns 1, or 0 when fenced.
 */
const COMMIT = `
local version = redis.call('HGET', KEYS[1], 'v') or ''
if version == ARGV[1] then return 1 end
if version ~= ARGV[2] then return 0 end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 's', ARGV[4], 'v', ARGV[1])
  if ARGV[7] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[7])
  else redis.call('PERSIST', KEYS[1]) end
else
  redis.call('DEL', KEYS[1])
end
if ARGV[5] == '1' then
  redis.call('LPUSH', KEYS[3], ARGV[6])
  redis.call('LTRIM', KEYS[3], 0, ARGV[8] - 1)
end
if ARGV[9] ~= '' then
  redis.call('LPUSH', KEYS[4], ARGV[9])
  redis.call('LTRIM', KEYS[4], 0, ARGV[10] - 1)
  if ARGV[7] ~= '' then redis.call('PEXPIRE', KEYS[4], ARGV[7])
  else redis.call('PERSIST', KEYS[4]) end
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`;

/** Releases the lease if it is still ours. */
const RELEASE = `
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`;

/** Reads the state, or the aside list when ARGV[1] = 'aside'. */
const READ = `
if ARGV[1] == 'aside' then return redis.call('LRANGE', KEYS[3], 0, -1) end
return redis.call('HGET', KEYS[1], 's')
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

interface Script {
  source: string;
  /** The SHA1, once computed. */
  sha: string | undefined;
  computing: Promise<string>;
}

/** How many users' keys are kept computed. */
const KEY_CACHE_SIZE = 4_096;

const processTag = Array.from(
  crypto.getRandomValues(new Uint8Array(8)),
  (byte) => byte.toString(16).padStart(2, "0"),
).join("");

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
  readonly #scripts: Record<"begin" | "commit" | "release" | "read", Script>;
  #tokens = 0;
  readonly #keyCache = new Map<
    string,
    readonly [string, string, string, string]
  >();

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
    this.#redis = redis;
    this.#prefix = prefix;
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
      if (this.#keyCache.size >= KEY_CACHE_SIZE) this.#keyCache.clear();
      this.#keyCache.set(userId, keys);
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
    const { clock, wait, leaseTtl } = this.#options;
    const eventId = options.eventId;
    return waitForLease(
      userId,
      async () => {
        const token = `${processTag}.${++this.#tokens}`;
        let reply: unknown;
        try {
          reply = await this.#run("begin", userId, "begin", [
            token,
            String(leaseTtl),
            eventId ?? "",
          ]);
        } catch (error) {
          // The script may still run (a timed-out command that Redis runs
          // later): release what it would take, on the same connection, by
          // EVAL so that no NOSCRIPT answer needs a reply we will not read.
          this.#run("release", userId, "release", [token], true)
            .catch(() => {});
          throw error;
        }
        if (!Array.isArray(reply)) {
          throw this.#unexpected("begin", userId, reply);
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
    const { ttl } = this.#options;
    const reply = await this.#run("commit", lease.userId, "commit", [
      lease.token,
      lease.version ?? "",
      state === undefined ? "0" : "1",
      state ?? "",
      options.aside === undefined ? "0" : "1",
      options.aside ?? "",
      ttl === undefined ? "" : String(Math.ceil(ttl)),
      String(ASIDE_LIMIT),
      lease.eventId ?? "",
      String(this.#options.seenEvents),
    ]);
    if (reply === 0) throw new LeaseLostError(lease.userId);
    if (reply !== 1) throw this.#unexpected("commit", lease.userId, reply);
  }

  /** {@inheritDoc StateStore.release} */
  async release(lease: Lease): Promise<void> {
    await this.#run("release", lease.userId, "release", [lease.token]);
  }

  /** {@inheritDoc StateStore.aside} */
  async aside(userId: string): Promise<string[]> {
    const reply = await this.#run("aside", userId, "read", ["aside"]);
    if (!Array.isArray(reply)) throw this.#unexpected("aside", userId, reply);
    return reply.map(String);
  }

  /** Runs a script by EVALSHA, by EVAL when the server lost it. */
  async #run(
    operation: string,
    userId: string,
    name: "begin" | "commit" | "release" | "read",
    args: string[],
    byEval = false,
  ): Promise<unknown> {
    const script = this.#scripts[name];
    const keys = this.#keys(userId);
    try {
      if (byEval) {
        return await this.#redis.eval(script.source, 4, ...keys, ...args);
      }
      try {
        const sha = script.sha ?? await script.computing;
        return await this.#redis.evalsha(sha, 4, ...keys, ...args);
      } catch (error) {
        if (!String((error as Error)?.message ?? error).includes("NOSCRIPT")) {
          throw error;
        }
        return await this.#redis.eval(script.source, 4, ...keys, ...args);
      }
    } catch (error) {
      throw new StoreError(operation, userId, error);
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
