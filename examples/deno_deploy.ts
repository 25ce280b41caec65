// The food bot as a webhook on Deno Deploy, state in Redis.
//
//   deployctl deploy --project=foodbot examples/deno_deploy.ts
//   env: BOT_TOKEN, REDIS_URL (rediss://... of your Redis), WEBHOOK_SECRET
//   then once: https://api.telegram.org/bot<token>/setWebhook?url=<deploy url>&secret_token=<WEBHOOK_SECRET>
//
// Run locally (Deno.cron, which fires the timers on Deploy, is unstable
// outside it; the keys go under the prefix "foodbot", so use a Redis of your
// own): deno run -A --unstable-cron examples/deno_deploy.ts
//
// Each update is one HTTP request; several instances may handle updates of
// the same user at once. The Redis lease runs them one at a time, none lost,
// in the order the instances take the lease (not necessarily the order
// Telegram sent them). Redis over HTTP instead: @upstash/redis with
// @botnodes/core/upstash's fromUpstash.
//
// Errors under webhooks: grammY calls bot.catch only for updates it fetched
// itself (bot.start(), the runner). For a webhook, bot.handleUpdate rejects
// with the BotError, the web framework answers 500, and Telegram sends the
// update again, and again. The error boundary below logs the errors that a
// resend would only repeat (a 403 from a user who blocked the bot, a bug),
// so that Telegram gets its 200, and lets through those that a resend can
// fix (the user was busy, Redis was down), so that Telegram sends it again.
// A resend is safe: `eventId: updateId` (in createFoodNodes) remembers each
// committed update id in the same atomic commit as the state, so a resend of
// an update that was committed is skipped, and one that was not runs as if
// for the first time.
import { Bot, type BotError, webhookCallback } from "grammy";
import { LeaseTimeoutError, type StateStore, StoreError } from "../mod.ts";
import { nodesMiddleware } from "../integrations/grammy.ts";
import { createFoodNodes, foodApiStub } from "./food_bot/bot.ts";

/** The longest your handlers take once they have the user's lease, in ms. */
const HANDLER_MS = 10_000;

/** Options of {@linkcode createWebhookHandler}. */
export interface WebhookOptions {
  bot: Bot;
  store: StateStore;
  /** Telegram sends it in X-Telegram-Bot-Api-Secret-Token; others get 401. */
  secretToken: string;
  /** Where failed updates are reported. Default `console`. */
  logger?: { error(message: string, error?: unknown): void };
}

/**
 * The error handler of the bot's error boundary: logs an update's error, so
 * that Telegram gets a 200 and does not send the update again, unless a
 * resend can succeed where this delivery failed: the user stayed busy past
 * the store's `wait` (`LeaseTimeoutError`, the update never ran) or the
 * store failed (`StoreError`, nothing was written). Those it throws on:
 * the webhook answers 500, and Telegram sends the update again later.
 */
export function logOrRetry(
  logger: { error(message: string, error?: unknown): void },
): (error: BotError) => void {
  return (error) => {
    const cause = error.error;
    if (cause instanceof LeaseTimeoutError || cause instanceof StoreError) {
      throw cause;
    }
    logger.error(`Update ${error.ctx.update.update_id} failed:`, cause);
  };
}

/** The food bot behind a `Request` → `Response` handler. */
export function createWebhookHandler(
  { bot, store, secretToken, logger = console }: WebhookOptions,
): (request: Request) => Promise<Response> {
  const nodes = createFoodNodes(store, {
    api: bot.api,
    foodApi: foodApiStub,
    logger,
  });
  // Everything registered on `safe` runs inside the error boundary.
  const safe = bot.errorBoundary(logOrRetry(logger));
  safe.on("message", nodesMiddleware(nodes));
  // Messages that are not for the nodes (group chats) go on to here.
  safe.on(
    "message",
    (ctx) => ctx.reply("I only take orders in private chats."),
  );
  const callback = webhookCallback(bot, "std/http", {
    secretToken,
    // An update may wait up to the store's `wait` (35 s by default) for a
    // busy user's lease, then run: grammY's default of 10 s would give up
    // first. Past this time, answer 500 ("throw") and let Telegram send the
    // update again; the handler still running commits once, and the resend
    // is skipped (eventId) or, if the first run failed, runs.
    timeoutMilliseconds: store.timing.wait + HANDLER_MS,
    onTimeout: "throw",
  });
  // The secret is checked here first: grammY's callback would call getMe
  // (bot.init) before its own check, so that any request from anybody made
  // the bot call Telegram. (And Deno.serve passes no request to a handler
  // declared without parameters, as grammY's callback is: give it one.)
  return (request) =>
    sameSecret(request.headers.get(SECRET_HEADER), secretToken)
      ? callback(request)
      : Promise.resolve(new Response("secret token is wrong", { status: 401 }));
}

/** The header in which Telegram sends the webhook's secret token. */
const SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token";

/**
 * Whether a request's secret is the webhook's, compared in a time that does
 * not tell how much of it matched.
 */
function sameSecret(given: string | null, secret: string): boolean {
  const a = new TextEncoder().encode(given ?? "");
  const b = new TextEncoder().encode(secret);
  let differ = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) differ |= (a[i] ?? 0) ^ b[i]!;
  return differ === 0;
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
  // without a listener ioredis prints each connection error with a warning
  // that it is unhandled; the store reports failed calls as StoreError
  redis.on("error", (error) => console.error("Redis:", error.message));
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
