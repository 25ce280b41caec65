// A handler three times slower than the lease, on Redis: its lease is kept
// alive while it runs, so an event for the same user sent meanwhile from
// another OS process waits for it, then runs on its state. Nothing is lost.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { randomPrefix, REDIS_URL, redisSkip } from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";

const skipRedis = await redisSkip();

const bin = fileURLToPath(new URL("../node_modules/.bin/", import.meta.url));
const worker = fileURLToPath(
  new URL("../test_support/late_worker.ts", import.meta.url),
);
// the child runs on the runtime that runs this test
const command = "Deno" in globalThis
  ? [`${bin}deno`, "run", "-A", worker]
  : "Bun" in globalThis
  ? [`${bin}bun`, "run", worker]
  : [`${bin}tsx`, worker];

/** Starts the worker; `ready` resolves on READY, `done` on a clean exit. */
function startWorker(args: string[]) {
  const child = spawn(command[0]!, [...command.slice(1), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
    if (stdout.includes("READY")) onReady();
  });
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const done = new Promise<string>((resolve, reject) => {
    child.on("exit", (code) => {
      onReady(); // never leave the parent waiting on a dead child
      if (code === 0) resolve(stdout);
      else reject(new Error(`worker exited with ${code}: ${stderr}`));
    });
  });
  return { ready, done };
}

describe(
  "a handler slower than the lease, on Redis",
  { skip: skipRedis },
  () => {
    it(
      "keeps its lease for 3 lease times while another process's event for the user waits, then both are applied in order",
      {
        timeout: 120_000,
      },
      async () => {
        const leaseTtl = 300;
        const prefix = randomPrefix("slow");
        const redis = new Redis(REDIS_URL);
        const store = new RedisStore(redis, { prefix, leaseTtl, wait: 60_000 });
        let late: ReturnType<typeof startWorker> | undefined;
        try {
          const bot = appendBot(store, async (event) => {
            if (event.id !== "slow") return;
            // the other process is connected and about to send its event
            late = startWorker([REDIS_URL, prefix, "u", "late", `${leaseTtl}`]);
            await late.ready;
            // the slow handler: three lease times (a slow API, a language model)
            await new Promise((resolve) => setTimeout(resolve, 3 * leaseTtl));
          });
          await bot.route({ user: "u", id: "first" });
          await bot.route({ user: "u", id: "slow" });
          assert.match(await late!.done, /ROUTED/);
          assert.deepEqual(await appended(store, "u"), [
            "first",
            "slow",
            "late",
          ]);
        } finally {
          await late?.done.catch(() => {});
          await redis.del(...store.keys("u"));
          redis.disconnect();
        }
      },
    );
  },
);
