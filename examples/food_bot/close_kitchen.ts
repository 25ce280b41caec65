// Closing the kitchen: everyone choosing food (on `hungry`) is put on hold
// and told why. What `nodes.users()` is for: acting on every user
// who sits on a node, here before a node is taken out of service.
//   BOT_TOKEN=... REDIS_URL=redis://127.0.0.1:6379 deno run -A examples/food_bot/close_kitchen.ts
import type { Nodes } from "../../mod.ts";
import type { Shared, Update, UserId } from "./types.ts";
import { Hold } from "./hold.ts";

export const CLOSED =
  "The kitchen is closed for now, so I dropped your cart. " +
  "Write to me when you are hungry again!";

/**
 * Moves every user on `hungry` to `hold` and tells them why; returns
 * how many were moved. `users()` is a snapshot read a page at a time (SCAN on
 * Redis), so the move names `from`: a user who ordered or left since the
 * page was read is left where they are.
 */
export async function closeKitchen(
  nodes: Nodes<Shared, Update, UserId>,
  api: Shared["api"],
): Promise<number> {
  let moved = 0;
  for await (const { userId } of nodes.users({ on: ["hungry"] })) {
    const id = Number(userId);
    if (await nodes.user(id).to(new Hold(), { from: ["hungry"] })) {
      await api.sendMessage(id, CLOSED);
      moved++;
    }
  }
  return moved;
}

if (import.meta.main) {
  const { default: process } = await import("node:process");
  const { Bot } = await import("grammy");
  const { Redis } = await import("ioredis");
  const { RedisStore } = await import("../../mod.ts");
  const { createFoodNodes, foodApiStub } = await import("./bot.ts");
  const token = process.env.BOT_TOKEN;
  if (!token) throw new Error("Set BOT_TOKEN to your bot's token");
  const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const bot = new Bot(token);
  const nodes = createFoodNodes(new RedisStore(redis, { prefix: "foodbot" }), {
    api: bot.api,
    foodApi: foodApiStub,
    logger: console,
  });
  console.log(`${await closeKitchen(nodes, bot.api)} carts dropped`);
  redis.disconnect();
}
