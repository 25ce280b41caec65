// Redis CPU of one coalesced BEGIN and one COMMIT, USERS users a call (the
// common case: a state exists, no event id, no idle TTL), from INFO
// commandstats' usec_per_call: `deno run -A bench/lua_cost.ts [ROOT] [URL]`.
// ROOT is a checkout (default: this one), URL a Redis of your own.
import process from "node:process";
import { Redis } from "ioredis";

const root = process.argv[2] ?? new URL("..", import.meta.url).pathname;
const url = process.argv[3] ?? "redis://127.0.0.1:6411";
const USERS = Number(process.env.USERS ?? 32);
const CALLS = 500;
const s = await import(
  `${root}/src/redis_scripts.ts`
) as typeof import("../src/redis_scripts.ts");
const redis = new Redis(url);
const prefix = `lua-${process.pid}`;
const state = JSON.stringify({
  v: 1,
  node: "appending",
  data: { items: Array.from({ length: 10 }, (_, i) => `e${i}`) },
});
const keysOf = (group: number) =>
  Array.from({ length: USERS }, (_, u) => {
    const key = `${prefix}:{${group}.${u}}`;
    return [key, `${key}:lease`];
  }).flat();
let n = 0;
const versions = new Map<string, string>();
async function round(script: "begin" | "commit"): Promise<number> {
  await redis.script("LOAD", s.BEGIN.source);
  await redis.script("LOAD", s.COMMIT.source);
  await redis.config("RESETSTAT");
  for (let g = 0; g < CALLS; g++) {
    const keys = keysOf(g);
    const args: string[] = [];
    for (let u = 0; u < USERS; u++) {
      const id = `${g}.${u}`;
      if (script === "begin") {
        const token = `abc.${++n}`;
        versions.set(`t${id}`, token);
        args.push(...s.beginArgs(token, undefined));
      } else {
        args.push(
          ...s.commitArgs(
            versions.get(`t${id}`)!,
            versions.get(id),
            state,
            undefined,
            undefined,
          ),
        );
      }
    }
    const head = script === "begin"
      ? s.beginHead(30_000)
      : s.commitHead(undefined, 5, 16);
    const source = (script === "begin" ? s.BEGIN : s.COMMIT).source;
    const sha = await redis.script("LOAD", source) as string;
    const reply = await redis.evalsha(
      sha,
      keys.length,
      ...keys,
      ...head,
      ...args,
    ) as unknown[];
    if (script === "begin") {
      for (let u = 0; u < USERS; u++) {
        const v = reply[u * 3 + 2];
        if (typeof v === "string") versions.set(`${g}.${u}`, v);
      }
    } else if (reply.some((r) => r !== 1)) throw new Error(String(reply));
  }
  const stats = await redis.info("commandstats");
  return Number(
    /cmdstat_evalsha:calls=\d+,usec=\d+,usec_per_call=([\d.]+)/.exec(stats)![1],
  );
}
const out: Record<string, number[]> = { begin: [], commit: [] };
for (let r = 0; r < 4; r++) {
  const b = await round("begin");
  const c = await round("commit");
  if (r > 0) { // the first round writes the states
    out.begin!.push(b);
    out.commit!.push(c);
  }
}
console.log(JSON.stringify({ users: USERS, ...out }));
const keys = await redis.keys(`${prefix}:*`);
for (let i = 0; i < keys.length; i += 500) {
  await redis.del(...keys.slice(i, i + 500));
}
redis.disconnect();
