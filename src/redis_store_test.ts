import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { storeContract } from "./_store_contract.ts";
import {
  randomPrefix,
  REDIS_URL,
  redisHarness,
  skipRedis,
} from "./_redis_test_utils.ts";
import { RedisStore } from "./redis_store.ts";
import type { RedisLike } from "./redis_store.ts";
import { StoreError } from "./errors.ts";

if (!skipRedis) {
  storeContract("RedisStore on ioredis", (options) => {
    const redis = new Redis(REDIS_URL);
    return Promise.resolve(
      redisHarness(
        redis,
        redis,
        options,
        () => Promise.resolve(redis.disconnect()),
      ),
    );
  });
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

  it("stores each user under one hash-tagged key per kind", async () => {
    const prefix = randomPrefix();
    const store = new RedisStore(redis, { prefix });
    await store.commit(await store.begin("a:b"), "state", { aside: "old" });
    assert.deepEqual(store.keys("a:b"), [
      `${prefix}:{a:b}`,
      `${prefix}:{a:b}:lease`,
      `${prefix}:{a:b}:aside`,
      `${prefix}:{a:b}:events`,
    ]);
    assert.deepEqual((await redis.keys(`${prefix}:*`)).sort(), [
      `${prefix}:{a:b}`,
      `${prefix}:{a:b}:aside`,
    ]);
    assert.equal(await redis.hget(`${prefix}:{a:b}`, "s"), "state");
    await redis.del(...store.keys("a:b"));
  });

  it("encodes ids so that none shares another's hash tag or keys", () => {
    const store = new RedisStore(redis, { prefix: "p" });
    const ids = ["", "%", "%25", "{", "}", "a}:lease", "{x}", "a%7B", "x\ny"];
    const all = ids.flatMap((id) => store.keys(id));
    assert.equal(new Set(all).size, all.length);
    for (const id of ids) {
      const [state, lease, aside, events] = store.keys(id);
      const tag = (key: string) =>
        key.slice(key.indexOf("{") + 1, key.indexOf("}"));
      assert.ok(tag(state).length > 0, `empty tag for ${JSON.stringify(id)}`);
      assert.equal(tag(lease), tag(state));
      assert.equal(tag(aside), tag(state));
      assert.equal(tag(events), tag(state));
    }
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
