// A process that commits some events for a user, then takes the user's lease
// for one more event and hangs inside its handler until it is killed.
// Arguments: <redis url> <prefix> <user> <lease ttl ms> <events to commit>
import process from "node:process";
import { Redis } from "ioredis";
import { RedisStore } from "../mod.ts";
import { appendBot } from "./append_bot.ts";

const [url, prefix, user, leaseTtl, committed] = process.argv.slice(2);
const redis = new Redis(url!);
const hang = new Promise<void>(() => {});
const bot = appendBot(
  new RedisStore(redis, { prefix: prefix!, leaseTtl: Number(leaseTtl) }),
  (event) => {
    if (event.id !== "hang") return;
    console.log("HOLDING"); // the lease is taken: the parent kills us now
    return hang;
  },
);
for (let i = 0; i < Number(committed); i++) {
  await bot.route({ user: user!, id: `committed-${i}` });
}
await bot.route({ user: user!, id: "hang" });
