// RedisStore against what a hostile review found: a second store instance on
// the same prefix, foreign values at a user's keys, one bad user in a batch,
// replies lost and commands sent again, options Redis would refuse.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { randomPrefix, REDIS_URL, redisSkip } from "../test_support/redis.ts";
import { RedisStore, type RedisStoreOptions } from "./redis_store.ts";
import type { RedisLike } from "./redis_store.ts";
import { Nodes } from "./nodes.ts";
import { LeaseTimeoutError } from "./errors.ts";
import type { Clock } from "./store.ts";
import { MemoryStore } from "../testing/memory_store.ts";
import {
  appended,
  type AppendEvent,
  Appending,
} from "../test_support/append_bot.ts";

const skipRedis = await redisSkip();

/**
 * A bot that appends event ids, reporting to `warnings`; with `eventIds`
 * false, the store does not know the event ids.
 */
function bot(store: RedisStore, warnings: string[] = [], eventIds = true) {
  return new Nodes<{ during(): void }, AppendEvent, string>({
    store,
    nodes: { appending: Appending },
    start: (event) => new Appending({ events: [event.id] }),
    shared: { during: () => {} },
    userId: (event) => event.user,
    ...(eventIds ? { eventId: (event: AppendEvent) => event.id } : {}),
    logger: { warn: (message) => void warnings.push(message) },
  });
}

/**
 * A client that, once armed, runs the next COMMIT (a call of more than 10
 * arguments), then `between`, then sends that COMMIT again, as a client
 * does after a lost reply.
 */
function resendingCommit(redis: Redis, between: () => Promise<unknown>) {
  const state = {
    armed: false,
    arm: () => void (state.armed = true),
    client: {
      eval: (...args) => redis.eval(...args),
      evalsha: async (...args) => {
        const reply = await redis.evalsha(...args);
        if (!state.armed || args.length <= 10) return reply;
        state.armed = false;
        await between();
        return redis.evalsha(...args);
      },
    } as RedisLike,
  };
  return state;
}

/** A clock whose waits fail the test: nothing here may wait for a lease. */
const noWaiting: Clock = {
  now: () => Date.now(),
  sleep: () => Promise.reject(new Error("waited for a lease")),
};

describe("RedisStore against hostile conditions", { skip: skipRedis }, () => {
  let redis: Redis;
  let prefix: string;
  const store = (options: RedisStoreOptions = {}) =>
    new RedisStore(redis, { prefix, clock: noWaiting, ...options });
  before(() => {
    redis = new Redis(REDIS_URL);
  });
  after(async () => {
    const keys = await redis.keys("botnodes-hostile-*");
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
  const fresh = () => prefix = randomPrefix("hostile");

  it("lets two store instances on one prefix take turns without loss", async () => {
    fresh();
    const a = bot(store());
    await a.route({ user: "u", id: "1" });
    const b = bot(store()); // a store made per request, as on serverless
    const routed = await b.route({ user: "u", id: "2" });
    assert.equal(routed.handled, true);
    assert.deepEqual((await b.user("u").node())?.data, { events: ["1", "2"] });
    // the lease was released: the next event, on either, does not wait
    await a.route({ user: "u", id: "3" });
    await b.route({ user: "u", id: "4" });
    assert.deepEqual(await appended(store(), "u"), ["1", "2", "3", "4"]);
  });

  it("treats a string at the state key as invalid state, kept aside", async () => {
    fresh();
    const s = store();
    await redis.set(s.keys("u")[0], "not ours");
    const warnings: string[] = [];
    const nodes = bot(s, warnings);
    await nodes.route({ user: "u", id: "1" });
    assert.deepEqual(await appended(s, "u"), ["1"]);
    assert.deepEqual(await nodes.user("u").aside(), ["not ours"]);
    assert.equal(warnings.length, 1);
    await nodes.route({ user: "u", id: "2" });
    assert.deepEqual(await appended(s, "u"), ["1", "2"]);
  });

  it("keeps aside, byte for byte, a stored value that is not UTF-8 text", async () => {
    fresh();
    const s = store();
    // bytes another program wrote (a gzip header): no UTF-8 text
    const bytes = Uint8Array.of(0x1f, 0x8b, 0x08, 0, 0xff, 0xfe, 0xc3, 0x28);
    const asString = s.keys("string")[0];
    const asField = s.keys("field")[0];
    await redis.set(asString, Buffer.from(bytes));
    await redis.hset(asField, "s", Buffer.from(bytes));
    const nodes = bot(s);
    for (const [user, key] of [["string", asString], ["field", asField]]) {
      await nodes.route({ user: user!, id: "1" });
      assert.deepEqual(await appended(s, user!), ["1"]);
      // the JSON list in field a holds the bytes (escaped where JSON must)
      const raw = await redis.hgetBuffer(key!, "a");
      const [kept] = JSON.parse(raw!.toString("latin1")) as string[];
      assert.deepEqual(
        Uint8Array.from(Buffer.from(kept!, "latin1")),
        bytes,
        `${user}: ${raw!.toString("hex")}`,
      );
      // aside() reads it as text: U+FFFD where it is not UTF-8
      const [text] = await nodes.user(user!).aside();
      assert.ok(text?.includes("\ufffd"), JSON.stringify(text));
    }
  });

  it("keeps aside what begin read when the state expired before the commit", async () => {
    fresh();
    const s = store();
    const [state] = s.keys("u");
    // a state botnodes cannot restore (a node since removed, say)
    await redis.hset(state, "s", "not ours");
    const lease = await s.begin("u");
    assert.equal(lease.state, "not ours");
    await redis.del(state); // the idle ttl ran out while the lease was held
    await s.commit(lease, "new", { aside: lease.state! });
    assert.deepEqual(await s.aside("u"), ["not ours"]);
    assert.equal(await s.get("u"), "new");
  });

  it("applies a commit that keeps its lease once, when it is sent again", async () => {
    fresh();
    const resending = resendingCommit(redis, () => Promise.resolve());
    const s = new RedisStore(resending.client, { prefix, clock: noWaiting });
    await redis.hset(s.keys("u")[0], "s", "raw");
    const lease = await s.begin("u", { eventId: "e1" });
    resending.arm();
    await s.commit(lease, "new", { aside: lease.state!, keep: true });
    assert.equal(resending.armed, false, "the resend was exercised");
    await s.release(lease);
    assert.deepEqual(await s.aside("u"), ["raw"]);
    assert.equal(await redis.hget(s.keys("u")[0], "e"), ":e1");
    assert.equal(await s.get("u"), "new");
  });

  it("moves another Redis type at the state key out of the way, keeping it", async () => {
    fresh();
    const s = store();
    const [state] = s.keys("u");
    await redis.rpush(state, "x", "y");
    const nodes = bot(s);
    assert.match(String(await s.get("u")), /a Redis list at /);
    await nodes.route({ user: "u", id: "1" });
    assert.deepEqual(await appended(s, "u"), ["1"]);
    const [kept] = await nodes.user("u").aside();
    const moved = /moved to (\S+) when replaced/.exec(kept ?? "")?.[1];
    assert.ok(moved, `aside: ${kept}`);
    assert.deepEqual(await redis.lrange(moved, 0, -1), ["x", "y"]);
  });

  it("commits whole when the hash holds fields it did not write", async () => {
    fresh();
    const s = store();
    const [state, lease] = s.keys("u");
    await redis.hset(state, "s", "{broken", "a", "not json", "e", "\n\n");
    await bot(s).route({ user: "u", id: "e1" });
    assert.deepEqual(await appended(s, "u"), ["e1"]);
    assert.deepEqual(await s.aside("u"), ["{broken", "not json"]);
    assert.equal(await redis.exists(lease), 0);
    // the event was remembered: a redelivery is skipped
    const again = await bot(s).route({ user: "u", id: "e1" });
    assert.deepEqual(again, {
      handled: false,
      reason: "duplicate",
      userId: "u",
    });
  });

  it("takes over a lease key that never expires (not a lease of ours)", async () => {
    fresh();
    const s = store();
    await redis.set(s.keys("u")[1], "stuck forever");
    await bot(s).route({ user: "u", id: "1" });
    assert.deepEqual(await appended(s, "u"), ["1"]);
  });

  it("lets each user of a batch succeed alone, whatever another's keys hold", async () => {
    fresh();
    const s = store({ batch: true });
    await redis.set(s.keys("bad")[0], "foreign");
    await redis.hset(s.keys("bad")[1], "f", "a foreign lease");
    await redis.sadd(s.keys("worse")[0], "a set");
    await redis.hset(s.keys("odd")[0], "a", "[1,", "e", "x");
    await redis.set(s.keys("odd")[1], "not a lease", "PX", 3_600_000);
    const nodes = bot(s);
    const users = ["good1", "bad", "good2", "worse", "odd", "good3"];
    const results = await Promise.allSettled(
      users.map((user) => nodes.route({ user, id: `${user}-1` })),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      users.map(() => "fulfilled"),
    );
    for (const user of users) {
      assert.deepEqual(await appended(s, user), [`${user}-1`]);
    }
  });

  it("recognises its own lease and commit when a command is sent twice", async () => {
    fresh();
    // every script call runs twice and the first reply is lost, as when a
    // client resends after a dropped connection (or Upstash retries)
    const twice: RedisLike = {
      eval: async (...args) => (await redis.eval(...args), redis.eval(...args)),
      evalsha: async (...args) => (
        await redis.evalsha(...args), redis.evalsha(...args)
      ),
    };
    const s = new RedisStore(twice, { prefix, clock: noWaiting });
    const nodes = bot(s);
    for (const id of ["1", "2", "3"]) await nodes.route({ user: "u", id });
    assert.deepEqual(await appended(s, "u"), ["1", "2", "3"]);
    await nodes.user("u").reset();
    assert.equal(await s.get("u"), undefined);
    await nodes.route({ user: "u", id: "4" });
    assert.deepEqual(await appended(s, "u"), ["4"]);
  });

  it("moves anything foreign at the lease key aside instead of waiting for it", async () => {
    fresh();
    const s = store();
    const [, lease] = s.keys("u");
    await redis.set(lease, "not a lease", "PX", 3_600_000);
    await bot(s).route({ user: "u", id: "1" });
    await redis.hset(lease, "f", "a hash");
    await redis.pexpire(lease, 3_600_000);
    await bot(s).route({ user: "u", id: "2" });
    await redis.rpush(lease, "a list");
    await bot(s).route({ user: "u", id: "3" });
    assert.deepEqual(await appended(s, "u"), ["1", "2", "3"]);
    const moved = (await redis.keys(`${lease}:foreign:*`)).sort();
    assert.equal(moved.length, 3);
    const types = await Promise.all(moved.map((key) => redis.type(key)));
    assert.deepEqual(types.sort(), ["hash", "list", "string"]);
  });

  it("keeps event ids apart that UTF-8 would merge (lone surrogates)", async () => {
    fresh();
    const s = store();
    const nodes = bot(s);
    const ids = ["a\uD800", "a\uD801", "a\uDFFF", "a\uFFFD", "a%uD800"];
    for (const id of ids) {
      const result = await nodes.route({ user: "u", id });
      assert.equal(result.handled, true, JSON.stringify(id));
    }
    assert.deepEqual(await appended(s, "u"), ids);
  });

  for (const eventIds of [true, false]) {
    it(
      `recognises its own commit sent again after another one followed it (${
        eventIds ? "with" : "without"
      } event ids)`,
      async () => {
        fresh();
        const other = bot(store(), [], eventIds);
        let b = 0;
        // a COMMIT runs, then another instance commits the same user, then
        // the client sends the first COMMIT again (a lost reply, a retry)
        const resending = resendingCommit(
          redis,
          () => other.route({ user: "u", id: `from-b-${++b}` }),
        );
        const a = bot(
          new RedisStore(resending.client, { prefix, clock: noWaiting }),
          [],
          eventIds,
        );
        for (const existing of [false, true]) {
          resending.arm();
          // the first time a new user, then one with a state
          const result = await a.route({ user: "u", id: `from-a-${existing}` });
          assert.equal(resending.armed, false, "the resend was exercised");
          assert.equal(result.handled, true);
        }
        assert.deepEqual(await appended(store(), "u"), [
          "from-a-false",
          "from-b-1",
          "from-a-true",
          "from-b-2",
        ]);
      },
    );
  }

  it("recognises its own commit sent again after a commit of the same store instance", async () => {
    fresh();
    // the commit in between comes from the same store (same token tag), so
    // it keeps the version it replaced without the tag
    const same: { store?: RedisStore } = {};
    const resending = resendingCommit(
      redis,
      async () =>
        await same.store!.commit(await same.store!.begin("u"), "between"),
    );
    const s = same.store = new RedisStore(resending.client, {
      prefix,
      clock: noWaiting,
    });
    await s.commit(await s.begin("u"), "first");
    resending.arm();
    await s.commit(await s.begin("u"), "second");
    assert.equal(resending.armed, false, "the resend was exercised");
    assert.equal(await s.get("u"), "between");
    const p = await redis.hget(s.keys("u")[0], "p");
    assert.match(p ?? "", /^\.\d+$/, "kept without its tag");
  });

  it("keeps a user in one hash that one expiry covers", async () => {
    fresh();
    const s = store({ ttl: 60_000 });
    const nodes = bot(s);
    await redis.set(s.keys("u")[0], "raw");
    await nodes.route({ user: "u", id: "1" });
    await nodes.route({ user: "u", id: "2" });
    assert.deepEqual(await redis.keys(`${prefix}:*`), [s.keys("u")[0]]);
    const pttl = await redis.pttl(s.keys("u")[0]);
    assert.ok(pttl > 0 && pttl <= 60_000, `PTTL ${pttl}`);
    assert.deepEqual(await s.aside("u"), ["raw"]);
    // without the option, the next commit removes the expiry
    await bot(store()).route({ user: "u", id: "3" });
    assert.equal(await redis.pttl(s.keys("u")[0]), -1);
    assert.deepEqual(await appended(s, "u"), ["1", "2", "3"]);
  });

  it("keeps aside a corrupt list of values kept aside, never failing on it", async () => {
    fresh();
    const s = store();
    const [state] = s.keys("u");
    for (const corrupt of ["[nan, inf]", '{"x":1}', "[[1]]", "[1e999]"]) {
      await redis.hset(state, "s", "{broken", "a", corrupt);
      await bot(s).route({ user: "u", id: `e-${corrupt}` });
      assert.deepEqual(await s.aside("u"), ["{broken", corrupt]);
      await redis.del(state);
    }
  });

  it("releases a marked lease whose commit was applied already (its event recorded)", async () => {
    fresh();
    const a = store();
    const b = store();
    const late = await a.begin("u", { eventId: "e1" });
    await redis.del(a.keys("u")[1]); // A's lease expires
    const holder = await b.begin("u", { eventId: "e1" });
    await a.commit(late, "from a"); // late, accepted: marks B's lease
    await b.commit(holder, "from b"); // e1 is recorded: applied already
    assert.equal(await redis.exists(a.keys("u")[1]), 0, "the lease is free");
    const next = await a.begin("u"); // does not wait (noWaiting clock)
    assert.equal(next.state, "from a");
    await a.release(next);
  });

  it("finds its own lease on a resent BEGIN even when it was marked meanwhile", async () => {
    fresh();
    const a = store();
    const late = await a.begin("u");
    await redis.del(a.keys("u")[1]);
    let interleave = true;
    const resending: RedisLike = {
      eval: (...args) => redis.eval(...args),
      evalsha: async (...args) => {
        const reply = await redis.evalsha(...args);
        if (interleave && args.length === 7) { // BEGIN: sha, 2, 2 keys, 3 args
          interleave = false;
          await a.commit(late, "late"); // marks the lease just taken
          return redis.evalsha(...args); // the same BEGIN, sent again
        }
        return reply;
      },
    };
    const b = new RedisStore(resending, { prefix, clock: noWaiting });
    const lease = await b.begin("u");
    assert.equal(interleave, false, "the resend was exercised");
    // the resent BEGIN read the state as the late commit left it: B's
    // commit builds on it, and nothing is lost
    assert.equal(lease.state, "late");
    await b.commit(lease, "from b");
    assert.equal(await redis.exists(b.keys("u")[1]), 0);
    assert.equal(await b.get("u"), "from b");
  });

  it("still waits for a lease another store instance holds", async () => {
    fresh();
    const holder = new RedisStore(redis, { prefix });
    await holder.begin("u");
    const other = new RedisStore(redis, { prefix, wait: 30 });
    await assert.rejects(other.begin("u"), LeaseTimeoutError);
  });
});

describe("RedisStore options", () => {
  const fake: RedisLike = {
    eval: () => Promise.resolve(null),
    evalsha: () => Promise.resolve(null),
  };

  it("rounds times up to whole milliseconds", () => {
    const store = new RedisStore(fake, { leaseTtl: 30_000 / 7, ttl: 1.5 });
    assert.equal(store.timing.leaseTtl, 4_286);
    assert.ok(Number.isInteger(store.timing.wait));
  });

  it("refuses times Redis or a timer cannot take, naming the option", () => {
    const cases: [keyof RedisStoreOptions, number][] = [
      ["ttl", 1e20],
      ["ttl", Infinity],
      ["leaseTtl", NaN],
      ["leaseTtl", 2 ** 31],
      ["wait", -1],
      ["wait", 0],
      ["seenEvents", 1.5],
      ["seenEvents", 1e9],
    ];
    for (const [name, value] of cases) {
      assert.throws(
        () => new RedisStore(fake, { [name]: value }),
        (error: unknown) =>
          error instanceof RangeError && error.message.includes(`"${name}"`),
        `${name}: ${value}`,
      );
    }
  });

  it("refuses options of the wrong type, showing a string as one", () => {
    assert.throws(
      () => new RedisStore(fake, { ttl: "5" as never }),
      (error: unknown) =>
        error instanceof RangeError && error.message.endsWith('got "5"'),
    );
    for (
      const [name, value] of [
        ["prefix", 5],
        ["prefix", null],
        ["batch", "no"],
        ["clock", {}],
      ] as const
    ) {
      assert.throws(
        () => new RedisStore(fake, { [name]: value } as never),
        (error: unknown) =>
          error instanceof TypeError && error.message.includes(`"${name}"`),
        `${name}: ${value}`,
      );
    }
    // ioredis' keyPrefix: scans and a Cluster's coalesced calls (keys in
    // their arguments) would not follow it
    const prefixed = new Redis(REDIS_URL, {
      keyPrefix: "app:",
      lazyConnect: true,
    });
    for (
      const client of [prefixed, { ...fake, options: { keyPrefix: "app:" } }]
    ) {
      assert.throws(
        () => new RedisStore(client, { prefix: "bot" }),
        (error: unknown) =>
          error instanceof TypeError &&
          error.message.includes('keyPrefix ("app:")') &&
          error.message.endsWith('prefix: "app:bot" (the same keys)'),
      );
    }
    prefixed.disconnect();
    const strings = new Redis(REDIS_URL, {
      stringNumbers: true,
      lazyConnect: true,
    });
    for (
      const client of [strings, {
        ...fake,
        options: { redisOptions: { stringNumbers: true } },
      }]
    ) {
      assert.throws(
        () => new RedisStore(client),
        /the client has the ioredis option stringNumbers/,
      );
    }
    strings.disconnect();
    const unprefixed = { ...fake, options: { keyPrefix: "" } };
    assert.ok(new RedisStore(unprefixed));
    // options that are no object, each store alike (not ignored: "x" would
    // have run on the defaults; null was a raw destructuring error)
    for (const options of ["x", null, 5]) {
      for (
        const make of [
          () => new RedisStore(fake, options as never),
          () => new MemoryStore(options as never),
        ]
      ) {
        assert.throws(make, (error: unknown) =>
          error instanceof TypeError &&
          /^Cannot create the store: its options must be an object, got /
            .test(error.message), String(options));
      }
    }
  });

  it(
    "runs with a rounded lease time against Redis",
    { skip: skipRedis },
    async () => {
      const redis = new Redis(REDIS_URL);
      try {
        const store = new RedisStore(redis, {
          prefix: randomPrefix("hostile"),
          leaseTtl: 30_000 / 7,
          ttl: 86_400_000 / 7,
        });
        const nodes = bot(store);
        await nodes.route({ user: "u", id: "1" });
        await nodes.route({ user: "u", id: "2" });
        assert.deepEqual(await appended(store, "u"), ["1", "2"]);
        await redis.del(...store.keys("u"));
      } finally {
        redis.disconnect();
      }
    },
  );
});
