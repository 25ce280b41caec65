// One OS process of the timer test: runs the timer loop until no timer is
// left in the index, then prints how many it fired.
// Arguments: <redis url> <prefix> <process name>
import process from "node:process";
import { Redis } from "ioredis";
import { RedisStore } from "../mod.ts";
import { timerBot } from "./timer_bot.ts";

const [url, prefix, name] = process.argv.slice(2);
const redis = new Redis(url!);
const store = new RedisStore(redis, { prefix: prefix!, wait: 60_000 });
const nodes = timerBot(store, name!);
let fired = 0;
const deadline = Date.now() + 60_000;
try {
  while (Date.now() < deadline) {
    fired += (await nodes.runDue({ limit: 200 })).length;
    const [next] = await store.dueTimers(Infinity, 1);
    if (next === undefined) break;
    const wait = Math.max(0, Math.min(50, next.due - Date.now()));
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  console.log(JSON.stringify({ name, fired }));
} finally {
  redis.disconnect();
}
