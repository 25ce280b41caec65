// Durable timeouts on Redis, from several OS processes on three runtimes:
// every timer fires exactly once, close to its due time.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { randomPrefix, REDIS_URL, redisSkip } from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import { timerBot } from "../test_support/timer_bot.ts";

const skipRedis = await redisSkip();

const bin = fileURLToPath(new URL("../node_modules/.bin/", import.meta.url));
const worker = fileURLToPath(
  new URL("../test_support/timer_worker.ts", import.meta.url),
);
const runtimes: Record<string, string[]> = {
  deno: [`${bin}deno`, "run", "-A", worker],
  bun: [`${bin}bun`, "run", worker],
  node: [`${bin}tsx`, worker],
};

function run(command: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command[0]!, command.slice(1), { timeout: 120_000 }, (
      error,
      stdout,
      stderr,
    ) =>
      error
        ? reject(new Error(`${command.join(" ")}: ${stderr}`, { cause: error }))
        : resolve(stdout));
  });
}

describe("timers on Redis", { skip: skipRedis }, () => {
  it("fire 1,000 timers exactly once from 3 processes on 3 runtimes", async () => {
    const prefix = randomPrefix("timers");
    const redis = new Redis(REDIS_URL);
    const store = new RedisStore(redis, { prefix });
    try {
      const nodes = timerBot(store, "arming");
      const users = Array.from({ length: 1_000 }, (_, i) => `u${i}`);
      // armed for 0.5 to 2.5 s from now, while the processes start
      await Promise.all(
        users.map((user, i) =>
          nodes.route({ user, delay: 500 + (i * 2_000) / users.length })
        ),
      );
      const outputs = await Promise.all(
        Object.entries(runtimes).map(([name, command]) =>
          run([...command, REDIS_URL, prefix, name])
        ),
      );
      const counts = outputs.map((out) =>
        JSON.parse(out.trim().split("\n").at(-1)!)
      );
      const total = counts.reduce((sum, c) => sum + c.fired, 0);
      assert.equal(total, users.length, `fired ${JSON.stringify(counts)}`);
      const late: number[] = [];
      for (const user of users) {
        const node = await nodes.user(user).node();
        assert.equal(node && nodes.keyOf(node), "fired", user);
        const { at, earliest } = node!.data as { at: number; earliest: number };
        assert.ok(at >= earliest, `${user} fired ${earliest - at} ms early`);
        late.push(at - earliest);
      }
      assert.deepEqual(await store.dueTimers(Infinity, 10), []);
      late.sort((a, b) => a - b);
      const p50 = late[Math.floor(late.length / 2)]!;
      const p99 = late[Math.floor(late.length * 0.99)]!;
      console.log(
        `timers: ${JSON.stringify(counts)}, lateness p50 ${
          Math.round(p50)
        } ms, p99 ${Math.round(p99)} ms`,
      );
      // the loop sleeps at most 50 ms between rounds; on a loaded 2-core
      // machine a round may take long, hence the wide bound
      assert.ok(p99 < 10_000, `p99 lateness ${p99} ms`);
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
