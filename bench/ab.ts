// A/B driver: botnodes' default route() from two checkouts, interleaved, on
// one runtime and one Redis (not 6379: start your own), each run a fresh
// process. Prints each run and the medians: events/s, client CPU µs/event,
// Redis CPU µs/event, EVALSHA calls/event and Redis µs per call.
//
//   deno run -A bench/ab.ts --a /tmp/base --b . --runtime bun \
//     --url redis://127.0.0.1:6411 --reps 5 --events 20000 --pipelining on
//   deno run -A bench/ab.ts --a . --a-variant get-set --b . (against GET/SET)
//   ... --a-variant get-set --variant store-only (RedisStore alone, no Nodes)
//   IN_FLIGHT=256 deno run -A bench/ab.ts ... (events in flight; default 64)
import process from "node:process";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { median } from "./_common.ts";

const { values } = parseArgs({
  options: {
    a: { type: "string" },
    b: { type: "string", default: "." },
    runtime: { type: "string", default: "deno" },
    url: { type: "string", default: "redis://127.0.0.1:6411" },
    reps: { type: "string", default: "5" },
    events: { type: "string", default: "20000" },
    pipelining: { type: "string", default: "on" },
    variant: { type: "string", default: "botnodes" },
    // side A's variant when it differs (e.g. get-set against botnodes)
    "a-variant": { type: "string" },
  },
});
const here = resolve(import.meta.dirname ?? ".", "..");
const child = resolve(here, "bench/ab_child.ts");
const bin = (name: string) => resolve(here, "node_modules/.bin", name);
const command: Record<string, string[]> = {
  deno: [bin("deno"), "run", "-A", child],
  bun: [bin("bun"), child],
  node: [bin("tsx"), child],
};
const roots = { A: resolve(values.a!), B: resolve(values.b!) };
type Row = Record<string, number>;
const rows: Record<"A" | "B", Row[]> = { A: [], B: [] };
for (let rep = 0; rep < Number(values.reps); rep++) {
  const order: ("A" | "B")[] = rep % 2 === 0 ? ["A", "B"] : ["B", "A"];
  for (const side of order) {
    const [cmd, ...args] = command[values.runtime!]!;
    const out = spawnSync(cmd!, [
      ...args,
      roots[side],
      values.url!,
      values.pipelining!,
      values.events!,
      side === "A" ? values["a-variant"] ?? values.variant! : values.variant!,
    ], { encoding: "utf8", cwd: here });
    const line = out.stdout.trim().split("\n").pop() ?? "";
    let row: Row;
    try {
      row = JSON.parse(line);
    } catch {
      console.error(out.stdout, out.stderr);
      process.exit(1);
    }
    rows[side].push(row);
    console.log(side, rep, fmt(row));
  }
}
function fmt(row: Row): string {
  return `${Math.round(row.eventsPerSec!)} ev/s  client ${
    row.clientUs!.toFixed(1)
  } µs  redis ${row.redisUs!.toFixed(2)} µs  calls/ev ${
    row.callsPerEvent!.toFixed(4)
  }  µs/call ${row.usecPerCall!.toFixed(1)}`;
}
for (const side of ["A", "B"] as const) {
  const med: Row = {};
  for (const k of Object.keys(rows[side][0]!)) {
    med[k] = median(rows[side].map((r) => r[k]!));
  }
  console.log(`median ${side} (${roots[side]}):`, fmt(med));
}
// paired: each repetition's B/A, whose median drifts less with the load
const ratio = (k: string) =>
  median(rows.B.map((b, i) => b[k]! / rows.A[i]![k]!)).toFixed(3);
console.log(
  `median of paired B/A: events/s ${ratio("eventsPerSec")}, client CPU ${
    ratio("clientUs")
  }, Redis CPU ${ratio("redisUs")}`,
);
