// `deno task bench`: starts a Redis of its own and a 3-master Cluster on free
// loopback ports, runs every scenario on Deno, Bun and Node (through tsx;
// bench/suite.ts), and writes bench/RESULTS.md with two charts.
// BENCH_REPS (default 3) sets the repetitions; BENCH_LONG_CONVERSATIONS=1
// also runs @grammyjs/conversations at 10,000 events (minutes). With
// --report it only writes the report again from bench/results.json; with
// --only-observe it runs scenario 5 alone (about a minute, no Redis), puts
// its figures into bench/results.json and writes the report.
import { spawn } from "node:child_process";
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import os from "node:os";
import process from "node:process";
import * as echarts from "echarts";
import { startRedis } from "../test_support/redis.ts";
import type { ThroughputResult, Variant } from "./throughput.ts";
import { EVENTS, IN_FLIGHT, USERS } from "./throughput.ts";
import type { LengthResult } from "./conversation_length.ts";
import type { ContentionResult } from "./contention.ts";
import {
  CONTENDED_USERS,
  EVENTS_PER_PROCESS,
  PROCESSES,
} from "./contention.ts";
import { bin, firstLine, loadAverage, round, version } from "./_common.ts";
import {
  BASELINE,
  OBSERVE_EVENTS,
  OBSERVE_IN_FLIGHT,
  OBSERVE_REPS,
  OBSERVE_USERS,
  type ObserveResult,
  observeTable,
} from "./observe.ts";

interface SuiteResult {
  throughput: (ThroughputResult & { runs: number[] })[];
  lengths: (LengthResult & { runs: number[] })[];
  contention: ContentionResult[];
  simulate: number;
  /** Missing in results from before scenario 5. */
  observe?: ObserveResult[];
  /** Set when scenario 5 ran alone (`--only-observe`), after the rest. */
  observeRun?: { date: string; load: { start: string; end: string } };
}

const here = new URL("./", import.meta.url);
const root = new URL("../", import.meta.url);
const reps = Number(process.env.BENCH_REPS ?? 3);
const onlyObserve = process.argv.includes("--only-observe");
// --expose-gc: scenario 5 collects garbage between its blocks (Bun can)
const runtimes: Record<string, string[]> = {
  Deno: [bin("deno"), "run", "-A", "--v8-flags=--expose-gc"],
  Bun: [bin("bun"), "run"],
  Node: [bin("tsx"), "--expose-gc"],
};

function runSuite(
  url: string,
  runtime: string[],
  cluster: string,
): Promise<SuiteResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(runtime[0]!, [
      ...runtime.slice(1),
      new URL("suite.ts", here).pathname,
      url,
      String(reps),
      ...runtime,
    ], {
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        BENCH_CLUSTER: cluster,
        ...(onlyObserve ? { BENCH_ONLY: "observe" } : {}),
      },
    });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.once("exit", (code) => {
      if (code !== 0) {
        return reject(new Error(`${runtime[0]} suite exited with ${code}`));
      }
      resolve(JSON.parse(out.trim().split("\n").at(-1)!));
    });
  });
}

/** Whether a loopback port is free to listen on. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * Starts a 3-master Cluster with scripts/redis_cluster.sh on the first free
 * ports from 7200 (their bus ports, +10000, free too), in a directory of its
 * own; returns its nodes ("host:port,...") and how to stop it.
 */
async function startCluster(): Promise<
  { nodes: string; stop(): void }
> {
  for (let first = 7200; first < 7300; first += 10) {
    const ports = [first, first + 1, first + 2];
    const free = await Promise.all(
      ports.flatMap((p) => [portFree(p), portFree(p + 10_000)]),
    );
    if (!free.every(Boolean)) continue;
    const dir = mkdtempSync(join(os.tmpdir(), "botnodes-bench-cluster-"));
    const stop = () => {
      for (const port of ports) {
        try {
          execFileSync(
            "redis-cli",
            ["-p", String(port), "shutdown", "nosave"],
            {
              stdio: "ignore",
            },
          );
        } catch {
          // already gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      const out = execFileSync(
        "bash",
        [new URL("scripts/redis_cluster.sh", root).pathname, String(first)],
        { encoding: "utf8", env: { ...process.env, TMPDIR: dir } },
      );
      return { nodes: out.trim().split("\n").at(-1)!, stop };
    } catch (error) {
      stop();
      throw error;
    }
  }
  throw new Error("no free ports for a Cluster between 7200 and 7300");
}

// `--report` writes the report again from the figures of the last run
const rerun = process.argv.includes("--report");
let results: Record<string, SuiteResult> = {};
let load = { start: "", end: "" };
if (rerun || onlyObserve) {
  results = JSON.parse(readFileSync(new URL("results.json", here), "utf8"));
  load = JSON.parse(readFileSync(new URL("load.json", here), "utf8"));
}
if (onlyObserve) {
  const start = loadAverage();
  for (const [name, runtime] of Object.entries(runtimes)) {
    process.stderr.write(`=== ${name}\n`);
    const { observe } = await runSuite("", runtime, "");
    results[name] = {
      ...results[name]!,
      observe: observe!,
      observeRun: {
        date: new Date().toISOString().slice(0, 10),
        load: { start, end: loadAverage() },
      },
    };
  }
} else if (!rerun) {
  load.start = loadAverage();
  process.stderr.write(`load average at start: ${load.start}\n`);
  const server = await startRedis();
  const cluster = await startCluster();
  process.stderr.write(`Cluster: ${cluster.nodes}\n`);
  try {
    for (const [name, runtime] of Object.entries(runtimes)) {
      process.stderr.write(`=== ${name}\n`);
      results[name] = await runSuite(server.url, runtime, cluster.nodes);
    }
  } finally {
    cluster.stop();
    await server.stop();
  }
  load.end = loadAverage();
  process.stderr.write(`load average at end: ${load.end}\n`);
  writeFileSync(
    new URL("load.json", here),
    `${JSON.stringify(load, null, 2)}\n`,
  );
}

// ---- the report -----------------------------------------------------------

const LABEL: Record<Variant, string> = {
  "botnodes": "botnodes `route()` on RedisStore, default (coalesced)",
  "botnodes-unbatched": "botnodes, RedisStore `batch: false`",
  "botnodes-bun-redis":
    "botnodes default on Bun's `RedisClient` (`fromBunRedis`)",
  "botnodes-listener": "botnodes `route()` with a transition listener",
  "botnodes-otel": "botnodes `route()` with OpenTelemetry (SDK, spans batched)",
  "seed-hash": "(a) seed: HGET, parse, stringify, HSET",
  "get-set": "(b) GET/SET, one key per user",
  "grammy-session": "(c) grammY `session()` + storage-redis",
};
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const lines: string[] = [];
const push = (...more: string[]) => lines.push(...more);

const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? "CPU"}, ${
  Math.round(os.totalmem() / 2 ** 30)
} GiB, ${os.type()} ${os.release()}`;
push(
  "# Benchmark results",
  "",
  `Made by \`deno task bench\`${
    Object.values(results).some((r) =>
        r.lengths.some((l) =>
          l.library === "conversations" && l.length === 10_000
        )
      )
      ? " with `BENCH_LONG_CONVERSATIONS=1`"
      : ""
  } on ${
    new Date().toISOString().slice(0, 10)
  }; ${reps} repetitions, medians shown. ` +
    "Every variant runs in the same run against the same local Redis (a `redis-server` the " +
    "bench starts on a loopback port, nothing else on it), flushed before each run.",
  "",
  `- Machine: ${machine}`,
  `- Runtimes: ${firstLine(bin("deno"), ["--version"])}; Bun ${
    firstLine(bin("bun"), ["--version"])
  }; Node ${firstLine("node", ["--version"])} through tsx ${version("tsx")}`,
  `- Load average (1, 5, 15 min) at the start: ${load.start}; at the end: ${load.end} ` +
    "(the figures at the end count the benchmark's own servers and clients)",
  "- Cluster: 3 masters, no replicas (`scripts/redis_cluster.sh`), on the same machine, " +
    "reached with an ioredis `Cluster`",
  `- Redis: ${firstLine("redis-server", ["--version"])}`,
  `- Libraries: ioredis ${version("ioredis")}, grammy ${version("grammy")}, ` +
    `@grammyjs/storage-redis ${version("@grammyjs/storage-redis")}, ` +
    `@grammyjs/conversations ${version("@grammyjs/conversations")}, zod ${
      version("zod")
    }, ` +
    `echarts ${version("echarts")} (charts)`,
  "",
);

interface Target {
  name: string;
  goal: string;
  values: Record<string, string>;
  met: boolean;
}
const targets: Target[] = [];
const target = (
  name: string,
  goal: string,
  per: (r: SuiteResult) => [string, boolean],
) => {
  const values: Record<string, string> = {};
  let met = true;
  for (const [runtime, r] of Object.entries(results)) {
    const [text, ok] = per(r);
    values[runtime] = `${text} ${ok ? "✓" : "✗"}`;
    met &&= ok;
  }
  targets.push({ name, goal, values, met });
};
const tp = (
  r: SuiteResult,
  variant: Variant,
  pipelining: boolean,
  cluster = false,
) =>
  r.throughput.find((t) =>
    t.variant === variant && t.autoPipelining === pipelining &&
    (t.cluster ?? false) === cluster
  )!;
/** botnodes over GET/SET (or another variant), pipelining off and on. */
const ratios = (r: SuiteResult, to: Variant, cluster = false) =>
  [false, true].map((p) =>
    tp(r, "botnodes", p, cluster).eventsPerSec /
    tp(r, to, p, cluster).eventsPerSec
  );
const offOn = (xs: number[]) =>
  `${xs.map((x) => round(x)).join("× / ")}× (pipelining off / on)`;

target(
  "botnodes default vs (b) GET/SET, same client settings",
  "≥ 1.0×",
  (r) => {
    const xs = ratios(r, "get-set");
    return [offOn(xs), xs.every((x) => x >= 1)];
  },
);
target(
  "botnodes default vs (c) grammY session, same client settings",
  "≥ 1.4×",
  (r) => {
    const xs = ratios(r, "grammy-session");
    return [offOn(xs), xs.every((x) => x >= 1.4)];
  },
);
target(
  "Cluster: botnodes vs (b) GET/SET on the same 3-master Cluster",
  "≥ 0.6×",
  (r) => {
    const xs = ratios(r, "get-set", true);
    return [offOn(xs), xs.every((x) => x >= 0.6)];
  },
);
target(
  "Round trips per uncontended event (script calls per event, unbatched)",
  "2",
  (r) => {
    const n = tp(r, "botnodes-unbatched", false).commandsPerEvent;
    return [`${round(n, 3)}`, Math.abs(n - 2) < 0.01];
  },
);
target("Lost updates under contention", "0", (r) => {
  const lost = r.contention.find((c) => c.variant === "botnodes")!.lost;
  return [`${lost}`, lost === 0];
});
target("Per-event time, 10 → 10,000 events", "flat within 1.2×", (r) => {
  const mine = r.lengths.filter((l) => l.library === "botnodes").map((l) =>
    l.perEventMs
  );
  const spread = Math.max(...mine) / Math.min(...mine);
  return [`max/min ${round(spread)}×`, spread <= 1.2];
});
if (Object.values(results).every((r) => r.observe)) {
  target(
    "No listener: client CPU per event vs the library before listeners existed (scenario 5)",
    "no more than the A/A control's upper quartile (less is cheaper)",
    (r) => {
      const ratio = (v: string) =>
        r.observe?.find((o) => o.variant === v)?.ratio;
      const none = ratio("none");
      const aa = ratio("baseline-again");
      if (!none || !aa) return ["not run", false];
      return [
        `${round(none.median, 3)}× (A/A ${round(aa.p25, 3)}–${
          round(aa.p75, 3)
        }×)`,
        none.median <= aa.p75,
      ];
    },
  );
}
target(
  "simulate() on MemoryStore",
  "≥ 50,000 events/s",
  (r) => [`${fmt(r.simulate)}/s`, r.simulate >= 50_000],
);

const names = Object.keys(results);
push(
  "## Targets",
  "",
  `| target | goal | ${names.join(" | ")} |`,
  `| --- | --- | ${names.map(() => "---").join(" | ")} |`,
  ...targets.map((t) =>
    `| ${t.name} | ${t.goal} | ${names.map((n) => t.values[n]).join(" | ")} |`
  ),
  "",
  "MISSED_TARGETS_NOTE",
  "",
);

const cores = os.cpus().length;
push(
  "## 1. Throughput and latency",
  "",
  `${fmt(USERS)} users, ${
    fmt(EVENTS)
  } events, ${IN_FLIGHT} in flight for different users; ` +
    "the handler appends to an array of the last 10 items. Ratios are to (b) with the same " +
    "client settings on the same server(s). Client commands per event are what the client " +
    "sent (botnodes: `EVALSHA`; coalesced, one call carries the users of one event-loop " +
    "turn); executed per event counts the commands Redis ran, those inside scripts included " +
    "(INFO commandstats). Redis CPU is the `used_cpu_sys` + `used_cpu_user` delta of the " +
    "bench's redis-server (of the 3 nodes on the Cluster) over the run; client CPU the " +
    "`process.cpuUsage()` delta of the client process; both per event. CPU ceiling: " +
    `${cores} cores / (Redis + client CPU per event), the events/s at which this machine ` +
    "would run out of CPU with nothing else on it.",
  "",
);
for (const [runtime, r] of Object.entries(results)) {
  push(
    `### ${runtime}`,
    "",
    "| variant | server | auto-pipelining | events/s | vs (b) | p50 ms | p99 ms | client commands/event | executed/event | Redis CPU µs/event | client CPU µs/event | CPU ceiling events/s |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  const sorted = [...r.throughput].sort((a, b) =>
    Number(a.cluster ?? false) - Number(b.cluster ?? false) ||
    Number(a.autoPipelining) - Number(b.autoPipelining)
  );
  for (const t of sorted) {
    const ratio = t.eventsPerSec /
      tp(r, "get-set", t.autoPipelining, t.cluster ?? false).eventsPerSec;
    push(
      `| ${LABEL[t.variant]} | ${t.cluster ? "Cluster" : "standalone"} | ${
        t.autoPipelining ? "on" : "off"
      } | ${fmt(t.eventsPerSec)} | ${round(ratio)}× | ${round(t.p50)} | ${
        round(t.p99)
      } | ${round(t.commandsPerEvent, 2)} | ${round(t.executedPerEvent, 2)} | ${
        round(t.redisCpuUs, 1)
      } | ${round(t.clientCpuUs, 1)} | ${
        fmt(cores * 1e6 / (t.redisCpuUs + t.clientCpuUs))
      } |`,
    );
  }
  push("");
}
push("![Throughput per variant](charts/throughput.svg)", "");

push(
  "## 2. Conversation length",
  "",
  "One user at a time, every event through grammY's `handleUpdate`, state in Redis. " +
    "botnodes: a node that counts; @grammyjs/conversations v2: `while (true) await " +
    "conversation.wait()`. Per-event time is the mean over at least 5,000 events for " +
    "botnodes and 1,000 for conversations (several conversations for the short lengths); " +
    "bytes are what Redis holds for the user at the end.",
  "",
);
for (const [runtime, r] of Object.entries(results)) {
  push(
    `### ${runtime}`,
    "",
    "| events | botnodes ms/event | botnodes bytes | conversations ms/event | conversations bytes | conversations / botnodes |",
    "| ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const length of [...new Set(r.lengths.map((l) => l.length))]) {
    const b = r.lengths.find((l) =>
      l.library === "botnodes" && l.length === length
    );
    const c = r.lengths.find((l) =>
      l.library === "conversations" && l.length === length
    );
    push(
      `| ${fmt(length)} | ${b ? round(b.perEventMs, 3) : "–"} | ${
        b ? fmt(b.storedBytes) : "–"
      } | ${c ? round(c.perEventMs, 3) : "not run"} | ${
        c ? fmt(c.storedBytes) : "–"
      } | ${b && c ? `${round(c.perEventMs / b.perEventMs, 1)}×` : "–"} |`,
    );
  }
  push("");
}
push("![Per-event time against conversation length](charts/length.svg)", "");

push(
  "## 3. Contention",
  "",
  `${CONTENDED_USERS} users, ${PROCESSES} processes, ${
    fmt(EVENTS_PER_PROCESS)
  } events each, ` +
    "every process sending events for all the users (16 in flight per process); each " +
    "event appends its id to the user's state. Lost: events whose handler ran but whose id " +
    "is missing at the end. Events/s: all events over the time of the slowest process.",
  "",
  `| variant | ${names.map((n) => `${n} events/s | ${n} lost`).join(" | ")} |`,
  `| --- | ${names.map(() => "---: | ---:").join(" | ")} |`,
  ...(["botnodes", "grammy-session"] as const).map((variant) =>
    `| ${variant === "botnodes" ? "botnodes" : "grammY session"} | ${
      names.map((n) => {
        const c = results[n]!.contention.find((x) => x.variant === variant)!;
        return `${fmt(c.eventsPerSec)} | ${fmt(c.lost)} of ${fmt(c.events)}`;
      }).join(" | ")
    } |`
  ),
  "",
  "## 4. The test harness",
  "",
  `| | ${names.join(" | ")} |`,
  `| --- | ${names.map(() => "---:").join(" | ")} |`,
  `| \`simulate()\` on MemoryStore, events/s | ${
    names.map((n) => fmt(results[n]!.simulate)).join(" | ")
  } |`,
  "",
);

const observed = Object.entries(results).filter(([, r]) => r.observe);
if (observed.length > 0) {
  push(
    "## 5. What observing costs",
    "",
    `\`route()\` on MemoryStore (no Redis: only the client's work, so little noise), ${
      fmt(OBSERVE_USERS)
    } users, ${OBSERVE_IN_FLIGHT} events in flight, the handler of scenario 1. ` +
      "Each variant has a bot of its own, warmed up; then " +
      `${OBSERVE_REPS} rounds, each running a block of ${
        fmt(OBSERVE_EVENTS)
      } events on every variant in turn ` +
      "(the order rotates each round; a full GC before each block). The baseline is the " +
      `library at ${BASELINE}, the commit before transition listeners existed, extracted ` +
      "with `git archive` and run in the same process: between it and this version, " +
      "`route()`'s path differs only by the observation code. A second copy of it " +
      "(its own modules and classes) is the A/A control: its ratio to the baseline is " +
      "what noise alone gives. Ratios are client CPU (`process.cpuUsage()`) per event " +
      "over the baseline's in the same round; their median, quartiles and extremes " +
      "over the rounds. That no observation work runs without listeners is proved by " +
      'a test (`src/transition_test.ts`, "without listeners"): no clock is read and ' +
      "`performance.now()` is never called; this table shows what that is worth.",
    "",
  );
  for (const [runtime, r] of observed) {
    push(
      `### ${runtime}`,
      "",
      ...(r.observeRun
        ? [
          `Run alone (\`deno task bench --only-observe\`) on ${r.observeRun.date}, ` +
          `after the other scenarios; load average ${r.observeRun.load.start} at its start, ` +
          `${r.observeRun.load.end} at the end of this runtime's run.`,
          "",
        ]
        : []),
      ...observeTable(r.observe!),
      "",
    );
  }
}

// ---- charts ---------------------------------------------------------------

function svg(option: echarts.EChartsOption, width = 820, height = 420): string {
  const chart = echarts.init(null, null, {
    renderer: "svg",
    ssr: true,
    width,
    height,
  });
  chart.setOption({ animation: false, backgroundColor: "#fff", ...option });
  const out = chart.renderToSVGString();
  chart.dispose();
  return out;
}

const first = results.Deno ?? Object.values(results)[0]!;
mkdirSync(new URL("charts/", here), { recursive: true });
writeFileSync(
  new URL("charts/length.svg", here),
  svg({
    title: {
      text: "Per-event time against conversation length (Deno)",
      left: "center",
    },
    legend: { bottom: 0, itemGap: 28 },
    tooltip: {},
    xAxis: {
      type: "log",
      name: "events in the conversation",
      nameLocation: "middle",
      nameGap: 28,
    },
    yAxis: { type: "log", name: "ms per event" },
    series: (["botnodes", "conversations"] as const).map((library) => ({
      name: library === "botnodes" ? "botnodes" : "@grammyjs/conversations v2",
      type: "line",
      symbolSize: 8,
      data: first.lengths.filter((l) => l.library === library).map((
        l,
      ) => [l.length, round(l.perEventMs, 4)]),
    })),
  }),
);
const variants = first.throughput.filter((t) => !t.autoPipelining && !t.cluster)
  .map((t) => t.variant);
writeFileSync(
  new URL("charts/throughput.svg", here),
  svg(
    {
      title: {
        text: "Throughput per variant, standalone Redis, events/s (median)",
        left: "center",
      },
      legend: { bottom: 0, itemGap: 28 },
      tooltip: {},
      grid: { left: 330, bottom: 90 },
      xAxis: { type: "value" },
      yAxis: {
        type: "category",
        data: variants.map((v) => LABEL[v].replaceAll("`", "")),
      },
      series: Object.entries(results).flatMap(([runtime, r]) =>
        [false, true].map((p) => ({
          name: `${runtime}, pipelining ${p ? "on" : "off"}`,
          type: "bar" as const,
          data: variants.map((v) => Math.round(tp(r, v, p).eventsPerSec)),
        }))
      ),
    },
    1000,
    560,
  ),
);

const missed = targets.filter((t) => !t.met);
const note = missed.length === 0
  ? "Every target is met."
  : `Missed: ${
    missed.map((t) => t.name).join("; ")
  }. Why, and what would close it: see ` +
    '"Notes on the targets" at the end.';
const report = lines.join("\n").replace("MISSED_TARGETS_NOTE", note);
const notesFile = new URL("NOTES.md", here);
let notes = "";
try {
  notes = readFileSync(notesFile, "utf8");
} catch {
  // no notes yet
}
// the raw figures, to check a report against
writeFileSync(
  new URL("results.json", here),
  `${JSON.stringify(results, null, 2)}\n`,
);
writeFileSync(
  new URL("RESULTS.md", here),
  `${report}\n${notes ? `\n${notes.trim()}\n` : ""}`,
);
process.stderr.write(
  `wrote bench/RESULTS.md and bench/charts/*.svg\n${note}\n`,
);
