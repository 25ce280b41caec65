import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createClient, createCluster } from "redis";
import { Redis } from "ioredis";
import { storeContract } from "../store/mod.ts";
import {
  randomPrefix,
  REDIS_URL,
  redisHarness,
  redisSkip,
} from "../test_support/redis.ts";
import { RedisStore } from "../src/redis_store.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";
import { fromNodeRedis, type NodeRedisLike } from "./node_redis.ts";

const skipRedis = await redisSkip();

if (!skipRedis) {
  storeContract("RedisStore on node-redis", async (options) => {
    const client = await createClient({ url: REDIS_URL }).connect();
    const admin = new Redis(REDIS_URL);
    return redisHarness(fromNodeRedis(client), admin, options, async () => {
      admin.disconnect();
      await client.close();
    });
  }, { describe, it });
}

describe("fromNodeRedis", { skip: skipRedis }, () => {
  it("takes a node-redis client as it is and survives SCRIPT FLUSH", async () => {
    const client = await createClient({ url: REDIS_URL }).connect();
    try {
      const typed: NodeRedisLike = client;
      const store = new RedisStore(fromNodeRedis(typed), {
        prefix: randomPrefix("node-redis"),
      });
      const bot = appendBot(store);
      await bot.route({ user: "u", id: "1" });
      await client.scriptFlush();
      await bot.route({ user: "u", id: "2" });
      assert.deepEqual(await appended(store, "u"), ["1", "2"]);
      await client.del(store.keys("u"));
    } finally {
      await client.close();
    }
  });
});

describe("fromNodeRedis on a cluster", () => {
  it("marks a createCluster client, so that batching is refused", () => {
    // not connected: recognising the kind of client needs no server
    const cluster = createCluster({
      rootNodes: [{ url: "redis://127.0.0.1:7000" }],
    });
    const client = createClient({ url: REDIS_URL });
    assert.equal(fromNodeRedis(cluster).isCluster, true);
    assert.equal(fromNodeRedis(client).isCluster, false);
    assert.throws(
      () => new RedisStore(fromNodeRedis(cluster), { batch: true }),
      (error: unknown) =>
        error instanceof TypeError && /standalone Redis/.test(error.message),
    );
    assert.ok(new RedisStore(fromNodeRedis(client), { batch: true }));
  });
});
