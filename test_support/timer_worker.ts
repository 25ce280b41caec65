// One OS process of the timer test: runs the timer loop (`runTimers`) until
// no timer is left in the index, then prints how many it fired.
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
nodes.observe((t) => {
  if (t.kind === "timeout" && t.outcome === "committed") fired++;
});
const stop = new AbortController();
const loop = nodes.runTimers({ signal: stop.signal, interval: 50 });
const deadline = Date.now() + 60_000;
try {
  // polls the index (not a synchronisation: the loop runs on its own)
  while (Date.now() < deadline && (await store.dueTimers(Infinity, 1)).length) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  stop.abort();
  await loop;
  console.log(JSON.stringify({ name, fired }));
} finally {
  redis.disconnect();
}
