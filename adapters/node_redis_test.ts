import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createClient, createCluster } from "redis";
import { Cluster, Redis } from "ioredis";
import { storeContract } from "../store/mod.ts";
import {
  clusterNodes,
  clusterSkip,
  randomPrefix,
  REDIS_URL,
  redisHarness,
  redisSkip,
} from "../test_support/redis.ts";
import { type RedisLike, RedisStore } from "../src/redis_store.ts";
import { keySlot } from "../src/redis_keys.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";
import { fromNodeRedis, type NodeRedisLike } from "./node_redis.ts";

const skipRedis = await redisSkip();
const skipCluster = clusterSkip();

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

if (!skipCluster) {
  storeContract("RedisStore on a node-redis cluster", async (options) => {
    const cluster = createCluster({
      rootNodes: clusterNodes.map(({ host, port }) => ({
        url: `redis://${host}:${port}`,
      })),
    });
    await cluster.connect();
    const admin = new Cluster(clusterNodes);
    return redisHarness(fromNodeRedis(cluster), admin, options, async () => {
      admin.disconnect();
      await cluster.close();
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
  it("marks a createCluster client, which knows no master before connecting", () => {
    // not connected: recognising the kind of client needs no server
    const cluster = createCluster({
      rootNodes: [{ url: "redis://127.0.0.1:7000" }],
    });
    const client = createClient({ url: REDIS_URL });
    assert.equal(fromNodeRedis(cluster).isCluster, true);
    assert.equal(fromNodeRedis(cluster).masterOf?.(0), undefined);
    assert.equal(fromNodeRedis(client).isCluster, false);
    assert.equal(fromNodeRedis(client).masterOf, undefined);
  });

  it("names the master of each slot, as the cluster does", {
    skip: skipCluster,
  }, async () => {
    const cluster = createCluster({
      rootNodes: clusterNodes.map(({ host, port }) => ({
        url: `redis://${host}:${port}`,
      })),
    });
    await cluster.connect();
    const admin = new Cluster(clusterNodes);
    try {
      await admin.cluster("INFO");
      const redis = fromNodeRedis(cluster);
      const masters = new Set<string>();
      const byMaster = new Map<RedisLike, string>();
      for (const slot of [0, 5000, 5461, 10922, 10923, 16383]) {
        const master = redis.masterOf?.(slot);
        assert.ok(master, `slot ${slot}`);
        const name = admin.slots[slot]?.[0]!;
        // the same client for every slot of a master, one per master
        assert.equal(byMaster.get(master) ?? name, name);
        byMaster.set(master, name);
        masters.add(name);
        // the master's own connection: a key of that slot is local there
        const key = ["{a}", "{b}", "{c}", "{d}", "{e}", "{f}"].find((tag) =>
          keySlot(tag) === slot
        );
        if (key) assert.equal(await master.eval("return 1", 1, key), 1);
      }
      assert.equal(masters.size, 3);
      assert.equal(byMaster.size, 3);
      // and the users of one master share a call
      const store = new RedisStore(redis, { prefix: randomPrefix("nr") });
      const bot = appendBot(store);
      const users = Array.from({ length: 30 }, (_, i) => `user:${i}`);
      await Promise.all(users.map((user) => bot.route({ user, id: "a" })));
      for (const user of users) {
        assert.deepEqual(await appended(store, user), ["a"]);
      }
    } finally {
      admin.disconnect();
      await cluster.close();
    }
  });
});
