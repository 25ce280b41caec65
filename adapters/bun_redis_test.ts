import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { storeContract } from "../store/mod.ts";
import {
  randomPrefix,
  REDIS_URL,
  redisHarness,
  redisSkip,
  startRedis,
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
  Bun?: {
    RedisClient?: new (
      url: string,
      options?: { maxRetries?: number },
    ) => BunRedisClient;
  };
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

  it("connects Bun's client again once it gave up reconnecting: the bot recovers when Redis is back", async () => {
    const server = await startRedis();
    // one attempt, as the default's 10 are after a longer outage
    const client = new BunRedis!(server.url, { maxRetries: 1 });
    try {
      const bot = appendBot(new RedisStore(fromBunRedis(client)));
      await bot.route({ user: "u", id: "1" });
      await server.stop();
      await assert.rejects(bot.route({ user: "u", id: "2" }), {
        name: "StoreError",
      });
      assert.equal(client.connected, false);
      await server.start();
      // the first call after the outage may fail (it connects the client)
      const outcomes: string[] = [];
      for (let i = 0; i < 3 && outcomes.at(-1) !== "ok"; i++) {
        outcomes.push(
          await bot.route({ user: "u", id: `after ${i}` }).then(
            () => "ok",
            (error: Error) => error.name,
          ),
        );
      }
      assert.equal(outcomes.at(-1), "ok", outcomes.join(", "));
    } finally {
      client.close();
      await server.stop();
    }
  });

  it("is a standalone client, so that RedisStore batches on it", () => {
    const redis = fromBunRedis({ send: () => Promise.resolve(null) });
    assert.equal(redis.isCluster, false);
    assert.ok(new RedisStore(redis, { batch: true }));
  });
});

describe("fromBunRedis on a client that gave up reconnecting", () => {
  it("connects it again after a failed call, once at a time", async () => {
    let connected = false;
    let connects = 0;
    let finish: (() => void) | undefined;
    const client: BunRedisLike = {
      get connected() {
        return connected;
      },
      send: () =>
        connected
          ? Promise.resolve(1)
          : Promise.reject(new Error("Connection has failed")),
      connect: () => {
        connects++;
        return new Promise<void>((resolve) => {
          finish = () => {
            connected = true;
            resolve();
          };
        });
      },
    };
    const redis = fromBunRedis(client);
    await Promise.all([
      assert.rejects(redis.evalsha("sha", 0), /Connection has failed/),
      assert.rejects(redis.eval("return 1", 0), /Connection has failed/),
    ]);
    assert.equal(connects, 1, "one connect for the failures of one outage");
    finish!();
    await Promise.resolve();
    assert.equal(await redis.evalsha("sha", 0), 1);
    // a client without connect() (another RedisLike) is left as it is
    const plain = fromBunRedis({
      send: () => Promise.reject(new Error("down")),
    });
    await assert.rejects(plain.evalsha("sha", 0), /down/);
  });
});
