// Several OS processes, on Deno, Bun and Node, send events for the same users
// through one Redis: none is lost, none applied twice, each process's events
// stay in its order.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { randomPrefix, REDIS_URL, redisSkip } from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import {
  run,
  runtimeCommands,
  supportFile,
} from "../test_support/processes.ts";
import { appended } from "../test_support/append_bot.ts";

const skipRedis = await redisSkip();

const runtimes = runtimeCommands(supportFile("redis_worker.ts"));

describe("several processes on one Redis", { skip: skipRedis }, () => {
  it("apply 3,000 events for 10 users from 5 processes on 3 runtimes: none lost, none twice, in order", async () => {
    const prefix = randomPrefix("procs");
    const users = 10;
    // deno-2 and bun-2 send the scripts of their concurrent users in batches
    const processes = [
      ["deno-1", "deno", ""],
      ["bun-1", "bun", ""],
      ["node-1", "node", ""],
      ["deno-2", "deno", "batch"],
      ["bun-2", "bun", "batch"],
    ] as const;
    const events = 600; // per process: 3,000 in all
    const outputs = await Promise.all(
      processes.map(([name, runtime, batch]) =>
        run([
          ...runtimes[runtime]!,
          REDIS_URL,
          prefix,
          name,
          `${events}`,
          `${users}`,
          batch,
        ])
      ),
    );
    for (const [i, [name]] of processes.entries()) {
      assert.match(outputs[i]!, new RegExp(`${name} routed ${events} events`));
    }
    const redis = new Redis(REDIS_URL);
    try {
      const store = new RedisStore(redis, { prefix });
      let total = 0;
      for (let u = 0; u < users; u++) {
        const got = await appended(store, `user${u}`);
        total += got.length;
        assert.equal(
          new Set(got).size,
          got.length,
          `user${u} has an event twice`,
        );
        for (const [name] of processes) {
          const mine = got.filter((id) => id.startsWith(`${name}:`));
          const expected = Array.from({ length: events }, (_, i) => i)
            .filter((i) => i % users === u)
            .map((i) => `${name}:${i}`);
          assert.deepEqual(mine, expected, `user${u}, events of ${name}`);
        }
        await redis.del(...store.keys(`user${u}`));
      }
      assert.equal(total, processes.length * events);
    } finally {
      redis.disconnect();
    }
  });
});
