// A process killed with SIGKILL while it holds a user's lease: the next event
// for that user waits until the lease's time to live has run out (not less),
// then proceeds on the last committed state.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { randomPrefix, REDIS_URL, redisSkip } from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";

const skipRedis = await redisSkip();

const root = fileURLToPath(new URL("../", import.meta.url));
const worker = fileURLToPath(
  new URL("../test_support/crash_worker.ts", import.meta.url),
);
const commands: Record<string, string[]> = {
  deno: [`${root}node_modules/.bin/deno`, "run", "-A", worker],
  bun: [`${root}node_modules/.bin/bun`, "run", worker],
};

describe("a process killed while holding a lease", { skip: skipRedis }, () => {
  for (const runtime of ["deno", "bun"]) {
    it(`on ${runtime}: the next event waits out the lease TTL, then finds the last commit`, async () => {
      const prefix = randomPrefix("crash");
      const leaseTtl = 1_000;
      const [command, ...args] = commands[runtime]!;
      const child = spawn(command!, [
        ...args,
        REDIS_URL,
        prefix,
        "u",
        `${leaseTtl}`,
        "3",
      ], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      await new Promise<void>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (chunk) => {
          out += chunk;
          if (out.includes("HOLDING")) resolve();
        });
        child.once(
          "exit",
          () => reject(new Error(`worker exited early: ${out}`)),
        );
      });
      const redis = new Redis(REDIS_URL);
      try {
        const store = new RedisStore(redis, { prefix, leaseTtl, wait: 10_000 });
        // The clock (monotonic) starts before PTTL is asked: the lease
        // expires `remaining` ms after Redis ran PTTL, so no sooner than
        // `remaining` ms after `started`, however long the reply, the kill
        // and the exit take on a busy machine. (Started after them, the
        // measured wait came out short under load: "waited 981 ms of 991".)
        const started = performance.now();
        const remaining = await redis.pttl(store.keys("u")[1]);
        assert.ok(
          remaining > 0 && remaining <= leaseTtl,
          `lease PTTL ${remaining}`,
        );
        child.kill("SIGKILL");
        assert.equal(await exited, null, "killed, not exited");
        const result = await appendBot(store).route({ user: "u", id: "after" });
        const waited = performance.now() - started;
        assert.ok(result.handled);
        // Redis expires keys with millisecond precision: allow 5 ms of rounding
        assert.ok(
          waited >= remaining - 5,
          `waited ${Math.round(waited)} ms of ${remaining}`,
        );
        assert.deepEqual(await appended(store, "u"), [
          "committed-0",
          "committed-1",
          "committed-2",
          "after",
        ]);
        await redis.del(...store.keys("u"));
      } finally {
        child.kill("SIGKILL");
        redis.disconnect();
      }
    });
  }
});
