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
// user exactly as if alone.

/**
 * Per user (ARGV[1] the lease time; then token and event id per user):
 * takes the lease and returns {1, state, version}; {0, pttl, false} when the
 * lease is held; {2, false, false} when the event was committed already (the
 * lease is given back at once).
 */
const BEGIN = `
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local state, lease, events = KEYS[i * 4 + 1], KEYS[i * 4 + 2], KEYS[i * 4 + 4]
  local token, event = ARGV[i * 2 + 2], ARGV[i * 2 + 3]
  if redis.call('SET', lease, token, 'NX', 'PX', ARGV[1]) then
    if event ~= '' and redis.call('LPOS', events, event) then
      redis.call('DEL', lease)
      out[#out + 1] = 2; out[#out + 1] = false; out[#out + 1] = false
    else
      local sv = redis.call('HMGET', state, 's', 'v')
      out[#out + 1] = 1; out[#out + 1] = sv[1]; out[#out + 1] = sv[2]
    end
  else
    out[#out + 1] = 0; out[#out + 1] = redis.call('PTTL', lease)
    out[#out + 1] = false
  end
end
return out
`;

/**
 * Per user (ARGV[1] the idle TTL or '', ARGV[2] the aside limit, ARGV[3] the
 * event id limit; then per user token, version read at begin, '1' to write
 * or '0' to delete, state, '1' to keep a value aside, that value, event id or
 * ''): 1 at once when this very commit was applied already (a client that
 * resent it after a dropped connection); 0 when fenced (the version changed);
 * else writes or deletes the state, keeps the value aside, remembers the
 * event, releases the lease if still ours, 1.
 */
const COMMIT = `
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local state, lease = KEYS[i * 4 + 1], KEYS[i * 4 + 2]
  local aside, events = KEYS[i * 4 + 3], KEYS[i * 4 + 4]
  local a = 3 + i * 7
  local token = ARGV[a + 1]
  local version = redis.call('HGET', state, 'v') or ''
  if version == token then
    out[i + 1] = 1
  elseif version ~= ARGV[a + 2] then
    out[i + 1] = 0
  else
    if ARGV[a + 3] == '1' then
      redis.call('HSET', state, 's', ARGV[a + 4], 'v', token)
      if ARGV[1] ~= '' then redis.call('PEXPIRE', state, ARGV[1])
      else redis.call('PERSIST', state) end
    else
      redis.call('DEL', state)
    end
    if ARGV[a + 5] == '1' then
      redis.call('LPUSH', aside, ARGV[a + 6])
      redis.call('LTRIM', aside, 0, ARGV[2] - 1)
    end
    if ARGV[a + 7] ~= '' then
      redis.call('LPUSH', events, ARGV[a + 7])
      redis.call('LTRIM', events, 0, ARGV[3] - 1)
      if ARGV[1] ~= '' then redis.call('PEXPIRE', events, ARGV[1])
      else redis.call('PERSIST', events) end
    end
    if redis.call('GET', lease) == token then redis.call('DEL', lease) end
    out[i + 1] = 1
  end
end
return out
`;

/** Releases the lease if it is still ours. */
const RELEASE = `
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`;

/** Extends the lease (ARGV[2] ms) if it is still ours (ARGV[1]): 1, else 0. */
const RENEW = `
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
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
  readonly #scripts: Record<ScriptName, Script>;
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
    if (options.batch && (redis as { isCluster?: boolean }).isCluster) {
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
    const { clock, wait } = this.#options;
    const eventId = options.eventId;
    return waitForLease(
      userId,
      async () => {
        const token = `${processTag}.${++this.#tokens}`;
        let reply: unknown[];
        try {
          reply = await this.#call("begin", userId, [token, eventId ?? ""]);
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
      lease.eventId ?? "",
    ]);
    if (reply === 0) throw new LeaseLostError(lease.userId);
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
