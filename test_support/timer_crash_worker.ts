// A process that starts firing a user's timer and hangs in onTimeout, holding
// the lease, until the test kills it. Arguments: <redis url> <prefix> <lease ms>
import process from "node:process";
import { Redis } from "ioredis";
import { RedisStore } from "../mod.ts";
import { timerBot } from "./timer_bot.ts";

const [url, prefix, leaseTtl] = process.argv.slice(2);
const redis = new Redis(url!);
const store = new RedisStore(redis, {
  prefix: prefix!,
  leaseTtl: Number(leaseTtl),
});
const nodes = timerBot(store, "killed", () => console.log("FIRING"));
await nodes.runDue();
