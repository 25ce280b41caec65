// Runs every scenario in this runtime and prints the results as JSON on the
// last line. Called by bench/main.ts once per runtime.
// Arguments: <redis url> <repetitions> <runtime command...>; BENCH_CLUSTER
// ("host:port,...") names the 3-master Cluster of the Cluster rows.
import process from "node:process";
import { median } from "./_common.ts";
import {
  BunRedisClient,
  CLUSTER_VARIANTS,
  runThroughput,
  type Target,
  type ThroughputResult,
  type Variant,
  VARIANTS,
} from "./throughput.ts";
import {
  type LengthResult,
  LENGTHS,
  runLength,
} from "./conversation_length.ts";
import { type ContentionResult, runContention } from "./contention.ts";
import { runSimulateFresh } from "./simulate.ts";
import { type ObserveResult, runObserve } from "./observe.ts";

const [url, reps, ...runtime] = process.argv.slice(2);
const repetitions = Number(reps);
const skipLongConversations = process.env.BENCH_LONG_CONVERSATIONS !== "1";
const log = (message: string) => process.stderr.write(`${message}\n`);

// BENCH_ONLY=observe (`deno task bench --only-observe`): scenario 5 alone
if (process.env.BENCH_ONLY === "observe") {
  console.log(JSON.stringify({ observe: await runObserve(undefined, log) }));
  process.exit(0);
}

/** The median run (by events/s) of several. */
function medianRun<T extends { eventsPerSec: number }>(
  runs: T[],
): T & { runs: number[] } {
  const sorted = [...runs].sort((a, b) => a.eventsPerSec - b.eventsPerSec);
  return {
    ...sorted[Math.floor(sorted.length / 2)]!,
    runs: runs.map((r) => r.eventsPerSec),
  };
}

const clusterNodes = (process.env.BENCH_CLUSTER ?? "").split(",").filter(
  Boolean,
).map((node) => {
  const [host, port] = node.split(":");
  return { host: host!, port: Number(port) };
});
const cases: { variant: Variant; target: Target }[] = [
  ...VARIANTS.map((variant) => ({ variant, target: { url: url! } })),
  // Bun's own client, on Bun only
  ...(BunRedisClient
    ? [{ variant: "botnodes-bun-redis" as const, target: { url: url! } }]
    : []),
  ...(clusterNodes.length > 0
    ? CLUSTER_VARIANTS.map((variant) => ({
      variant,
      target: { cluster: clusterNodes },
    }))
    : []),
];
const throughput: (ThroughputResult & { runs: number[] })[] = [];
for (const autoPipelining of [false, true]) {
  const runs = new Map<(typeof cases)[number], ThroughputResult[]>();
  // interleave the variants so that drift of the machine hits all alike
  for (let rep = 0; rep < repetitions; rep++) {
    for (const c of cases) {
      const result = await runThroughput(c.target, c.variant, autoPipelining);
      runs.set(c, [...runs.get(c) ?? [], result]);
      log(
        `throughput ${c.variant}${
          "cluster" in c.target ? " (Cluster)" : ""
        } pipelining=${autoPipelining}: ${
          Math.round(result.eventsPerSec)
        }/s, Redis ${result.redisCpuUs.toFixed(1)} µs, client ${
          result.clientCpuUs.toFixed(1)
        } µs per event`,
      );
    }
  }
  for (const c of cases) throughput.push(medianRun(runs.get(c)!));
}

const lengths: (LengthResult & { runs: number[] })[] = [];
for (const library of ["botnodes", "conversations"] as const) {
  for (const length of LENGTHS) {
    if (
      library === "conversations" && length === 10_000 && skipLongConversations
    ) {
      log("conversations 10,000: skipped (BENCH_LONG_CONVERSATIONS=1 runs it)");
      continue;
    }
    // conversations replays its log at every event: one repetition is enough
    const times = library === "botnodes" ? repetitions : 1;
    const runs: LengthResult[] = [];
    for (let rep = 0; rep < times; rep++) {
      runs.push(await runLength(url!, library, length));
    }
    const perEvent = runs.map((r) => r.perEventMs);
    lengths.push({ ...runs[0]!, perEventMs: median(perEvent), runs: perEvent });
    log(`length ${library} ${length}: ${median(perEvent).toFixed(3)} ms/event`);
  }
}

const contention: ContentionResult[] = [];
for (const variant of ["botnodes", "grammy-session"] as const) {
  contention.push(await runContention(url!, variant, runtime));
  log(`contention ${variant}: lost ${contention.at(-1)!.lost}`);
}

const simulate: number[] = [];
for (let rep = 0; rep < repetitions; rep++) {
  simulate.push(await runSimulateFresh(runtime));
}
log(`simulate: ${Math.round(median(simulate))}/s`);

// its own rounds (OBSERVE_REPS), interleaved: the ratios need more than 3
const observe: ObserveResult[] = await runObserve(undefined, log);

console.log(
  JSON.stringify({
    throughput,
    lengths,
    contention,
    simulate: median(simulate),
    observe,
  }),
);
