import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import fc from "fast-check";
import { Redis } from "ioredis";
import { storeContract } from "./store_contract.ts";
import {
  randomPrefix,
  REDIS_URL,
  redisHarness,
  redisSkip,
} from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import type { RedisLike } from "./redis_store.ts";
import { StoreError } from "./errors.ts";
import { BEGIN, COMMIT, RELEASE, type ScriptSource } from "./redis_scripts.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";
import { createHash } from "node:crypto";

const skipRedis = await redisSkip();

if (!skipRedis) {
  for (const batch of [false, true]) {
    storeContract(
      `RedisStore on ioredis${batch ? ", batching" : ""}`,
      (options) => {
        const redis = new Redis(REDIS_URL);
        const close = () => Promise.resolve(redis.disconnect());
        return Promise.resolve(
          redisHarness(redis, redis, options, close, batch),
        );
      },
      { describe, it },
    );
  }
  // the default route with ioredis' auto-pipelining on, which the store's
  // calls go around
  storeContract(
    "RedisStore on ioredis with auto-pipelining, batching",
    (options) => {
      const redis = new Redis(REDIS_URL, { enableAutoPipelining: true });
      const close = () => Promise.resolve(redis.disconnect());
      return Promise.resolve(redisHarness(redis, redis, options, close, true));
    },
    { describe, it },
  );
}

/** A store on `client` with these lease and command times, and a bot on it. */
function timedBot(client: RedisLike, leaseTtl: number, commandTimeout: number) {
  const store = new RedisStore(client, {
    prefix: randomPrefix("timed"),
    leaseTtl,
    commandTimeout,
  });
  return { store, nodes: appendBot(store) };
}

describe("RedisStore", { skip: skipRedis }, () => {
  let redis: Redis;
  before(() => {
    redis = new Redis(REDIS_URL);
  });
  after(() => redis.disconnect());

  it("accepts an ioredis client as its RedisLike", () => {
    const client: RedisLike = redis;
    assert.ok(new RedisStore(client));
  });

  it("stores each user in one hash-tagged hash, beside the lease", async () => {
    const prefix = randomPrefix();
    const store = new RedisStore(redis, { prefix });
    await store.commit(
      await store.begin("a:b", { eventId: "e1" }),
      "state",
      { aside: "old" },
    );
    assert.deepEqual(store.keys("a:b"), [
      `${prefix}:{a:b}`,
      `${prefix}:{a:b}:lease`,
    ]);
    assert.deepEqual(await redis.keys(`${prefix}:*`), [`${prefix}:{a:b}`]);
    const hash = await redis.hgetall(`${prefix}:{a:b}`);
    assert.deepEqual(Object.keys(hash).sort(), ["a", "e", "s", "v"]);
    assert.equal(hash.s, "state");
    assert.equal(hash.e, ":e1");
    assert.deepEqual(JSON.parse(hash.a!), ["old"]);
    await redis.del(...store.keys("a:b"));
  });

  it("encodes ids so that none shares another's hash tag or keys", () => {
    const store = new RedisStore(redis, { prefix: "p" });
    const ids = ["", "%", "%25", "{", "}", "a}:lease", "{x}", "a%7B", "x\ny"];
    const all = ids.flatMap((id) => store.keys(id));
    assert.equal(new Set(all).size, all.length);
    for (const id of ids) {
      const [state, lease] = store.keys(id);
      const tag = (key: string) =>
        key.slice(key.indexOf("{") + 1, key.indexOf("}"));
      assert.ok(tag(state).length > 0, `empty tag for ${JSON.stringify(id)}`);
      assert.equal(tag(lease), tag(state));
    }
  });

  it("sends a Cluster client that names no master one call per user", async () => {
    const calls: number[] = [];
    const cluster: RedisLike = {
      isCluster: true,
      eval: (...args) => redis.eval(...args),
      evalsha: (sha, numkeys, ...rest) => {
        calls.push(numkeys);
        return redis.evalsha(sha, numkeys, ...rest);
      },
    };
    const store = new RedisStore(cluster, {
      batch: true,
      prefix: randomPrefix("alone"),
    });
    await Promise.all(["a", "b", "c"].map((user) => store.begin(user)));
    assert.deepEqual(calls, [2, 2, 2]);
  });

  it("fails a call that gets no answer, and the user's next event goes on", async () => {
    // a client that swallows the next call of a script: its promise never
    // settles (a connection gone silent, a request without a timeout)
    const sha = (script: ScriptSource) =>
      createHash("sha1").update(script.source).digest("hex");
    const swallow = new Set<string>();
    const client: RedisLike = {
      eval: (...args) => redis.eval(...args),
      evalsha: (...args) => {
        if (!swallow.delete(String(args[0]))) return redis.evalsha(...args);
        return new Promise(() => {});
      },
    };
    const { store, nodes } = timedBot(client, 300, 1000);
    const silent = (operation: string) => (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.equal(error.operation, operation);
      assert.match(error.message, /no answer within 1000 ms/);
      return true;
    };
    swallow.add(sha(BEGIN));
    await assert.rejects(nodes.route({ user: "u", id: "1" }), silent("begin"));
    await nodes.route({ user: "u", id: "2" });
    // the connection stays silent for the release that follows: the event
    // fails at the commit's deadline, not at the release's after it
    swallow.add(sha(COMMIT));
    swallow.add(sha(RELEASE));
    const started = performance.now();
    await assert.rejects(nodes.route({ user: "u", id: "3" }), silent("commit"));
    assert.ok(performance.now() - started < 1_800);
    // the lost commit's lease expires; the next event takes the user
    await nodes.route({ user: "u", id: "4" });
    assert.deepEqual(await appended(store, "u"), ["2", "4"]);
    await redis.del(...store.keys("u"));
  });

  it("does not send again by EVAL a BEGIN whose deadline passed, when a restarted Redis answers NOSCRIPT", async () => {
    // a client that queued the BEGIN while Redis was down sends it once
    // Redis is back, after the release the store sent on failing; a restarted
    // Redis has no scripts: NOSCRIPT. Sent again by EVAL then, the BEGIN took
    // a lease nobody released: the user waited a whole leaseTtl.
    const begin = createHash("sha1").update(BEGIN.source).digest("hex");
    let replay: ((error: Error) => void) | undefined;
    const evals: string[] = [];
    const client: RedisLike = {
      eval: (...args) => {
        evals.push(String(args[0]) === BEGIN.source ? "begin" : "other");
        return redis.eval(...args);
      },
      evalsha: (...args) => {
        if (args[0] !== begin || replay !== undefined) {
          return redis.evalsha(...args);
        }
        return new Promise((_resolve, reject) => replay = reject);
      },
    };
    const store = new RedisStore(client, {
      prefix: randomPrefix("noscript"),
      leaseTtl: 30_000,
      wait: 2_000,
      commandTimeout: 200,
    });
    const nodes = appendBot(store);
    await assert.rejects(
      nodes.route({ user: "u", id: "1" }),
      (error: unknown) =>
        error instanceof StoreError && /no answer within 200 ms/.test(
          error.message,
        ),
    );
    replay!(new Error("NOSCRIPT No matching script. Please use EVAL."));
    // what the runner does on that answer, it does in the promise jobs it
    // runs at once: all of them have run when a timer fires
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.ok(!evals.includes("begin"), `sent by EVAL: ${evals.join(", ")}`);
    assert.equal(await redis.exists(store.keys("u")[1]), 0, "no lease held");
    await nodes.route({ user: "u", id: "2" });
    assert.deepEqual(await appended(store, "u"), ["2"]);
    await redis.del(...store.keys("u"));
  });

  it("lists no key whose name is not UTF-8 as a user whose id holds U+FFFD", async () => {
    // ioredis reads the bytes of such a name (another app's) as U+FFFD, the
    // name of the real user "\uFFFD": that user once, the other key never
    const prefix = randomPrefix("utf8");
    const store = new RedisStore(redis, { prefix });
    await store.commit(await store.begin("\uFFFD"), "the user's");
    const raw = (bytes: number[]) =>
      Buffer.concat([
        Buffer.from(`${prefix}:{`),
        Buffer.from(bytes),
        Buffer.from("}"),
      ]);
    await redis.set(raw([0xff]), "another app's");
    await redis.set(raw([0x62, 0x6f, 0x62, 0xc0]), "another app's too");
    const listed: [string, string][] = [];
    for await (const { userId, state } of store.scan()) {
      listed.push([userId, state]);
    }
    assert.deepEqual(listed, [["\uFFFD", "the user's"]]);
    await redis.del(
      ...store.keys("\uFFFD"),
      raw([0xff]),
      raw([0x62, 0x6f, 0x62, 0xc0]),
    );
  });

  it("fails loudly, keeping the state, on a client that answers Buffers", async () => {
    // node-redis with withTypeMapping({ [BLOB_STRING]: Buffer }): every
    // state looked absent, and each user started over at every event
    const buffers = (reply: unknown): unknown =>
      typeof reply === "string"
        ? Buffer.from(reply)
        : Array.isArray(reply)
        ? reply.map(buffers)
        : reply;
    let mapped = false;
    const client: RedisLike = {
      eval: async (...args) => {
        const reply = await redis.eval(...args);
        return mapped ? buffers(reply) : reply;
      },
      evalsha: async (...args) => {
        const reply = await redis.evalsha(...args);
        return mapped ? buffers(reply) : reply;
      },
    };
    const store = new RedisStore(client, { prefix: randomPrefix("buffers") });
    const nodes = appendBot(store);
    await nodes.route({ user: "u", id: "1" });
    mapped = true;
    const loud = (operation: string) => (error: unknown) =>
      error instanceof StoreError && error.operation === operation &&
      /unexpected reply .*<a Buffer of \d+ bytes: the client must answer strings/
        .test(error.message);
    await assert.rejects(nodes.route({ user: "u", id: "2" }), loud("begin"));
    await assert.rejects(store.get("u"), loud("get"));
    await assert.rejects(
      nodes.users().next(),
      (error) =>
        loud("scan")(error) &&
        /^Cannot scan the stored users:/.test((error as Error).message),
    );
    mapped = false;
    assert.deepEqual(await appended(store, "u"), ["1"]);
    assert.equal(await redis.exists(store.keys("u")[1]), 0, "released");
    await redis.del(...store.keys("u"));
  });

  it("sends again by EVAL a commit answered NOSCRIPT while the process was busy past the deadline", async () => {
    // Redis lost its scripts (a failover, SCRIPT FLUSH) and the answer was
    // read in the grace after the deadline: acted on as any answer there
    const store = new RedisStore(redis, {
      prefix: randomPrefix("noscript-grace"),
      commandTimeout: 200,
    });
    const lease = await store.begin("u");
    await redis.script("FLUSH");
    const committed = store.commit(lease, '{"v":1,"node":"x","data":null}');
    // the commit is sent in the promise jobs that follow; then this process
    // is busy for twice the limit
    await Promise.resolve();
    const until = performance.now() + 400;
    queueMicrotask(() => {
      while (performance.now() < until) { /* busy */ }
    });
    await committed;
    assert.equal(await store.get("u"), '{"v":1,"node":"x","data":null}');
    await redis.del(...store.keys("u"));
  });

  it("takes an answer that came while the process was busy past the deadline", async () => {
    // the commit is sent, then this process is busy for longer than the
    // limit (a long synchronous task, a paused VM): Redis answered meanwhile
    const commit = createHash("sha1").update(COMMIT.source).digest("hex");
    let stall = 0;
    const client: RedisLike = {
      eval: (...args) => redis.eval(...args),
      evalsha: (...args) => {
        const sent = redis.evalsha(...args);
        if (args[0] === commit && stall > 0) {
          const until = performance.now() + stall;
          queueMicrotask(() => {
            while (performance.now() < until) { /* busy */ }
          });
        }
        return sent;
      },
    };
    const { store, nodes } = timedBot(client, 500, 500);
    await nodes.route({ user: "u", id: "1" });
    stall = 700;
    await nodes.route({ user: "u", id: "2" });
    assert.deepEqual(await appended(store, "u"), ["1", "2"]);
    await redis.del(...store.keys("u"));
  });

  it("rejects a prefix with braces and a client without eval", () => {
    assert.throws(() => new RedisStore(redis, { prefix: "a{b}" }), TypeError);
    assert.throws(() => new RedisStore({} as RedisLike), TypeError);
    assert.throws(() => new RedisStore(redis, { leaseTtl: 0 }), RangeError);
  });

  it("surfaces client failures as StoreError naming the operation", async () => {
    const down = new Redis("redis://127.0.0.1:1", {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    });
    const store = new RedisStore(down);
    await assert.rejects(store.begin("u"), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.equal(error.operation, "begin");
      assert.equal(error.userId, "u");
      assert.ok(error.cause);
      return true;
    });
    await assert.rejects(
      store.get("u"),
      (e: unknown) => e instanceof StoreError && e.operation === "get",
    );
    down.disconnect();
  });
});

describe("RedisStore's deadline for calls", () => {
  /** Counts the timeouts set and not yet fired or cleared, while `run` runs. */
  async function pendingTimeouts(run: () => Promise<void>): Promise<number> {
    const set = globalThis.setTimeout;
    const clear = globalThis.clearTimeout;
    const pending = new Set<unknown>();
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      const id: unknown = set(() => {
        pending.delete(id);
        fn();
      }, ms);
      pending.add(id);
      return id;
    }) as typeof setTimeout;
    globalThis.clearTimeout = ((id: Parameters<typeof clearTimeout>[0]) => {
      pending.delete(id);
      clear(id);
    }) as typeof clearTimeout;
    try {
      await run();
    } finally {
      globalThis.setTimeout = set;
      globalThis.clearTimeout = clear;
    }
    const left = pending.size;
    for (const id of pending) clear(id as Parameters<typeof clearTimeout>[0]);
    return left;
  }

  it("leaves no timer behind once every call is answered", async () => {
    const answering: RedisLike = {
      eval: () => Promise.resolve(null),
      evalsha: () => Promise.resolve(null),
    };
    const left = await pendingTimeouts(async () => {
      const store = new RedisStore(answering, { prefix: "deadline" });
      assert.equal(await store.get("u"), undefined);
      await Promise.all(["a", "b", "c"].map((user) => store.get(user)));
    });
    assert.equal(left, 0);
  });

  it("takes a slow answer for one, whatever the lease time, by default", async () => {
    // tiny lease and wait times (a test's): the default deadline is 10 s,
    // not theirs, so that an answer slowed by load is not taken for none
    const slow: RedisLike = {
      eval: () => Promise.resolve(null),
      evalsha: () =>
        new Promise((resolve) => setTimeout(() => resolve(null), 100)),
    };
    const store = new RedisStore(slow, { leaseTtl: 20, wait: 20 });
    assert.equal(await store.get("u"), undefined);
  });

  it("refuses a commandTimeout that is no positive number of ms", () => {
    for (const commandTimeout of [0, -1, NaN, Infinity, 2 ** 31, "5"]) {
      assert.throws(
        () =>
          new RedisStore(
            {
              eval: () => Promise.resolve(null),
              evalsha: () => Promise.resolve(null),
            },
            { commandTimeout: commandTimeout as number },
          ),
        (error: unknown) =>
          error instanceof RangeError && /"commandTimeout"/.test(error.message),
      );
    }
  });

  it("fails the users of a silent call on a Cluster master at its deadline, not again", async () => {
    const silent: RedisLike = {
      eval: () => new Promise(() => {}),
      evalsha: () => new Promise(() => {}),
    };
    const cluster: RedisLike = {
      ...silent,
      isCluster: true,
      masterOf: () => silent, // both users' slots on one master
    };
    const store = new RedisStore(cluster, { commandTimeout: 500 });
    const started = performance.now();
    const results = await Promise.allSettled([
      store.begin("a"),
      store.begin("b"),
    ]);
    // sent again alone, each would wait another 500 ms
    assert.ok(performance.now() - started < 900);
    for (const result of results) {
      assert.equal(result.status, "rejected");
      assert.ok(result.reason instanceof StoreError);
      assert.match(result.reason.message, /no answer within 500 ms/);
    }
  });

  it("names a scan, not a user, when a Cluster client that is not connected fails it", async () => {
    const closed = () => Promise.reject(new Error("The client is closed"));
    const cluster: RedisLike = {
      eval: closed,
      evalsha: closed,
      isCluster: true,
      nodes: () => [], // knows no masters before it connected
    };
    const store = new RedisStore(cluster);
    await assert.rejects(store.scan().next(), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.equal(error.operation, "scan");
      assert.match(
        error.message,
        /^Cannot scan the stored users: the store failed \(The client is closed\)$/,
      );
      return true;
    });
  });

  it("sets no deadline on a release nobody waits for", async () => {
    // BEGIN never answers; the release sent after it fails is not awaited
    const silent: RedisLike = {
      eval: () => new Promise(() => {}),
      evalsha: () => new Promise(() => {}),
    };
    const left = await pendingTimeouts(async () => {
      const store = new RedisStore(silent, { commandTimeout: 50 });
      await assert.rejects(store.begin("u"), StoreError);
    });
    assert.equal(left, 0);
  });
});

describe("user ids of any shape", () => {
  const tag = (key: string) =>
    key.slice(key.indexOf("{") + 1, key.indexOf("}"));
  const store = new RedisStore({
    eval: () => Promise.resolve(),
    evalsha: () => Promise.resolve(),
  }, {
    prefix: "p",
  });

  it("never share a key or a hash tag with another id (10,000 pairs)", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary" }),
        fc.string({ unit: "binary" }),
        (a, b) => {
          fc.pre(a !== b);
          const [ka, kb] = [store.keys(a), store.keys(b)];
          // keys are compared as the UTF-8 bytes Redis sees
          const bytes = (key: string) =>
            Buffer.from(key, "utf8").toString("hex");
          assert.notEqual(bytes(tag(ka[0])), bytes(tag(kb[0])));
          for (const key of ka) assert.ok(!kb.map(bytes).includes(bytes(key)));
          for (const key of ka) {
            assert.equal(
              tag(key),
              tag(ka[0]),
              "one hash tag for all keys of a user",
            );
            assert.ok(tag(key).length > 0);
            assert.ok(key.isWellFormed());
          }
        },
      ),
      { numRuns: 10_000 },
    );
  });

  it("reach only their own state in Redis (1,000 random ids)", {
    skip: skipRedis,
  }, async () => {
    const redis = new Redis(REDIS_URL);
    const real = new RedisStore(redis, { prefix: randomPrefix("ids") });
    const ids = [
      ...new Set(
        fc.sample(fc.string({ unit: "binary", maxLength: 40 }), 1_000),
      ),
      "\uD800",
      "\uDC00",
      "\uFFFD",
    ];
    try {
      for (const [i, id] of ids.entries()) {
        await real.commit(await real.begin(id), `state ${i}`);
      }
      for (const [i, id] of ids.entries()) {
        assert.equal(await real.get(id), `state ${i}`);
      }
    } finally {
      for (const id of ids) await redis.del(...real.keys(id));
      redis.disconnect();
    }
  });
});
