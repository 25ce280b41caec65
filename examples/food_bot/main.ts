// The food bot on Telegram: long polling, state in Redis.
//   BOT_TOKEN=... REDIS_URL=redis://127.0.0.1:6379 deno run -A examples/food_bot/main.ts
import process from "node:process";
import { Bot } from "grammy";
import { Redis } from "ioredis";
import { RedisStore } from "../../mod.ts";
import { nodesMiddleware } from "../../integrations/grammy.ts";
import { createFoodNodes, foodApiStub } from "./bot.ts";

const token = process.env.BOT_TOKEN;
if (!token) {
  console.error("Set BOT_TOKEN to your bot's token (from @BotFather)");
  process.exit(1);
}
const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const bot = new Bot(token);
const nodes = createFoodNodes(new RedisStore(redis, { prefix: "foodbot" }), {
  api: bot.api,
  foodApi: foodApiStub,
  logger: console,
});

// The seed's "default router accessible from any state": handlers before the
// nodes answer whatever node the user is on.
bot.command("help", (ctx) => ctx.reply("Say Yes if you are hungry."));
bot.on("message", nodesMiddleware(nodes));
// Messages that are not for the nodes (group chats) go on to here.
bot.on("message", (ctx) => ctx.reply("I only take orders in private chats."));
bot.catch((error) => console.error("Update failed:", error.error));

process.once("SIGINT", () => bot.stop());
process.once("SIGTERM", () => bot.stop());
await bot.start({
  allowed_updates: ["message"],
  onStart: (me) => console.log(`@${me.username} is running`),
});
redis.disconnect();
