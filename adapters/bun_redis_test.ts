import { describe, it } from "node:test";
import assert from "node:assert/strict";
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
import { type BunRedisLike, fromBunRedis } from "./bun_redis.ts";

/** Bun's `RedisClient` class, on Bun only (no import of "bun" here). */
type BunRedisClient = BunRedisLike & {
  send(command: string, args: string[]): Promise<unknown>;
  close(): void;
};
const BunRedis = (globalThis as {
  Bun?: { RedisClient?: new (url: string) => BunRedisClient };
}).Bun?.RedisClient;

const skip = BunRedis === undefined
  ? "Bun's RedisClient exists on Bun only"
  : await redisSkip();

if (!skip) {
  for (const batch of [false, true]) {
    storeContract(
      `RedisStore on Bun's RedisClient${batch ? ", batched" : ""}`,
      (options) => {
        const client = new BunRedis!(REDIS_URL);
        const admin = new Redis(REDIS_URL);
        return Promise.resolve(redisHarness(
          fromBunRedis(client),
          admin,
          options,
          () => {
            admin.disconnect();
            client.close();
            return Promise.resolve();
          },
          batch,
        ));
      },
      { describe, it },
    );
  }
}

describe("fromBunRedis", { skip }, () => {
  it("takes a Bun RedisClient as it is and survives SCRIPT FLUSH", async () => {
    const client = new BunRedis!(REDIS_URL);
    try {
      const store = new RedisStore(fromBunRedis(client), {
        prefix: randomPrefix("bun-redis"),
      });
      const bot = appendBot(store);
      await bot.route({ user: "u", id: "1" });
      await client.send("SCRIPT", ["FLUSH"]);
      await bot.route({ user: "u", id: "2" });
      assert.deepEqual(await appended(store, "u"), ["1", "2"]);
      await client.send("DEL", store.keys("u"));
    } finally {
      client.close();
    }
  });

  it("is a standalone client, so that RedisStore batches on it", () => {
    const redis = fromBunRedis({ send: () => Promise.resolve(null) });
    assert.equal(redis.isCluster, false);
    assert.ok(new RedisStore(redis, { batch: true }));
  });
});
