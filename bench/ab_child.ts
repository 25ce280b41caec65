// One measurement for bench/ab.ts: botnodes route() on RedisStore (default
// settings) from the checkout at ROOT, against the Redis at URL, printed as
// one JSON line. Run by bench/ab.ts, not by hand.
import process from "node:process";
import { Redis } from "ioredis";
import { z } from "zod";
import { drive } from "./_common.ts";

const [root, url, pipelining, eventsArg, variant = "botnodes"] = process.argv
  .slice(2);
if (!root || !url) throw new Error("usage: ab_child ROOT URL on|off EVENTS");
const EVENTS = Number(eventsArg ?? 20_000);
const USERS = 1_000;
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 64);
const KEEP = 10;

const lib = await import(`${root}/mod.ts`) as typeof import("../mod.ts");
type Event = { user: number; text: string };
class Appending extends lib.Node<null, Event, number, { items: string[] }> {
  static override schema = z.object({ items: z.array(z.string()) });
  onEvent(_user: number, event: Event): Appending {
    return new Appending({
      items: [...this.data.items, event.text].slice(-KEEP),
    });
  }
}

const admin = new Redis(url);
const redis = new Redis(url, { enableAutoPipelining: pipelining === "on" });
const prefix = `ab-${process.pid}`;
let handle: (i: number) => Promise<unknown>;
if (variant === "get-set") {
  handle = async (i) => {
    const key = `${prefix}:${i % USERS}`;
    const raw = await redis.get(key);
    const items: string[] = raw ? JSON.parse(raw) : [];
    await redis.set(key, JSON.stringify([...items, `e${i}`].slice(-KEEP)));
  };
} else if (variant === "store-only") {
  // the store's protocol alone: no Nodes, no schema (bench/NOTES.md)
  const store = new lib.RedisStore(redis, { prefix });
  handle = async (i) => {
    const lease = await store.begin(String(i % USERS));
    const items: string[] = lease.state
      ? JSON.parse(lease.state).data.items
      : [];
    await store.commit(
      lease,
      JSON.stringify({
        v: 1,
        node: "appending",
        data: { items: [...items, `e${i}`].slice(-KEEP) },
      }),
    );
  };
} else {
  const nodes = new lib.Nodes<null, Event, number>({
    store: new lib.RedisStore(redis, {
      prefix,
      ...(variant === "botnodes-unbatched" ? { batch: false } : {}),
    }),
    nodes: { appending: Appending },
    start: () => new Appending({ items: [] }),
    shared: null,
    userId: (event) => event.user,
  });
  handle = (i) => nodes.route({ user: i % USERS, text: `e${i}` });
}

async function redisCpu(): Promise<number> {
  const info = await admin.info("cpu");
  const field = (name: string) =>
    Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? NaN);
  return field("used_cpu_sys") + field("used_cpu_user");
}
const cpu = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

await drive(5_000, IN_FLIGHT, (i) => handle(EVENTS + i));
await admin.config("RESETSTAT");
const r0 = await redisCpu();
const c0 = cpu();
const { seconds } = await drive(EVENTS, IN_FLIGHT, handle);
const c1 = cpu();
const r1 = await redisCpu();
const stats = await admin.info("commandstats");
const evalsha = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(stats);
console.log(JSON.stringify({
  eventsPerSec: EVENTS / seconds,
  clientUs: (c1 - c0) / EVENTS,
  redisUs: (r1 - r0) * 1e6 / EVENTS,
  callsPerEvent: evalsha ? Number(evalsha[1]) / EVENTS : 0,
  usecPerCall: evalsha ? Number(evalsha[2]) / Number(evalsha[1]) : 0,
}));
redis.disconnect();
admin.disconnect();
process.exit(0);
