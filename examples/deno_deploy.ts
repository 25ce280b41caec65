// The food bot as a webhook on Deno Deploy, state in Redis.
//
//   deployctl deploy --project=foodbot examples/deno_deploy.ts
//   env: BOT_TOKEN, REDIS_URL (rediss://... of your Redis), WEBHOOK_SECRET
//   then once: https://api.telegram.org/bot<token>/setWebhook?url=<deploy url>&secret_token=<WEBHOOK_SECRET>
//
// Each update is one HTTP request; several instances may handle updates of
// the same user at once. The Redis lease runs them one at a time, none lost,
// in the order the instances take the lease (not necessarily the order
// Telegram sent them). Redis over HTTP instead: @upstash/redis with
// @botnodes/core/upstash's fromUpstash.
import { Bot, webhookCallback } from "grammy";
import type { StateStore } from "../mod.ts";
import { nodesMiddleware } from "../integrations/grammy.ts";
import { createFoodNodes, foodApiStub } from "./food_bot/bot.ts";

/** Options of {@linkcode createWebhookHandler}. */
export interface WebhookOptions {
  bot: Bot;
  store: StateStore;
  /** Telegram sends it in X-Telegram-Bot-Api-Secret-Token; others get 401. */
  secretToken: string;
}

/** The food bot behind a `Request` → `Response` handler. */
export function createWebhookHandler(
  { bot, store, secretToken }: WebhookOptions,
): (request: Request) => Promise<Response> {
  const nodes = createFoodNodes(store, {
    api: bot.api,
    foodApi: foodApiStub,
    logger: console,
  });
  bot.on("message", nodesMiddleware(nodes));
  // Messages that are not for the nodes (group chats) go on to here.
  bot.on("message", (ctx) => ctx.reply("I only take orders in private chats."));
  const callback = webhookCallback(bot, "std/http", { secretToken });
  // Deno.serve passes no request to a handler declared without parameters,
  // as grammY's callback is: give it one.
  return (request) => callback(request);
}

if (import.meta.main) {
  const { Redis } = await import("ioredis");
  const { RedisStore } = await import("../mod.ts");
  const env = (name: string) => {
    const value = Deno.env.get(name);
    if (!value) throw new Error(`Set ${name}`);
    return value;
  };
  const redis = new Redis(env("REDIS_URL"));
  const store = new RedisStore(redis, { prefix: "foodbot" });
  const bot = new Bot(env("BOT_TOKEN"));
  Deno.serve(createWebhookHandler({
    bot,
    store,
    secretToken: env("WEBHOOK_SECRET"),
  }));
  // No process stays up on Deploy: a schedule fires the due timers (nodes
  // with a timeout()), each once, whichever instance runs it.
  const timers = createFoodNodes(store, {
    api: bot.api,
    foodApi: foodApiStub,
    logger: console,
  });
  Deno.cron("fire due timers", "* * * * *", async () => {
    await timers.runDue({ limit: 1_000 });
  });
}
