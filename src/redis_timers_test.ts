// Durable timeouts on Redis, from several OS processes on three runtimes:
// every timer fires exactly once, close to its due time.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Redis } from "ioredis";
import {
  randomPrefix,
  REDIS_URL,
  redisSkip,
  startRedis,
} from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import {
  bin,
  run,
  runtimeCommands,
  supportFile,
} from "../test_support/processes.ts";
import { timerBot } from "../test_support/timer_bot.ts";

const skipRedis = await redisSkip();

const runtimes = runtimeCommands(supportFile("timer_worker.ts"));

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

  it("fire again elsewhere once a process killed in onTimeout loses its lease, and only once", async () => {
    const prefix = randomPrefix("timer-crash");
    const redis = new Redis(REDIS_URL);
    const leaseTtl = 500;
    const store = new RedisStore(redis, { prefix, leaseTtl, wait: 10_000 });
    try {
      const nodes = timerBot(store, "survivor");
      await nodes.route({ user: "u", delay: 0 });
      const crash = supportFile("timer_crash_worker.ts");
      const child = spawn(`${bin}deno`, [
        "run",
        "-A",
        crash,
        REDIS_URL,
        prefix,
        String(leaseTtl),
      ], { stdio: ["ignore", "pipe", "inherit"] });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      await new Promise<void>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (chunk) => {
          out += chunk;
          if (out.includes("FIRING")) resolve();
        });
        child.once("exit", () => reject(new Error(`exited early: ${out}`)));
      });
      child.kill("SIGKILL");
      await exited;
      // the dead process's lease runs out; the timer is still due
      const fired = [];
      const deadline = Date.now() + 20_000;
      while (fired.length === 0 && Date.now() < deadline) {
        fired.push(...await nodes.runDue());
        if (fired.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      assert.deepEqual(fired.map((f) => [f.userId, f.key]), [["u", "fired"]]);
      const node = await nodes.user("u").node();
      assert.equal((node?.data as { by: string }).by, "survivor");
      assert.deepEqual(await nodes.runDue(), []);
      assert.deepEqual(await store.dueTimers(Infinity, 10), []);
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it("lose no armed timer when Redis restarts (with persistence)", async () => {
    const server = await startRedis([
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      "--dir",
      await tempDir(),
    ]);
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
    redis.on("error", () => {});
    try {
      const store = new RedisStore(redis, { prefix: "restart" });
      const nodes = timerBot(store, "before");
      const users = Array.from({ length: 50 }, (_, i) => `u${i}`);
      await Promise.all(users.map((user) => nodes.route({ user, delay: 0 })));
      await server.stop();
      await server.start();
      await redis.ping();
      const after = timerBot(
        new RedisStore(redis, { prefix: "restart" }),
        "after",
      );
      const fired = await after.runDue({ limit: 1_000 });
      assert.deepEqual(fired.map((f) => f.userId).sort(), [...users].sort());
    } finally {
      redis.disconnect();
      await server.stop();
    }
  });
});

async function tempDir(): Promise<string> {
  const { mkdtemp } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  return await mkdtemp(join(tmpdir(), "botnodes-timers-"));
}

describe("the index of timers holding what botnodes did not write", {
  skip: skipRedis,
}, () => {
  it("moves a value of another type aside and goes on; drops foreign members", async () => {
    const prefix = randomPrefix("foreign-index");
    const redis = new Redis(REDIS_URL);
    const store = new RedisStore(redis, { prefix });
    const index = `${prefix}:{}:timers`;
    try {
      await redis.set(index, "not a sorted set");
      await redis.set(`${index}:foreign:1`, "an earlier one");
      const nodes = timerBot(store, "here");
      await nodes.route({ user: "a", delay: 0 }); // arms: the index is needed
      assert.equal(await redis.type(index), "zset");
      assert.equal(await redis.get(`${index}:foreign:1`), "an earlier one");
      assert.equal(await redis.get(`${index}:foreign:2`), "not a sorted set");
      // members botnodes cannot have written, due already
      await redis.zadd(index, 0, "hello world", 0, "x", 0, "~abc", 0, "~\nu");
      // ... and members like those of escaped ids, which are not: a well-
      // formed id, an id escaped twice, a deep run of % (no stack overflow)
      await redis.zadd(
        index,
        0,
        "%0000000abc",
        0,
        "%0000000%25uD800",
        0,
        "%".repeat(300_000) + "0000000u",
      );
      // ... and due times botnodes does not write so (it writes ~ only for a
      // due time outside 7 digits, as String(due) gives it)
      await redis.zadd(index, 0, "~5\nalice", 0, "~0x10\nbob", 0, "~ 7 \nc");
      const fired = await nodes.runDue();
      assert.deepEqual(fired.map((f) => f.userId), ["a"]);
      assert.deepEqual(await redis.zrange(index, "0", "-1"), [], "all dropped");
      // a claim or a read on a string again
      await redis.set(index, "again");
      assert.deepEqual(await nodes.runDue(), []);
      assert.equal(await redis.get(`${index}:foreign:3`), "again");
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
