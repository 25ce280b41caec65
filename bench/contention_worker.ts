// One of the processes of scenario 3: sends `events` events round-robin over
// the shared users, 16 in flight, each event appending its own id to the
// user's state. Prints {"seconds": ...} when done.
// Arguments: <redis url> <botnodes|grammy-session> <process index> <users> <events>
import process from "node:process";
import { Redis } from "ioredis";
import { type Context, session, type SessionFlavor } from "grammy";
// The package's "types" export names a file it does not ship (mod.d.ts).
// @ts-types="../node_modules/@grammyjs/storage-redis/dist/mod.d.mts"
import { RedisAdapter } from "@grammyjs/storage-redis";
import { RedisStore } from "../mod.ts";
import { appendBot } from "../test_support/append_bot.ts";
import { drive } from "./_common.ts";
import { localBot, textUpdate } from "./throughput.ts";

const [url, variant, index, users, events] = process.argv.slice(2);
const redis = new Redis(url!);
const id = (i: number) => `p${index}-${i}`;
let handle: (i: number) => Promise<unknown>;
if (variant === "botnodes") {
  const bot = appendBot(
    new RedisStore(redis, { prefix: "contention", wait: 120_000 }),
  );
  handle = (i) => bot.route({ user: `${i % Number(users)}`, id: id(i) });
} else {
  type C = Context & SessionFlavor<{ events: string[] }>;
  const bot = localBot<C>();
  bot.use(session({
    initial: () => ({ events: [] as string[] }),
    storage: new RedisAdapter<{ events: string[] }>({ instance: redis }),
    prefix: "contention:",
  }));
  bot.on("message:text", (ctx) => {
    ctx.session.events = [...ctx.session.events, ctx.msg.text];
  });
  handle = (i) =>
    bot.handleUpdate(textUpdate(i + 1, (i % Number(users)) + 1, id(i)));
}
const { seconds } = await drive(Number(events), 16, handle);
console.log(JSON.stringify({ seconds }));
redis.disconnect();
