// RedisStore on an ioredis Cluster: the contract, and users spread over slots.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "ioredis";
import { storeContract } from "./store_contract.ts";
import {
  clusterNodes,
  clusterSkip,
  randomPrefix,
  redisHarness,
} from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import type { RedisLike } from "./redis_store.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";

const skipCluster = clusterSkip();

if (!skipCluster) {
  storeContract("RedisStore on an ioredis Cluster", (options) => {
    const cluster = new Cluster(clusterNodes);
    return Promise.resolve(
      redisHarness(cluster, cluster, options, async () => {
        await cluster.quit();
      }),
    );
  }, { describe, it });
}

describe("RedisStore on an ioredis Cluster", { skip: skipCluster }, () => {
  it("routes users whose keys fall on every master", async () => {
    const cluster = new Cluster(clusterNodes);
    const client: RedisLike = cluster;
    const store = new RedisStore(client, { prefix: randomPrefix("cluster") });
    try {
      const bot = appendBot(store);
      const users = Array.from({ length: 30 }, (_, i) => `user:${i}`);
      for (const id of ["a", "b", "c"]) {
        await Promise.all(users.map((user) => bot.route({ user, id })));
      }
      const owners = new Set<string>();
      for (const user of users) {
        assert.deepEqual(await appended(store, user), ["a", "b", "c"]);
        const slot = Number(
          await cluster.cluster("KEYSLOT", store.keys(user)[0]),
        );
        const lease = Number(
          await cluster.cluster("KEYSLOT", store.keys(user)[1]),
        );
        assert.equal(lease, slot);
        owners.add(String(cluster.slots[slot]?.[0]));
        await cluster.del(store.keys(user)[0]);
      }
      assert.equal(owners.size, 3, "users spread over the three masters");
    } finally {
      await cluster.quit();
    }
  });
});
