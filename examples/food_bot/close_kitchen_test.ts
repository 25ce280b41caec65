// Closing the kitchen with nodes.users(): on the in-memory store and on Redis.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RedisStore, type StateStore } from "../../mod.ts";
import { MemoryStore } from "../../testing/mod.ts";
import { createTestBot } from "../../testing/grammy.ts";
import { nodesMiddleware } from "../../integrations/grammy.ts";
import { Redis } from "ioredis";
import {
  randomPrefix,
  REDIS_URL,
  redisSkip,
} from "../../test_support/redis.ts";
import { createFoodNodes, foodApiStub } from "./bot.ts";
import { CLOSED, closeKitchen } from "./close_kitchen.ts";

async function kitchen(store: StateStore) {
  const tg = createTestBot();
  const nodes = createFoodNodes(store, {
    api: tg.bot.api,
    foodApi: foodApiStub,
    logger: { error: () => {} },
  });
  tg.bot.on("message", nodesMiddleware(nodes));
  const say = (user: number, ...texts: string[]) =>
    texts.reduce(
      (done, text) =>
        done.then(() =>
          tg.bot.handleUpdate(tg.update.text(tg.user(user), text))
        ),
      Promise.resolve(),
    );
  // 1 and 2 choose food, 3 sits in the main menu, 4 ordered (back in it)
  await say(1, "hi", "Yes", "pizza");
  await say(2, "hi", "Yes");
  await say(3, "hi");
  await say(4, "hi", "Yes", "soup", "Finish");
  tg.outbox.take();
  return { tg, nodes };
}

async function closes(store: StateStore) {
  const { tg, nodes } = await kitchen(store);
  assert.equal(await closeKitchen(nodes, tg.bot.api), 2);
  const told = tg.outbox.take().map((m) => [m.to, m.text]);
  assert.deepEqual(told.sort(), [[1, CLOSED], [2, CLOSED]]);
  const on = async (user: number) =>
    nodes.keyOf((await nodes.user(user).node())!);
  assert.deepEqual(
    await Promise.all([1, 2, 3, 4].map(on)),
    ["hold", "hold", "start", "start"],
  );
  assert.equal(await closeKitchen(nodes, tg.bot.api), 0, "nobody left");
  assert.deepEqual(tg.outbox.take(), []);
}

const skipRedis = await redisSkip();

describe("examples/food_bot/close_kitchen.ts", () => {
  it("puts everyone choosing food on hold and tells them, no one else", async () => {
    await closes(new MemoryStore());
  });

  // On Redis, SCAN reads a page ahead: the other user is listed as hungry
  // before they cancel. (MemoryStore's scan reads each user as it goes.)
  it("leaves a user who cancelled between the snapshot and the move (Redis)", {
    skip: skipRedis,
  }, async () => {
    // a database of its own: with other keys beside them, the two users may
    // fall in different SCAN pages, and the second page is read after the
    // cancel
    await withRedis(race, 9);
  });

  it("on Redis, through SCAN", { skip: skipRedis }, async () => {
    await withRedis(closes);
  });
});

async function race(store: StateStore) {
  const { tg, nodes } = await kitchen(store);
  const outcomes: string[] = [];
  nodes.observe((t) => void (t.kind === "to" && outcomes.push(t.outcome)));
  let raced = false;
  const api = {
    // while the first user is told, the other one cancels their order
    sendMessage: async (chat: number, text: string) => {
      if (!raced) {
        raced = true;
        const other = chat === 1 ? 2 : 1;
        await tg.bot.handleUpdate(tg.update.text(tg.user(other), "Cancel"));
      }
      return tg.bot.api.sendMessage(chat, text);
    },
  };
  assert.equal(await closeKitchen(nodes, api), 1);
  assert.deepEqual(outcomes, ["committed", "skipped"]);
  const told = tg.outbox.take().filter((m) => m.text === CLOSED);
  assert.equal(told.length, 1);
  const other = told[0]!.to === 1 ? 2 : 1;
  assert.equal(nodes.keyOf((await nodes.user(other).node())!), "start");
}

async function withRedis(
  run: (store: StateStore) => Promise<void>,
  db?: number,
) {
  const redis = db === undefined
    ? new Redis(REDIS_URL)
    : new Redis(REDIS_URL, { db });
  const prefix = randomPrefix("kitchen");
  try {
    await run(new RedisStore(redis, { prefix }));
  } finally {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
}
