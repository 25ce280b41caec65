// The fast path of COMMIT under stress: 6 clients, leases of 15 ms that
// expire in the middle of handlers all the time, late commits overtaking
// live holders. Every acknowledged commit must be in the final state, once,
// and nothing else.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { randomPrefix, REDIS_URL, redisSkip } from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import { LeaseLostError } from "./errors.ts";

const skipRedis = await redisSkip();

/** A handler's work: 0 to 30 ms, so that many outlive their 15 ms lease. */
const work = () =>
  new Promise((resolve) => setTimeout(resolve, Math.random() * 30));

describe("fencing under expiring leases", { skip: skipRedis }, () => {
  for (const batch of [false, true]) {
    it(
      `loses no acknowledged commit and doubles none (6 clients, 15 ms leases${
        batch ? ", coalesced" : ""
      })`,
      async () => {
        const prefix = randomPrefix("stress");
        const clients = Array.from({ length: 6 }, () => new Redis(REDIS_URL));
        const users = ["a", "b", "c"];
        const acknowledged = new Map(users.map((u) => [u, new Set<string>()]));
        let fenced = 0;
        try {
          await Promise.all(clients.map(async (redis, c) => {
            const store = new RedisStore(redis, {
              prefix,
              leaseTtl: 15,
              wait: 10_000,
              batch,
            });
            for (let i = 0; i < 40; i++) {
              const user = users[(c + i) % users.length]!;
              const id = `${c}.${i}`;
              const lease = await store.begin(user);
              const seen: string[] = lease.state ? JSON.parse(lease.state) : [];
              await work();
              try {
                await store.commit(lease, JSON.stringify([...seen, id]));
                acknowledged.get(user)!.add(id);
              } catch (error) {
                if (!(error instanceof LeaseLostError)) throw error;
                fenced++;
                await store.release(lease);
              }
            }
          }));
          const reader = new RedisStore(clients[0]!, { prefix });
          for (const user of users) {
            const final: string[] = JSON.parse(
              (await reader.get(user)) ?? "[]",
            );
            assert.equal(new Set(final).size, final.length, "none twice");
            assert.deepEqual(
              [...final].sort(),
              [...acknowledged.get(user)!].sort(),
              `user ${user}: the final state holds exactly the acknowledged commits`,
            );
          }
          // the scenario did exercise fencing
          assert.ok(fenced > 0, "some commits were fenced");
        } finally {
          const keys = await clients[0]!.keys(`${prefix}:*`);
          if (keys.length > 0) await clients[0]!.del(...keys);
          for (const redis of clients) redis.disconnect();
        }
      },
    );
  }
});
