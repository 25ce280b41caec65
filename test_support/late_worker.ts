// A process that sends one event for a user another process is handling:
// says READY once connected, then routes the event (waiting for the lease)
// and says ROUTED.
// Arguments: <redis url> <prefix> <user> <event id> <lease ttl ms>
import process from "node:process";
import { Redis } from "ioredis";
import { RedisStore } from "../mod.ts";
import { appendBot } from "./append_bot.ts";

const [url, prefix, user, id, leaseTtl] = process.argv.slice(2);
const redis = new Redis(url!);
try {
  await redis.ping();
  const bot = appendBot(
    new RedisStore(redis, {
      prefix: prefix!,
      leaseTtl: Number(leaseTtl),
      wait: 60_000,
    }),
  );
  console.log("READY");
  await bot.route({ user: user!, id: id! });
  console.log("ROUTED");
} finally {
  redis.disconnect();
}
