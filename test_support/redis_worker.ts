// One OS process of the cross-process test: sends its events for the shared
// users through its own Nodes on its own Redis connection, then exits.
// Arguments: <redis url> <prefix> <process name> <events> <users> [batch]
import process from "node:process";
import { Redis } from "ioredis";
import { RedisStore } from "../mod.ts";
import { appendBot } from "./append_bot.ts";

const [url, prefix, name, events, users, batch] = process.argv.slice(2);
const redis = new Redis(url!);
const bot = appendBot(
  new RedisStore(redis, {
    prefix: prefix!,
    wait: 60_000,
    batch: batch === "batch",
  }),
  // handlers take random short times, so processes interleave
  () => new Promise((resolve) => setTimeout(resolve, Math.random() * 3)),
);
const sent = Array.from({ length: Number(events) }, (_, i) => ({
  user: `user${i % Number(users)}`,
  id: `${name}:${i}`,
}));
try {
  await Promise.all(sent.map(bot.route));
  console.log(`${name} routed ${sent.length} events`);
} finally {
  redis.disconnect();
}
