// The food bot in the terminal: each line you type is a message from one
// user; the bot's replies are printed, then the node you are on. "/wait 10"
// lets 10 minutes pass (on the chat's own clock, at most a day at a time):
// reminders that fall due are sent.
// State is in memory, or in Redis when REDIS_URL is set (keys under
// CHAT_PREFIX, default "foodbot-chat"). Ctrl-D quits.
//   deno task chat
import process from "node:process";
import { createInterface } from "node:readline";
import type { StateStore } from "../../mod.ts";
import { FakeClock, MemoryStore } from "../../testing/mod.ts";
import { createFoodNodes, foodApiStub } from "./bot.ts";

const USER_ID = 1;
const name = process.env.CHAT_NAME ?? "friend";
const say = (line: string) => process.stdout.write(`${line}\n`);

// the chat's own clock, so that "/wait" can let time pass
const clock = new FakeClock(Date.now());
let store: StateStore = new MemoryStore({ clock });
let close = () => {};
if (process.env.REDIS_URL) {
  const { Redis } = await import("ioredis");
  const { RedisStore } = await import("../../mod.ts");
  // where the state is, without the URL's user and password
  let where: string;
  try {
    const url = new URL(process.env.REDIS_URL);
    where = `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    say("REDIS_URL is not a URL (redis://host:port)");
    process.exit(2);
  }
  // fail an event fast while Redis is down, and after 5 s when it does not
  // answer, as the README advises
  const redis = new Redis(process.env.REDIS_URL, {
    maxRetriesPerRequest: 1,
    commandTimeout: 5_000,
  });
  // each new kind of connection error once (no URL in it); events report
  // their own
  let shown = "";
  redis.on("error", (error: Error) => {
    const text = error.message.replace(/\/\/\S*@/g, "//***@");
    if (text !== shown) say(`(redis) ${shown = text}`);
  });
  store = new RedisStore(redis, {
    prefix: process.env.CHAT_PREFIX ?? "foodbot-chat",
    clock,
  });
  close = () => redis.disconnect();
  say(`(state in Redis at ${where})`);
}

const nodes = createFoodNodes(store, {
  api: {
    sendMessage: (_chatId, text) => Promise.resolve(say(`bot: ${text}`)),
  },
  foodApi: foodApiStub,
  logger: { error: (message) => say(`(log) ${message}`) },
});

const lines = createInterface({
  input: process.stdin,
  terminal: false,
});
const interactive = process.stdin.isTTY === true;
if (interactive) {
  say('Type a message ("/wait 10" lets 10 minutes pass; Ctrl-D to quit).');
}
for await (const text of lines) {
  if (!interactive) say(`you: ${text}`); // piped input: show what was sent
  const wait = /^\/wait (\d+(?:\.\d+)?)$/.exec(text.trim());
  // at most a day at a time, so that the clock stays a time
  const minutes = wait ? Math.min(Number(wait[1]), 24 * 60) : 0;
  try {
    if (wait) {
      clock.advance(minutes * 60_000);
      await nodes.runDue();
    } else {
      await nodes.route({
        from: { id: USER_ID, first_name: name, username: name },
        chat: { type: "private" },
        msg: { text },
      });
    }
    const node = await nodes.user(USER_ID).node();
    say(`  [${node ? nodes.keyOf(node) : "no state"}]`);
  } catch (error) {
    // a bot would log it and answer the next message; so does the chat
    say(`(error) ${error instanceof Error ? error.message : String(error)}`);
  }
}
close();
