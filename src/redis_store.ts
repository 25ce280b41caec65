/**
 * `RedisStore`: user state in Redis (or Redis Cluster, Valkey, Upstash),
 * behind a minimal command interface.
 *
 * @module
 */

import { waitForLease } from "./lease_wait.ts";
import { MAX_SCAN_COUNT, MAX_TIMER_MS, wholeNumber } from "./options.ts";
import { LeaseLostError, StoreError, type StoreOperation } from "./errors.ts";
import { KeyNamer, type UserKeys } from "./redis_keys.ts";
import {
  BEGIN,
  beginArgs,
  beginHead,
  CLAIM,
  COMMIT,
  commitArgs,
  commitHead,
  DUE,
  INDEX,
  indexArgs,
  type IndexOperation,
  parseTimerMember,
  READ,
  RELEASE,
  RENEW,
  SCAN,
  SCAN_CLUSTER,
  scoreArg,
  type ScriptSource,
  timerMember,
} from "./redis_scripts.ts";
import { ScriptRunner } from "./redis_script_runner.ts";
import {
  ASIDE_LIMIT,
  type BeginOptions,
  type Claimed,
  type CommitOptions,
  type DueTimer,
  type Lease,
  type ResolvedStoreOptions,
  resolveStoreOptions,
  type ScanOptions,
  type StateStore,
  type StoredUser,
  type StoreOptions,
  type StoreTiming,
  timeOption,
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
 * ```ts
 * import { Redis } from "ioredis";
 * import type { RedisLike } from "@botnodes/core";
 *
 * // lazyConnect: no connection until the first command (none here)
 * const redis: RedisLike = new Redis({ lazyConnect: true });
 * ```
 *
 * @example A stand-in for tests: anything with the two methods
 * ```ts
 * import assert from "node:assert/strict";
 * import { type RedisLike, RedisStore } from "@botnodes/core";
 *
 * const down: RedisLike = {
 *   eval: () => Promise.reject(new Error("ECONNREFUSED")),
 *   evalsha: () => Promise.reject(new Error("ECONNREFUSED")),
 * };
 * const store = new RedisStore(down);
 * await assert.rejects(store.get("42"), {
 *   name: "StoreError",
 *   operation: "get",
 *   userId: "42",
 * });
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
   * `RedisStore` then sends no call across masters (see `masterOf`).
   */
  readonly isCluster?: boolean | undefined;
  /** Runs a cached Lua script: `EVALSHA sha1 numkeys key... arg...`. */
  evalsha(
    sha1: string,
    numkeys: number,
    ...keysAndArgs: string[]
  ): Promise<unknown>;
  /**
   * For a Cluster client: a client of each master, so that
   * {@linkcode RedisStore.scan} visits every one (an ioredis `Cluster` has
   * it). Not needed otherwise.
   */
  nodes?(role: "master"): readonly RedisLike[];
  /**
   * For a Cluster client: a client of the master that serves a hash slot
   * (0 to 16383), connected to that master alone (it must not follow
   * redirections), the same object for every slot of that master; or
   * `undefined` when the client does not know the master yet. `RedisStore`
   * then sends the scripts of the users of one master that reach it
   * together as one call on that connection (Redis 7 and later). An ioredis
   * `Cluster` needs none (the store reads its table of slots and uses its
   * connections to the masters); the node-redis adapter has it. Without it,
   * a Cluster gets one call per user.
   */
  masterOf?(slot: number): RedisLike | undefined;
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
   * user (coalescing). Each event still takes two round trips, and each user
   * is committed or fails alone, atomically; Redis and the client do far
   * less work per event. Default: on. On a Cluster client (`isCluster`),
   * users live in different slots: the users of one master share a call
   * (a script flagged to reach several slots of its server, Redis 7 and
   * later), when the client knows which master serves a slot (an ioredis
   * `Cluster`, the node-redis adapter, or `masterOf`); otherwise, or before
   * Redis 7, one call per user. A user whose slot moved meanwhile is sent
   * again on their own, and the client follows the redirection. A client
   * that turns out to be a Cluster without saying so (a `CROSSSLOT` answer)
   * makes the store send one call per user from then on. `false`: one call
   * per user.
   */
  readonly batch?: boolean | undefined;
  /**
   * How long a Redis call may go without an answer, in ms: then it fails
   * with `StoreError` (Redis may still run it: a commit that failed so may
   * or may not have been applied), so that a connection gone silent, or an
   * HTTP request without a timeout, never holds a user's events forever.
   * Default: the longer of `leaseTtl`, `wait` and 10,000 (35,000 with their
   * defaults); at most 2^31 - 1; rounded up to a whole ms. Keep it well above
   * the slowest answer under load: a call answered after it fails all the
   * same.
   */
  readonly commandTimeout?: number | undefined;
}

/** The shortest default `commandTimeout`, in ms. */
const MIN_DEFAULT_COMMAND_TIMEOUT = 10_000;

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
 * A `StateStore` in Redis: one hash per user and a lease key, sharing the
 * user's `{...}` hash tag so that they live in one Redis Cluster slot. An
 * uncontended event costs exactly two round trips: one script takes the
 * lease and reads the state, one writes and releases (5 commands inside
 * Redis when no event id is given, 6 with one), and the scripts of users
 * handled at the same moment go as one call.
 *
 * Keys: `<prefix>:{<id>}`, a hash (`s` state, `v` version, `e` recent event
 * ids, `a` values kept aside), and `<prefix>:{<id>}:lease`, where `<id>` is
 * the user id with `%`, `{`, `}` and lone surrogates percent-encoded (and the
 * empty id written `%`), so no id reaches another user's keys.
 *
 * A commit that fails with a `StoreError` because the connection broke may or
 * may not have been applied (Redis ran the script or not, never half of it).
 * So may one that got no answer: a call without an answer fails after
 * `commandTimeout`, so that a connection gone silent never holds a user's
 * later events forever.
 *
 * @example With ioredis
 * ```ts
 * import { Redis } from "ioredis";
 * import { RedisStore } from "@botnodes/core";
 *
 * const redis = new Redis(process.env.REDIS_URL ?? "redis://localhost:6379", {
 *   lazyConnect: true, // connects on the first event (none in this example)
 * });
 * const store = new RedisStore(redis, { prefix: "foodbot" });
 * ```
 *
 * @example One round trip to read a user, on a fake client
 * ```ts
 * import assert from "node:assert/strict";
 * import { type RedisLike, RedisStore } from "@botnodes/core";
 *
 * // records the keys of each script call and answers as an empty Redis
 * const calls: string[][] = [];
 * const record = (_script: string, numkeys: number, ...keysAndArgs: string[]) => {
 *   calls.push(keysAndArgs.slice(0, numkeys));
 *   return Promise.resolve(null);
 * };
 * const fake: RedisLike = { eval: record, evalsha: record };
 *
 * const store = new RedisStore(fake, { prefix: "foodbot" });
 * assert.equal(await store.get("42"), undefined); // no state yet
 * assert.equal(calls.length, 1);
 * assert.equal(calls[0]?.[0], "foodbot:{42}");
 * ```
 */
export class RedisStore implements StateStore {
  readonly #options: ResolvedStoreOptions;
  readonly #names: KeyNamer;
  readonly #scripts: ScriptRunner;
  /**
   * The index of timers' scripts: its changes of one event-loop turn go as
   * one call, on a Cluster too (the index is one key).
   */
  readonly #indexScripts: ScriptRunner;
  readonly #beginHead: string[];
  readonly #commitHead: string[];
  readonly #tag = randomTag();
  readonly #redis: RedisLike;
  /** How long a Redis call may go without an answer, in ms. */
  readonly #limit: number;
  #tokens = 0;

  /**
   * Makes a store on a Redis client.
   *
   * @param redis A client with `eval` and `evalsha` (an ioredis `Redis` or
   * `Cluster`, or an adapter).
   * @param options The key prefix, lease and idle times, and clock.
   * @throws {TypeError} When `redis` lacks the commands, the prefix has a
   * brace, or `batch` is asked of a Cluster client.
   * @throws {RangeError} When a time option is out of range (see
   * {@linkcode StoreOptions}).
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
    this.#options = resolveStoreOptions(options); // first: options is an object
    const { prefix = "botnodes", batch = true } = options;
    refuseClientOptions(redis, prefix);
    if (typeof prefix !== "string") {
      throw new TypeError(
        `Cannot create RedisStore: option "prefix" must be a string, got ${typeof prefix}`,
      );
    }
    if (typeof batch !== "boolean") {
      throw new TypeError(
        `Cannot create RedisStore: option "batch" must be true or false, got ${typeof batch}`,
      );
    }
    this.#redis = redis;
    this.#names = new KeyNamer(prefix);
    const { leaseTtl, ttl, seenEvents, wait } = this.#options;
    const { commandTimeout } = options;
    // by default no event waits longer, no lease it took outlives it, and
    // a slow answer under load is not taken for none
    this.#limit = commandTimeout === undefined
      ? Math.max(leaseTtl, wait, MIN_DEFAULT_COMMAND_TIMEOUT)
      : timeOption("commandTimeout", commandTimeout, MAX_TIMER_MS);
    this.#scripts = new ScriptRunner(redis, batch, this.#limit);
    this.#indexScripts = new ScriptRunner(redis, true, this.#limit);
    this.#beginHead = beginHead(leaseTtl);
    this.#commitHead = commitHead(ttl, ASIDE_LIMIT, seenEvents);
  }

  /**
   * The keys of a user: the state hash and the lease.
   *
   * @param userId The user.
   * @returns The two keys.
   *
   * @example
   * ```ts
   * import { RedisStore } from "@botnodes/core";
   * import assert from "node:assert/strict";
   *
   * const fake = { eval: async () => null, evalsha: async () => null };
   * assert.deepEqual(new RedisStore(fake, { prefix: "bot" }).keys("a{b}"), [
   *   "bot:{a%7Bb%7D}",
   *   "bot:{a%7Bb%7D}:lease",
   * ]);
   * ```
   */
  keys(userId: string): [state: string, lease: string] {
    return [...this.#names.keys(userId)];
  }

  /** {@inheritDoc StateStore.get} */
  async get(userId: string): Promise<string | undefined> {
    const reply = await this.#run("get", userId, READ, ["state"], true);
    if (!isText(reply)) throw this.#unexpected("get", userId, reply);
    return typeof reply === "string" ? reply : undefined;
  }

  /** {@inheritDoc StateStore.begin} */
  begin(userId: string, options: BeginOptions = {}): Promise<Lease> {
    const { clock, wait } = this.#options;
    const eventId = options.eventId;
    const keys = this.#names.keys(userId);
    return waitForLease(
      userId,
      () => {
        const token = `${this.#tag}.${++this.#tokens}`;
        return this.#scripts.part(
          BEGIN,
          this.#beginHead,
          keys,
          beginArgs(token, eventId),
        ).then(
          (reply) => this.#leaseOf(reply, userId, keys, token, eventId),
          (error) => {
            // The script may still run (a timed-out command that Redis runs
            // later): release what it would take, on the same connection,
            // by EVAL so that no NOSCRIPT answer needs a reply we will not
            // read.
            this.#scripts.run(RELEASE, keys, [token], true).catch(() => {});
            throw new StoreError("begin", userId, error);
          },
        );
      },
      clock,
      options.wait ?? wait,
    );
  }

  /** The lease BEGIN's reply gives, or how long until its holder's expires. */
  #leaseOf(
    reply: unknown[],
    userId: string,
    keys: UserKeys,
    token: string,
    eventId: string | undefined,
  ): Lease | number {
    const code = reply[0];
    const state = reply[1];
    if (code === 0) return typeof state === "number" && state > 0 ? state : 1;
    const version = reply[2];
    // a client that answers Buffers (a type mapping) would make every state
    // look absent: each user would start over at every event
    if (
      (code !== 1 && code !== 2) || !isText(state) || !isText(version)
    ) {
      this.#scripts.run(RELEASE, keys, [token], true).catch(() => {});
      throw code === 3
        ? new StoreError("begin", userId, new Error(String(state)))
        : this.#unexpected("begin", userId, reply);
    }
    const lease: {
      userId: string;
      token: string;
      state: string | undefined;
      version: string | undefined;
      eventId?: string;
      duplicate?: boolean;
    } = {
      userId,
      token,
      state: typeof state === "string" ? state : undefined,
      version: typeof version === "string" ? version : undefined,
    };
    if (eventId !== undefined) lease.eventId = eventId;
    if (code === 2) lease.duplicate = true;
    return lease;
  }

  /** {@inheritDoc StateStore.commit} */
  commit(
    lease: Lease,
    state: string | undefined,
    options: CommitOptions = {},
  ): Promise<void> {
    const userId = lease.userId;
    return this.#scripts.part(
      COMMIT,
      this.#commitHead,
      this.#names.keys(userId),
      commitArgs(
        lease.token,
        lease.version,
        state,
        options.aside,
        lease.eventId,
        options.keep === true,
        // the raw value read at begin is copied inside Redis, byte for byte
        options.aside !== undefined && options.aside === lease.state,
      ),
    ).then((items) => {
      const reply = items[0];
      if (reply === 1) return;
      if (reply === 0) throw new LeaseLostError(userId, "expired");
      if (reply === -1) throw new LeaseLostError(userId, "overtaken");
      throw typeof reply === "string"
        ? new StoreError("commit", userId, new Error(reply))
        : this.#unexpected("commit", userId, reply);
    }, (error) => {
      throw new StoreError("commit", userId, error);
    });
  }

  /** {@inheritDoc StateStore.release} */
  async release(lease: Lease): Promise<void> {
    await this.#run("release", lease.userId, RELEASE, [lease.token]);
  }

  /** {@inheritDoc StateStore.renew} */
  async renew(lease: Lease): Promise<boolean> {
    const reply = await this.#run("renew", lease.userId, RENEW, [
      lease.token,
      String(this.#options.leaseTtl),
    ]);
    return reply === 1;
  }

  /** {@inheritDoc StateStore.schedule} */
  schedule(userId: string, due: number): Promise<void> {
    return this.#change("schedule", "add", userId, due, due);
  }

  /** {@inheritDoc StateStore.unschedule} */
  unschedule(userId: string, due: number): Promise<void> {
    return this.#change("unschedule", "remove", userId, due, due);
  }

  /** {@inheritDoc StateStore.deferTimer} */
  deferTimer(userId: string, due: number, at: number): Promise<void> {
    return this.#change("deferTimer", "defer", userId, due, at);
  }

  /** {@inheritDoc StateStore.dueTimers} */
  async dueTimers(until: number, limit: number): Promise<DueTimer[]> {
    const reply = await this.#index("dueTimers", DUE, [
      scoreArg(until),
      String(Math.max(0, Math.floor(limit))),
    ]);
    if (!Array.isArray(reply)) {
      throw this.#unexpected("dueTimers", "", reply);
    }
    const timers: DueTimer[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const timer = parseTimerMember(String(reply[i]));
      if (timer) timers.push(timer);
    }
    return timers;
  }

  /** {@inheritDoc StateStore.claimTimers} */
  async claimTimers(
    until: number,
    limit: number,
    hold: number,
  ): Promise<Claimed> {
    const reply = await this.#index("claimTimers", CLAIM, [
      scoreArg(until),
      String(Math.max(0, Math.floor(limit))),
      scoreArg(until + hold),
    ]);
    if (!Array.isArray(reply) || reply.length === 0) {
      throw this.#unexpected("claimTimers", "", reply);
    }
    const [next, ...members] = reply;
    const timers: DueTimer[] = [];
    for (const member of members) {
      const timer = parseTimerMember(String(member));
      if (timer) timers.push(timer);
      // not written by botnodes: taken out (else claimed again and again)
      else void this.#drop(String(member));
    }
    return {
      timers,
      next: next === null || next === undefined ? undefined : Number(next),
    };
  }

  /** Takes a member botnodes did not write out of the index, best effort. */
  async #drop(member: string): Promise<void> {
    try {
      await this.#indexScripts.part(
        INDEX,
        [],
        [this.#names.timers()],
        indexArgs("remove", 0, member),
      );
    } catch {
      // it comes back when its claim ends, and is dropped then
    }
  }

  /** One change of the index of timers, sent with the others of this turn. */
  async #change(
    operation: StoreOperation,
    change: IndexOperation,
    userId: string,
    due: number,
    score: number,
  ): Promise<void> {
    try {
      await this.#indexScripts.part(
        INDEX,
        [],
        [this.#names.timers()],
        indexArgs(change, score, timerMember(userId, due)),
      );
    } catch (error) {
      throw new StoreError(operation, userId, error);
    }
  }

  /**
   * {@inheritDoc StateStore.scan}
   *
   * Each round trip runs one script: `SCAN` with `MATCH <prefix>:{*}` and
   * the `count` given, and a read of each state found. On a Cluster client
   * (`isCluster`), it visits each master from the client's `nodes("master")`
   * in turn, with a script that needs Redis 7 (it reads the keys of every
   * slot of its server). The Redis user needs `+scan` (see the README).
   */
  async *scan(options: ScanOptions = {}): AsyncGenerator<StoredUser> {
    const count = wholeNumber(
      "scan: count",
      options.count ?? 100,
      1,
      MAX_SCAN_COUNT,
    );
    const pattern = this.#names.pattern();
    const cluster = this.#redis.isCluster === true;
    const script = cluster ? SCAN_CLUSTER : SCAN;
    for (const runner of await this.#masters()) {
      let cursor = "0";
      do {
        let reply: unknown;
        try {
          reply = await runner.run(script, [], [cursor, pattern, `${count}`]);
        } catch (error) {
          throw new StoreError("scan", "", error);
        }
        if (!Array.isArray(reply) || reply.length % 2 !== 1) {
          throw this.#unexpected("scan", "", reply);
        }
        cursor = String(reply[0]);
        for (let i = 1; i + 1 < reply.length; i += 2) {
          const userId = this.#names.userOf(String(reply[i]));
          let state = reply[i + 1];
          if (!isText(state)) throw this.#unexpected("scan", "", reply);
          if (userId === undefined) continue;
          // listed by a master that does not serve its slot (one importing
          // it while it moves, one demoted by a failover): read by a keyed
          // call, which the client sends where the key is
          if (cluster && state === null) state = await this.get(userId);
          else if (
            typeof state === "string" && userId.includes("\uFFFD") &&
            await this.get(userId) !== state
          ) {
            // a key whose name is not UTF-8 (another app's) reads as U+FFFD,
            // as the key of a user whose id holds U+FFFD does: it is that
            // user's only when it holds what the user's own key holds
            continue;
          }
          if (typeof state === "string") yield { userId, state };
        }
      } while (cursor !== "0");
    }
  }

  /** A script runner for each server a scan visits. */
  async #masters(): Promise<ScriptRunner[]> {
    const redis = this.#redis;
    if (redis.isCluster !== true) return [this.#scripts];
    if (typeof redis.nodes !== "function") {
      throw new TypeError(
        "Cannot scan the users of a Cluster: the client has no nodes() method to reach each master",
      );
    }
    // after a failover, an ioredis Cluster lists the demoted master until a
    // keyed call is redirected: its table of slots is read again first
    const refresh = (redis as {
      refreshSlotsCache?: (done: (error?: unknown) => void) => void;
    }).refreshSlotsCache;
    if (typeof refresh === "function") {
      await new Promise<void>((resolve) => {
        try {
          refresh.call(redis, () => resolve());
        } catch {
          resolve(); // the scan goes on with the table it has
        }
      });
    }
    let masters = redis.nodes("master");
    if (masters.length === 0) {
      // a Cluster client that has not connected yet knows no masters (an
      // ioredis Cluster connects on its first call)
      try {
        await this.get("");
      } catch (error) {
        throw new StoreError(
          "scan",
          "",
          error instanceof StoreError ? error.cause : error,
        );
      }
      masters = redis.nodes("master");
    }
    return masters.map((master) =>
      new ScriptRunner(master, false, this.#limit)
    );
  }

  /** Runs a script on the index of timers, failures as `StoreError`. */
  async #index(
    operation: StoreOperation,
    script: ScriptSource,
    args: string[],
  ): Promise<unknown> {
    try {
      return await this.#scripts.run(script, [this.#names.timers()], args);
    } catch (error) {
      throw new StoreError(operation, "", error);
    }
  }

  /** {@inheritDoc StateStore.timing} */
  get timing(): StoreTiming {
    return this.#options;
  }

  /** {@inheritDoc StateStore.aside} */
  async aside(userId: string): Promise<string[]> {
    const reply = await this.#run("aside", userId, READ, ["aside"], true);
    if (!isText(reply)) throw this.#unexpected("aside", userId, reply);
    if (typeof reply !== "string") return [];
    try {
      const kept: unknown = JSON.parse(reply);
      if (Array.isArray(kept)) return kept.map(String);
    } catch {
      // not written by botnodes: shown as it is
    }
    return [reply];
  }

  /**
   * Runs a script on a user's keys, failures as `StoreError`; on the state
   * key alone for a read (`stateOnly`): it needs no lease, and one key is
   * served while its slot moves, when a call on both keys, split between
   * two masters for a moment, is refused (`TRYAGAIN`).
   */
  async #run(
    operation: StoreOperation,
    userId: string,
    script: ScriptSource,
    args: string[],
    stateOnly = false,
  ): Promise<unknown> {
    const keys = this.#names.keys(userId);
    try {
      return await this.#scripts.run(
        script,
        stateOnly ? [keys[0]] : keys,
        args,
      );
    } catch (error) {
      throw new StoreError(operation, userId, error);
    }
  }

  #unexpected(
    operation: StoreOperation,
    userId: string,
    reply: unknown,
  ): StoreError {
    return new StoreError(
      operation,
      userId,
      new TypeError(`unexpected reply ${shownReply(reply)}`),
    );
  }
}

/**
 * Refuses an ioredis client with the `keyPrefix` option: ioredis puts it
 * before the keys a call names, but not before those a scan matches or a
 * Cluster's coalesced call carries among its arguments, which would name
 * other keys for the same user. And one with `stringNumbers`.
 */
function refuseClientOptions(redis: RedisLike, prefix: string): void {
  const options = (redis as {
    options?: {
      keyPrefix?: unknown;
      stringNumbers?: unknown;
      redisOptions?: { stringNumbers?: unknown };
    };
  }).options;
  // integers as strings: every reply's code would be unexpected (a Cluster
  // has it in the options of its connections)
  if (
    options?.stringNumbers === true ||
    options?.redisOptions?.stringNumbers === true
  ) {
    throw new TypeError(
      "Cannot create RedisStore: the client has the ioredis option stringNumbers, which turns the scripts' answers into strings; make the client without it",
    );
  }
  const keyPrefix = options?.keyPrefix;
  const text = typeof keyPrefix === "string"
    ? keyPrefix
    : keyPrefix instanceof Uint8Array
    ? new TextDecoder().decode(keyPrefix)
    : "";
  if (text === "") return;
  throw new TypeError(
    `Cannot create RedisStore: the client has the ioredis option keyPrefix (${
      JSON.stringify(text)
    }), which scans and a Cluster's coalesced calls would not follow; make the client without it and give RedisStore the option prefix: ${
      JSON.stringify(text + prefix)
    } (the same keys)`,
  );
}

/**
 * Whether a reply is a string or none (`null`; `false` from Lua; absent):
 * what RedisStore reads a state, a version or a kept value as.
 */
function isText(reply: unknown): reply is string | null | false | undefined {
  return typeof reply === "string" || reply === null || reply === false ||
    reply === undefined;
}

/** A reply as an error shows it: a Buffer by its size, never its bytes. */
function shownReply(reply: unknown): string {
  try {
    return JSON.stringify(reply, (_key, value: unknown) => {
      if (typeof value === "bigint") return `${value}n`;
      const buffer = value as { type?: unknown; data?: unknown } | null;
      return typeof buffer === "object" && buffer !== null &&
          buffer.type === "Buffer" && Array.isArray(buffer.data)
        ? `<a Buffer of ${buffer.data.length} bytes: the client must answer strings, not Buffers>`
        : ArrayBuffer.isView(value)
        ? `<${value.constructor.name} of ${value.byteLength} bytes: the client must answer strings>`
        : value;
    }) ?? String(reply);
  } catch {
    return "that cannot be shown";
  }
}
