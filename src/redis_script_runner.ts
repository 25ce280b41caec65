/**
 * Runs `RedisStore`'s scripts: by `EVALSHA`, by `EVAL` when the server lost
 * the script, and with the parts of several users in one call when batching
 * (as ioredis' `Script` does for its commands).
 *
 * @module
 */

import type { RedisLike } from "./redis_store.ts";
import { type ScriptSource, spreadCall } from "./redis_scripts.ts";
import { keySlot, type UserKeys } from "./redis_keys.ts";

/** The most users in one batched script call. */
const MAX_BATCH = 128;

/**
 * The most users of one reply whose handlers run in the same event-loop
 * turn. A reply for more hands the rest their items in later turns, this
 * many at a time: without that, every user in flight gathers into one call
 * (the replies of two calls that arrive together are handled in one turn,
 * and their users' next scripts go as one call), and the client and Redis
 * take turns, each idle while the other works. Spread over turns, the first
 * users' next call is on its way to Redis while the client handles the
 * others (bench/NOTES.md: 1.1-1.4x the events/s at 64 in flight). Larger
 * chunks mean fewer, larger calls (each call costs the client a socket
 * write): at 64 in flight, 32 ran 1.04-1.12x the events/s of 16 with
 * auto-pipelining (0.999-1.08x without), 48 ran 0.85-0.90x of 32, 24 was
 * within noise of 32 (bench/NOTES.md, "Chunks").
 */
export const SETTLE_CHUNK = 32;

/**
 * Runs a function in a later event-loop turn (a macrotask): after the I/O
 * the current turn started, such as a client's writes deferred with
 * `setImmediate` (ioredis' auto-pipelining).
 */
const later: (fn: () => void) => void = (() => {
  const immediate = (globalThis as {
    setImmediate?: (fn: () => void) => unknown;
  }).setImmediate;
  return typeof immediate === "function"
    ? (fn) => void immediate(fn)
    : (fn) => void setTimeout(fn, 0);
})();

/** One user's part of a script call, waiting to be sent. */
interface Part {
  keys: readonly string[];
  args: string[];
  resolve(reply: unknown[]): void;
  reject(error: unknown): void;
}

/**
 * A user's part of a spread call that failed because a key was not on that
 * master (the slot moved, or is moving): sent again on its own, keyed, so
 * that the client follows the Cluster's redirection.
 */
const NOT_LOCAL = /non local key/i;

/**
 * A spread call that the server cannot run (a Redis before 7 knows no
 * script flags): the runner sends one call per user from then on.
 */
const NO_FLAGS = /shebang|compiling script|flags/i;

/**
 * How long a call past its deadline waits before it fails, in ms: after a
 * stall of this process (a long synchronous task, a paused VM), the event
 * loop first reads the answers that came meanwhile, and a write it could not
 * finish (Deno writes on a later turn) gets its round trip.
 */
const GRACE_MS = 50;

/** The error of a call that got no answer in time. */
class NoAnswer extends Error {
  constructor(limit: number) {
    super(`no answer within ${limit} ms; Redis may still run the call`);
  }
}

/** A call on its way, failed when its deadline passes without an answer. */
interface Pending {
  /** When it fails, in ms of `performance.now()` (monotonic). */
  readonly deadline: number;
  /** Its answer came (or its error). */
  answered: boolean;
  /**
   * It failed for want of an answer, and its caller acts on that (a BEGIN
   * sends a release), so it is not sent again.
   */
  expired: boolean;
  reject(error: unknown): void;
}

/**
 * A script call: the script, its keys and arguments, whether by `EVAL` alone,
 * and the client when not the runner's own.
 */
type Call = [
  script: Script,
  keys: readonly string[],
  args: string[],
  byEval?: boolean,
  client?: RedisLike,
];

/** A script, with its SHA1 once computed. */
class Script {
  readonly source: string;
  readonly width: number;
  readonly spread: Script | undefined;
  readonly failed: ScriptSource["failed"];
  #sha: string | undefined;
  readonly #computing: Promise<string>;

  constructor({ source, width, spread, failed }: ScriptSource) {
    this.source = source;
    this.width = width;
    this.spread = spread && new Script(spread);
    this.failed = failed;
    this.#computing = sha1(source);
    this.#computing.then((sha) => this.#sha = sha, () => {});
  }

  /** The SHA1, at once when it is known. */
  sha(): string | Promise<string> {
    return this.#sha ?? this.#computing;
  }
}

/**
 * Runs scripts on a client. Its promises reject with the client's own
 * errors, or a `TypeError` for a reply of the wrong shape: the store names
 * the operation and user.
 */
export class ScriptRunner {
  readonly #redis: RedisLike;
  /** The client sending at once, when it pipelines (see `unpipelined`). */
  readonly #direct: RedisLike | undefined;
  #batch: boolean;
  /**
   * On a Cluster: a client of the master of a slot, as the client knows
   * it, while the users of one master share a call; `undefined` when each
   * user has a call.
   */
  #masterOf: MasterLookup | undefined;
  readonly #scripts = new Map<ScriptSource, Script>();
  readonly #queued = new Map<Script, { head: string[]; parts: Part[] }>();
  /** How long a call may go without an answer, in ms. */
  readonly #limit: number;
  /**
   * The calls on their way, oldest first (their deadlines are in the same
   * order: one limit after each was sent).
   */
  readonly #pending = new Set<Pending>();
  /**
   * Fires at or before the oldest pending call's deadline, while a call is
   * pending (cleared when none is: it keeps no idle process alive, and
   * `deno test` sees no timer left). One timer for all the calls on their
   * way at once, rather than one per call.
   */
  #deadlines: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param redis The client.
   * @param batch Whether the parts of users that reach `part` in the same
   * event-loop turn go as one call (on a Cluster: one call per master, for
   * the scripts that have a `spread` variant, when the client knows which
   * master serves a slot; one call per user otherwise).
   * @param limit How long a call may go without an answer, in ms: then it
   * fails (Redis may still run it later).
   */
  constructor(redis: RedisLike, batch: boolean, limit: number) {
    this.#redis = redis;
    this.#direct = unpipelined(redis);
    this.#batch = batch;
    this.#limit = limit;
    this.#masterOf = redis.isCluster === true && batch
      ? masterLookup(redis)
      : undefined;
  }

  /**
   * Runs one user's part of a script that takes several users: at once, or
   * with the other parts of this event-loop turn when batching. `head` are
   * the arguments before the users' parts (the same for every call of a
   * store). Resolves to this user's `width` items of the reply.
   */
  part(
    source: ScriptSource,
    head: string[],
    keys: UserKeys | readonly [string],
    args: string[],
  ): Promise<unknown[]> {
    const script = this.#script(source);
    return new Promise((resolve, reject) => {
      let queue = this.#queued.get(script);
      if (queue === undefined) {
        queue = { head, parts: [] };
        this.#queued.set(script, queue);
      }
      queue.parts.push({ keys, args, resolve, reject });
      if (!this.#batch) this.#flush(script);
      else if (queue.parts.length === 1) {
        queueMicrotask(() => this.#flush(script));
      }
    });
  }

  /**
   * Runs a script on one user's keys; by `EVAL` alone when `byEval`, so that
   * no `NOSCRIPT` answer needs a second round trip.
   */
  run(
    source: ScriptSource,
    keys: readonly string[],
    args: string[],
    byEval = false,
  ): Promise<unknown> {
    return this.#eval(this.#script(source), keys, args, byEval);
  }

  #script(source: ScriptSource): Script {
    let script = this.#scripts.get(source);
    if (script === undefined) {
      script = new Script(source);
      this.#scripts.set(source, script);
    }
    return script;
  }

  /** Sends the queued parts of a script, at most MAX_BATCH users a call. */
  #flush(script: Script): void {
    const queue = this.#queued.get(script);
    if (queue === undefined) return;
    const { head, parts: all } = queue;
    if (this.#redis.isCluster === true && script.spread) {
      this.#flushSpread(script, head, all.splice(0));
      return;
    }
    while (all.length > 0) {
      const parts = all.splice(0, MAX_BATCH);
      const { keys, args } = callOf(head, parts);
      this.#eval(script, keys, args).then((reply) => {
        this.#settle(script, parts, reply);
      }, (error) => {
        // a Cluster the client did not say it is: one call per user from now
        if (parts.length > 1 && /CROSSSLOT/.test(String(error?.message))) {
          this.#batch = false;
          for (const part of parts) this.#alone(script, head, part);
          return;
        }
        for (const part of parts) part.reject(error);
      });
    }
  }

  /**
   * On a Cluster: the parts of the users of one master as one call of the
   * script's `spread` variant (at most MAX_BATCH users a call); a user alone
   * on a master, or on a slot whose master the client does not know, as a
   * call of their own.
   */
  #flushSpread(script: Script, head: string[], all: Part[]): void {
    const masterOf = this.#masterOf?.();
    const groups = new Map<RedisLike, Part[]>();
    for (const part of all) {
      const master = masterOf?.(keySlot(part.keys[0]!));
      const group = master === undefined ? undefined : groups.get(master);
      if (group) group.push(part);
      else if (master !== undefined) groups.set(master, [part]);
      else this.#alone(script, head, part);
    }
    for (const [master, group] of groups) {
      if (group.length === 1) this.#alone(script, head, group[0]!);
      for (let i = 0; group.length > 1 && i < group.length; i += MAX_BATCH) {
        this.#spreadCall(script, head, group.slice(i, i + MAX_BATCH), master);
      }
    }
  }

  /**
   * One call of the `spread` variant for parts of users on one master, sent
   * on that master's own connection: never redirected, so that it runs
   * there as any client's call would (a call the Cluster client followed
   * by `ASK` would run with the `ASKING` flag, under which the importing
   * master serves keys the other master still holds). Each part is sent
   * again alone, keyed, through the Cluster client when its keys were not
   * on that master, and every part when the call failed as a whole (a
   * redirection of the first key, a connection gone): BEGIN and COMMIT sent
   * again with the same token find their own work done. A call that got no
   * answer fails every part: sent again, each would wait as long once more.
   */
  #spreadCall(
    script: Script,
    head: string[],
    parts: Part[],
    master: RedisLike,
  ): void {
    const call = spreadCall(callOf(head, parts));
    const resend = (part: Part) => this.#alone(script, head, part);
    this.#eval(script.spread!, call.keys, call.args, false, master).then(
      (reply) => this.#settle(script, parts, reply, resend),
      (error) => {
        // no answer: sent again, each part would wait as long once more
        if (error instanceof NoAnswer) {
          for (const part of parts) part.reject(error);
          return;
        }
        // a server that cannot run the script: one call per user from now
        if (NO_FLAGS.test(String(error?.message ?? error))) {
          this.#masterOf = undefined;
        }
        for (const part of parts) resend(part);
      },
    );
  }

  /** One user's part as a call of its own, keyed by the user's keys. */
  #alone(script: Script, head: string[], part: Part): void {
    this.#eval(script, part.keys, [...head, ...part.args], false, this.#redis)
      .then(
        (reply) => this.#settle(script, [part], reply),
        part.reject,
      );
  }

  /**
   * Hands each part its items of a reply, at most SETTLE_CHUNK parts an
   * event-loop turn; with `resend`, a part that failed because its keys
   * were not on the master that ran the call is resent instead.
   */
  #settle(
    script: Script,
    parts: Part[],
    reply: unknown,
    resend?: (part: Part) => void,
  ): void {
    const width = script.width;
    if (!Array.isArray(reply) || reply.length !== parts.length * width) {
      const error = new TypeError(`unexpected reply ${JSON.stringify(reply)}`);
      for (const part of parts) part.reject(error);
      return;
    }
    const failed = resend && script.failed;
    if (!failed) return settleFrom(parts, reply, width, 0);
    const kept: Part[] = [];
    const items: unknown[] = [];
    for (let i = 0; i < parts.length; i++) {
      const own = reply.slice(i * width, (i + 1) * width);
      if (NOT_LOCAL.test(failed(own) ?? "")) resend(parts[i]!);
      else kept.push(parts[i]!), items.push(...own);
    }
    settleFrom(kept, items, width, 0);
  }

  /**
   * Runs a script by EVALSHA, by EVAL when the server lost it; on `client`
   * when given (a master's own, or the client itself for one user among
   * others sent apart, which goes through its pipeline when it has one).
   * Fails when no answer came within the limit: a client whose promise
   * never settles (a connection that went silent, a request without a
   * timeout) would otherwise hold the user's queue forever.
   */
  #eval(...sent: Call): Promise<unknown> {
    // a call by EVAL is one nobody waits for (a release sent after a
    // failure): no deadline
    if (sent[3] === true) return this.#send(sent);
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        deadline: performance.now() + this.#limit,
        answered: false,
        expired: false,
        reject,
      };
      const call = this.#send(sent, pending);
      this.#pending.add(pending);
      this.#deadlines ??= setTimeout(() => this.#expire(), this.#limit);
      call.then((reply) => {
        this.#answered(pending);
        resolve(reply);
      }, (error: unknown) => {
        this.#answered(pending);
        reject(error);
      });
    });
  }

  #answered(pending: Pending): void {
    pending.answered = true;
    if (this.#pending.delete(pending) && this.#pending.size === 0) {
      clearTimeout(this.#deadlines);
      this.#deadlines = undefined;
    }
  }

  /**
   * Fails the calls whose deadline passed, `GRACE_MS` later: an answer that
   * came while this process was too busy to read it (a long synchronous
   * task, a paused VM) is read first, and wins. Then waits for the next
   * deadline.
   */
  #expire(): void {
    this.#deadlines = undefined;
    const now = performance.now();
    const expired: Pending[] = [];
    for (const pending of this.#pending) {
      if (pending.deadline > now) {
        this.#deadlines = setTimeout(
          () => this.#expire(),
          pending.deadline - now,
        );
        break;
      }
      this.#pending.delete(pending);
      expired.push(pending);
    }
    if (expired.length === 0) return;
    // not setImmediate: Deno and Bun run it before they read the sockets
    setTimeout(() => {
      for (const pending of expired) {
        if (pending.answered) continue;
        // failed now (not at the deadline: an answer read in the grace,
        // NOSCRIPT among them, is acted on as any other)
        pending.expired = true;
        pending.reject(new NoAnswer(this.#limit));
      }
    }, GRACE_MS);
  }

  /**
   * Sends a call (see `#eval`), with no deadline of its own; by `EVAL` after
   * a `NOSCRIPT` answer (a restarted Redis has no scripts), unless `pending`
   * expired meanwhile: a client that queued the call while Redis was down
   * sends it when Redis is back, after the release its caller sent on
   * failing, and the `EVAL` would take a lease nobody releases.
   */
  async #send(
    [script, keys, args, byEval = false, client]: Call,
    pending?: Pending,
  ): Promise<unknown> {
    // coalescing, the runner sends one call per script per turn: ioredis'
    // pipeline would only add its cost; one call per user gains from it
    const redis = client ??
      (this.#batch ? this.#direct ?? this.#redis : this.#redis);
    if (byEval) {
      return await redis.eval(
        script.source,
        keys.length,
        ...keys,
        ...args,
      );
    }
    try {
      let sha = script.sha();
      if (typeof sha !== "string") sha = await sha;
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (
        pending?.expired === true ||
        !String((error as Error)?.message ?? error).includes("NOSCRIPT")
      ) {
        throw error;
      }
      return await redis.eval(
        script.source,
        keys.length,
        ...keys,
        ...args,
      );
    }
  }
}

/** What `unpipelined` uses of an ioredis client. */
interface IoRedisOptions {
  enableAutoPipelining?: boolean | undefined;
}

/**
 * For an ioredis client with auto-pipelining on: the same client, whose
 * `eval`/`evalsha` for the runner are sent at once (as with auto-pipelining
 * off) instead of in a pipeline written in a later turn. Used while the
 * runner coalesces (it then sends one call per script per turn, so ioredis'
 * pipeline only adds its cost per use: bench/NOTES.md, round 2); one call per
 * user (`batch: false`, a Cluster) still goes through the pipeline, which
 * groups them. ioredis reads the option only when a command is called, so it
 * is off for the span of that synchronous call alone; the commands, their
 * order among the store's calls and the connection are the same. `undefined`
 * for any other client.
 */
function unpipelined(redis: RedisLike): RedisLike | undefined {
  const options = (redis as { options?: IoRedisOptions }).options;
  if (options?.enableAutoPipelining !== true) return undefined;
  const direct = <T>(call: () => T): T => {
    // as the client's owner left it (they may turn it off later)
    const was = options.enableAutoPipelining;
    options.enableAutoPipelining = false;
    try {
      return call();
    } finally {
      options.enableAutoPipelining = was;
    }
  };
  return {
    isCluster: redis.isCluster,
    eval: (...args) => direct(() => redis.eval(...args)),
    evalsha: (...args) => direct(() => redis.evalsha(...args)),
  };
}

/**
 * Gives, for one flush, the function from a slot to a client of the master
 * that serves it (the same object for every slot of one master), or
 * `undefined` for a slot whose master is not known.
 */
type MasterLookup = () => (slot: number) => RedisLike | undefined;

/** What `masterLookup` reads of an ioredis `Cluster`. */
interface IoRedisCluster {
  /** Each slot's nodes, `host:port`, its master first. */
  slots: unknown[];
  /** The clients of the masters, each with its `host` and `port`. */
  nodes(role: "master"): {
    options?: { host?: unknown; port?: unknown };
  }[];
}

/**
 * For a Cluster client: a client of the master serving a slot, by the
 * client's own `masterOf`, or from an ioredis `Cluster`'s table of slots
 * and its connections to the masters (both read at each flush, as the
 * client refreshes them). `undefined` when the client offers neither.
 */
function masterLookup(redis: RedisLike): MasterLookup | undefined {
  if (typeof redis.masterOf === "function") {
    // a master it cannot give (or a throw) sends that user alone
    const masterOf = (slot: number) => {
      try {
        const master = redis.masterOf!(slot);
        return typeof master?.evalsha === "function" ? master : undefined;
      } catch {
        return undefined;
      }
    };
    return () => masterOf;
  }
  const cluster = redis as unknown as Partial<IoRedisCluster>;
  if (!Array.isArray(cluster.slots) || typeof cluster.nodes !== "function") {
    return undefined;
  }
  return () => {
    const byName = new Map<unknown, RedisLike>();
    for (const node of (cluster as IoRedisCluster).nodes("master")) {
      const name = `${node.options?.host}:${node.options?.port}`;
      byName.set(name, node as unknown as RedisLike);
    }
    return (slot) => {
      const nodes = (cluster as IoRedisCluster).slots[slot];
      return byName.get(Array.isArray(nodes) ? nodes[0] : undefined);
    };
  };
}

/** The keys and arguments of one call for `parts`, after `head`. */
function callOf(
  head: string[],
  parts: Part[],
): { keys: string[]; args: string[] } {
  const keys: string[] = [];
  const args = [...head];
  for (const part of parts) {
    keys.push(...part.keys);
    args.push(...part.args);
  }
  return { keys, args };
}

/** Resolves parts from `from` on, SETTLE_CHUNK now and the rest later. */
function settleFrom(
  parts: Part[],
  reply: unknown[],
  width: number,
  from: number,
): void {
  const to = Math.min(parts.length, from + SETTLE_CHUNK);
  for (let i = from; i < to; i++) {
    parts[i]!.resolve(reply.slice(i * width, (i + 1) * width));
  }
  if (to < parts.length) later(() => settleFrom(parts, reply, width, to));
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
