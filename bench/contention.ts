// Scenario 3: 100 users, 8 processes, every process sending events for the
// same users. Events/s, and updates lost: events whose handler ran but whose
// id is missing from the user's final state.
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { RedisStore } from "../mod.ts";
import { appended } from "../test_support/append_bot.ts";
import { runProcess } from "./_common.ts";

export const PROCESSES = 8;
export const CONTENDED_USERS = 100;
export const EVENTS_PER_PROCESS = 500;

export interface ContentionResult {
  variant: "botnodes" | "grammy-session";
  events: number;
  eventsPerSec: number;
  lost: number;
}

const worker = fileURLToPath(
  new URL("./contention_worker.ts", import.meta.url),
);

/** Runs the 8 processes with `runtime` (a command prefix) and counts. */
export async function runContention(
  url: string,
  variant: ContentionResult["variant"],
  runtime: string[],
): Promise<ContentionResult> {
  const redis = new Redis(url);
  try {
    await redis.flushall();
    const outputs = await Promise.all(
      Array.from({ length: PROCESSES }, (_, p) =>
        runProcess([
          ...runtime,
          worker,
          url,
          variant,
          `${p}`,
          `${CONTENDED_USERS}`,
          `${EVENTS_PER_PROCESS}`,
        ])),
    );
    // each process times its own events; they overlap, so the slowest one is
    // the time all events took (process start-up left out)
    const seconds = Math.max(...outputs.map((out) => JSON.parse(out).seconds));
    const events = PROCESSES * EVENTS_PER_PROCESS;
    let stored = 0;
    if (variant === "botnodes") {
      const store = new RedisStore(redis, { prefix: "contention" });
      for (let u = 0; u < CONTENDED_USERS; u++) {
        stored += (await appended(store, `${u}`)).length;
      }
    } else {
      for (let u = 1; u <= CONTENDED_USERS; u++) {
        const raw = await redis.get(`contention:${u}`);
        stored += raw ? JSON.parse(raw).events.length : 0;
      }
    }
    return {
      variant,
      events,
      eventsPerSec: events / seconds,
      lost: events - stored,
    };
  } finally {
    redis.disconnect();
  }
}
