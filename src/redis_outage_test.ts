// Redis stopped in the middle of a stream of events, then started again:
// events during the outage fail with StoreError (grammY's caller sees it in a
// BotError), none is half-applied, and the bot recovers by itself.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BotError, type Context } from "grammy";
import { Redis } from "ioredis";
import { z } from "zod";
import { Node, Nodes } from "../mod.ts";
import { createTestBot } from "../testing/grammy.ts";
import { StoreError } from "./errors.ts";
import { type OwnRedis, redisSkip, startRedis } from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";

const skipRedis = await redisSkip();

class Log extends Node<null, Context, number, { texts: string[] }> {
  static override schema = z.object({ texts: z.array(z.string()) });
  onEvent(_user: number, update: Context): Log {
    return new Log({ texts: [...this.data.texts, update.msg?.text ?? ""] });
  }
}

describe("Redis outage", { skip: skipRedis }, () => {
  let dir: string;
  let server: OwnRedis;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "botnodes-outage-"));
    // durable: every write is on disk before Redis answers
    server = await startRedis([
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      "--dir",
      dir,
    ]);
  });
  after(async () => {
    await server.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it("fails events with StoreError while Redis is down and recovers after, losing nothing", async () => {
    // fail fast while disconnected; reconnect every 20 ms
    const redis = new Redis(server.url, {
      maxRetriesPerRequest: 1,
      retryStrategy: () => 20,
    });
    redis.on("error", () => {}); // connection errors are expected here
    const tg = createTestBot();
    const store = new RedisStore(redis, { prefix: "outage" });
    const nodes = new Nodes<null, Context, number>({
      store,
      nodes: { log: Log },
      start: () => new Log({ texts: [] }),
      shared: null,
      userId: (ctx) => ctx.from?.id,
    });
    tg.bot.on("message", nodes.route);
    const send = (text: string) =>
      tg.bot.handleUpdate(tg.update.text(tg.user(1), text));
    try {
      await send("start");
      for (const text of ["a", "b", "c"]) await send(text);

      await server.stop(true); // SIGKILL: Redis crashes
      for (const text of ["x", "y", "z"]) {
        await assert.rejects(send(text), (error: unknown) => {
          assert.ok(error instanceof BotError, String(error));
          assert.ok(error.error instanceof StoreError, String(error.error));
          assert.equal(error.error.operation, "begin");
          return true;
        });
      }

      await server.start(); // same port, same data directory
      for (const text of ["d", "e"]) await send(text); // no process restart
      const node = await nodes.user(1).node();
      assert.deepEqual(node?.data, { texts: ["a", "b", "c", "d", "e"] });
    } finally {
      redis.disconnect();
    }
  });

  it("never half-applies events in flight when Redis dies under load", async () => {
    const redis = new Redis(server.url, {
      maxRetriesPerRequest: 1,
      retryStrategy: () => 20,
    });
    redis.on("error", () => {});
    const store = new RedisStore(redis, {
      prefix: "under-load",
      leaseTtl: 500, // a lease taken just before the crash survives in the AOF
      wait: 5_000,
    });
    const bot = appendBot(store);
    const users = ["u0", "u1", "u2", "u3", "u4"];
    type Outcome = { id: string; result: "ok" | string };
    const outcomes = new Map(users.map((u) => [u, [] as Outcome[]]));
    const progress = new Progress();
    let stop = false;
    const loop = async (user: string) => {
      for (let i = 0; !stop; i++) {
        const id = `${user}-${i}`;
        try {
          await bot.route({ user, id });
          outcomes.get(user)!.push({ id, result: "ok" });
        } catch (error) {
          const op = error instanceof StoreError
            ? error.operation
            : String(error);
          outcomes.get(user)!.push({ id, result: op });
        }
        progress.notify();
      }
    };
    const count = (user: string, result: (r: string) => boolean) =>
      outcomes.get(user)!.filter((o) => result(o.result)).length;
    try {
      const loops = Promise.all(users.map(loop));
      await progress.until(() =>
        users.every((u) => count(u, (r) => r === "ok") >= 20)
      );
      await server.stop(true);
      await progress.until(() =>
        users.every((u) => count(u, (r) => r !== "ok") >= 2)
      );
      const okBefore = new Map(
        users.map((u) => [u, count(u, (r) => r === "ok")]),
      );
      await server.start();
      await progress.until(() =>
        users.every((u) => count(u, (r) => r === "ok") >= okBefore.get(u)! + 20)
      );
      stop = true;
      await loops;
      let failures = 0;
      for (const user of users) {
        const stored = await appended(store, user);
        const mine = outcomes.get(user)!;
        assert.equal(
          new Set(stored).size,
          stored.length,
          `${user}: an event twice`,
        );
        // stored events keep the order they were sent in
        const order = mine.map((o) => o.id);
        assert.deepEqual(
          [...stored].sort((a, b) => order.indexOf(a) - order.indexOf(b)),
          stored,
        );
        for (const { id, result } of mine) {
          if (result === "ok") {
            assert.ok(stored.includes(id), `${id} succeeded but is lost`);
          } else if (result === "begin") {
            assert.ok(
              !stored.includes(id),
              `${id} failed before running, yet is stored`,
            );
          } else {
            // a commit whose reply was lost may or may not have been applied
            assert.equal(result, "commit", `${id} failed with ${result}`);
          }
          if (result !== "ok") failures++;
        }
      }
      assert.ok(failures >= 10, `${failures} failures during the outage`);
      const total = [...outcomes.values()].reduce(
        (n, list) => n + list.length,
        0,
      );
      console.log(
        `outage under load: ${total} events, ${failures} failed, 0 lost`,
      );
    } finally {
      stop = true;
      redis.disconnect();
    }
  });
});

/** Resolves waiters once their condition holds; checked on each notify. */
class Progress {
  #waiters: { holds: () => boolean; resolve: () => void }[] = [];
  until(holds: () => boolean): Promise<void> {
    if (holds()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ holds, resolve }));
  }
  notify(): void {
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.holds()) return true;
      waiter.resolve();
      return false;
    });
  }
}
