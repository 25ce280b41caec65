// What RedisStore sends to Redis: counted on a Redis server of the test's own.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import {
  commandCalls,
  type OwnRedis,
  redisSkip,
  startRedis,
} from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import type { RedisLike } from "./redis_store.ts";
import { StoreError } from "./errors.ts";
import { SETTLE_CHUNK } from "./redis_script_runner.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";

const skipRedis = await redisSkip();

/** Counts what a client is asked to send. */
function counting(redis: RedisLike) {
  const sent = { eval: 0, evalsha: 0 };
  const client: RedisLike = {
    eval: (...args) => (sent.eval++, redis.eval(...args)),
    evalsha: (...args) => (sent.evalsha++, redis.evalsha(...args)),
  };
  return { client, sent };
}

describe("RedisStore protocol", { skip: skipRedis }, () => {
  let server: OwnRedis;
  let redis: Redis;
  let admin: Redis;
  before(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    admin = new Redis(server.url);
  });
  after(async () => {
    redis.disconnect();
    admin.disconnect();
    await server.stop();
  });

  it("sends exactly 2 script calls per uncontended event, 5 commands inside", async () => {
    const { client, sent } = counting(redis);
    const store = new RedisStore(client, { prefix: "count", batch: false });
    const bot = appendBot(store);
    await bot.route({ user: "warm-up", id: "0" }); // loads the scripts
    await admin.config("RESETSTAT");
    sent.eval = sent.evalsha = 0;
    const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        users.map((user) => bot.route({ user, id: `${round}` })),
      );
    }
    const calls = await commandCalls(admin);
    assert.equal(calls.evalsha, 100, JSON.stringify(calls));
    assert.equal(calls.eval, undefined, JSON.stringify(calls));
    assert.deepEqual(sent, { eval: 0, evalsha: 100 });
    // BEGIN: SET NX, HMGET; COMMIT's fast path: GET, HSET, DEL
    const { evalsha: _, "config|resetstat": __, ...inside } = calls;
    assert.deepEqual(inside, {
      set: 50,
      hmget: 50,
      get: 50,
      hset: 50,
      del: 50,
    });
    for (const user of users) {
      assert.deepEqual(await appended(store, user), ["0", "1", "2", "3", "4"]);
    }
  });

  it("by default, sends the scripts of users handled at once together", async () => {
    const { client, sent } = counting(redis);
    const store = new RedisStore(client, { prefix: "batch" });
    const bot = appendBot(store);
    await bot.route({ user: "warm-up", id: "0" });
    sent.eval = sent.evalsha = 0;
    // one at a time: still exactly 2 script calls per event
    for (let i = 0; i < 5; i++) await bot.route({ user: "alone", id: `${i}` });
    assert.deepEqual(sent, { eval: 0, evalsha: 10 });
    sent.evalsha = 0;
    const users = Array.from({ length: 50 }, (_, i) => `u${i}`);
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        users.map((user) => bot.route({ user, id: `${round}` })),
      );
    }
    // 200 events, 2 round trips each: per round one BEGIN call for the 50
    // users, whose reply is handed out SETTLE_CHUNK users a turn, so their
    // COMMITs go in ceil(50 / SETTLE_CHUNK) calls
    const perRound = 1 + Math.ceil(users.length / SETTLE_CHUNK);
    assert.deepEqual(sent, { eval: 0, evalsha: 4 * perRound });
    assert.ok(perRound <= 5);
    for (const user of users) {
      assert.deepEqual(await appended(store, user), ["0", "1", "2", "3"]);
    }
  });

  it("goes on unchanged after SCRIPT FLUSH, reloading each script once", async () => {
    const { client, sent } = counting(redis);
    const store = new RedisStore(client, { prefix: "flush" });
    const bot = appendBot(store);
    for (let i = 0; i < 5; i++) await bot.route({ user: "u", id: `${i}` });
    await admin.script("FLUSH");
    sent.eval = sent.evalsha = 0;
    for (let i = 5; i < 10; i++) await bot.route({ user: "u", id: `${i}` });
    const { eval: evals, evalsha } = sent;
    assert.deepEqual(
      await appended(store, "u"),
      ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    );
    // begin and commit each fell back to EVAL once, then EVALSHA again
    assert.equal(evals, 2);
    assert.equal(evalsha, 10);
  });

  it("turns a timed-out command into a StoreError, and works again after", async () => {
    const slow = new Redis(server.url, { commandTimeout: 50 });
    try {
      const store = new RedisStore(slow, { prefix: "timeout" });
      const bot = appendBot(store);
      await bot.route({ user: "u", id: "1" });
      await admin.client("PAUSE", 300, "ALL");
      await assert.rejects(
        bot.route({ user: "u", id: "2" }),
        (error: unknown) => {
          assert.ok(error instanceof StoreError, String(error));
          assert.equal(error.operation, "begin");
          assert.match(String((error.cause as Error).message), /timed out/i);
          return true;
        },
      );
      await admin.ping(); // answered once the pause is over
      await bot.route({ user: "u", id: "3" });
      assert.deepEqual(await appended(store, "u"), ["1", "3"]);
    } finally {
      slow.disconnect();
    }
  });

  it("refreshes the idle TTL on each commit, and an expired user starts over", async () => {
    const store = new RedisStore(redis, { prefix: "ttl", ttl: 60_000 });
    const bot = appendBot(store);
    await bot.route({ user: "u", id: "a" });
    await admin.pexpire(store.keys("u")[0], 10_000);
    await bot.route({ user: "u", id: "b" });
    const pttl = await admin.pttl(store.keys("u")[0]);
    assert.ok(pttl > 50_000 && pttl <= 60_000, `PTTL ${pttl}`);
    assert.deepEqual(await appended(store, "u"), ["a", "b"]);
    await admin.pexpire(store.keys("u")[0], 0); // expire now
    await bot.route({ user: "u", id: "c" });
    assert.deepEqual(await appended(store, "u"), ["c"]);
  });

  it("sends its calls at once on an auto-pipelining ioredis client, which still pipelines the rest", async () => {
    const piped = new Redis(server.url, { enableAutoPipelining: true });
    try {
      // what ioredis was set to, and had queued for its pipeline, at each
      // of the store's calls
      const seen: [boolean | undefined, number][] = [];
      const evalsha = piped.evalsha.bind(piped);
      Object.assign(piped, {
        evalsha: (...args: Parameters<Redis["evalsha"]>) => {
          const reply = evalsha(...args);
          seen.push([
            piped.options.enableAutoPipelining,
            piped.autoPipelineQueueSize,
          ]);
          return reply;
        },
      });
      const store = new RedisStore(piped, { prefix: "piped" });
      const bot = appendBot(store);
      await bot.route({ user: "warm-up", id: "0" }); // loads the scripts
      seen.length = 0;
      await Promise.all(
        ["a", "b", "c"].map((user) => bot.route({ user, id: "1" })),
      );
      assert.deepEqual(seen, [[false, 0], [false, 0]]); // BEGIN, COMMIT
      assert.deepEqual(await appended(store, "b"), ["1"]);
      // the client's own commands still wait for its pipeline
      assert.equal(piped.options.enableAutoPipelining, true);
      const read = piped.get("piped:other");
      assert.equal(piped.autoPipelineQueueSize, 1);
      assert.equal(await read, null);
      // one call per user goes through the pipeline, which groups them
      const single = appendBot(
        new RedisStore(piped, { prefix: "piped-single", batch: false }),
      );
      seen.length = 0;
      await single.route({ user: "a", id: "1" });
      assert.deepEqual(seen.map(([on]) => on), [true, true]);
    } finally {
      piped.disconnect();
    }
  });
});
