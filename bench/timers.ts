// `deno task bench:timers`: durable timers, botnodes against BullMQ delayed
// jobs (one per reminder), side by side on one redis-server of its own. For
// each side: Redis memory per armed timer at N timers, timers fired per second
// with 1 and with 3 processes (the first half of the backlog with 1, the rest
// with 3), how late timers fire when the load is light (p50, p99), and the
// Redis calls of each kind of event. Writes bench/TIMERS.md and
// bench/timers.json.
// TIMERS_N (default 1,000,000) sets N; TIMERS_LATENCY_N (default 20,000) the
// timers of the latency runs; TIMERS_RUNTIME (node or deno, default node) runs
// the firing processes.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import os from "node:os";
import process from "node:process";
import { Redis } from "ioredis";
import { Queue } from "bullmq";
import { RedisStore } from "../mod.ts";
import { commandCalls, startRedis } from "../test_support/redis.ts";
import {
  bin,
  drive,
  firstLine,
  loadAverage,
  round,
  version,
} from "./_common.ts";
import { JOB, PREFIX, QUEUE, reminderBot } from "./timers_bot.ts";
import type { WorkerReport } from "./timers_worker.ts";

const N = Number(process.env.TIMERS_N ?? 1_000_000);
const LATENCY_N = Number(process.env.TIMERS_LATENCY_N ?? 20_000);
/** The due times of the N timers: spread over this window from the arming. */
const BACKLOG_WINDOW = 10_000;
/** The due times of the latency runs: spread over this window. */
const LATENCY_WINDOW = 20_000;
/** Timers fired at once per process: runTimers' limit, the Worker's concurrency. */
const CONCURRENCY = 100;
/** Events of each kind in the cost runs, one at a time. */
const COST_EVENTS = 1_000;
const RUNTIME = process.env.TIMERS_RUNTIME ?? "node";

type Side = "botnodes" | "bullmq";
const SIDES: Side[] = ["botnodes", "bullmq"];

const here = new URL("./", import.meta.url);
const runtime = RUNTIME === "deno" ? [bin("deno"), "run", "-A"] : [bin("tsx")];
const sleep = (ms: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const log = (text: string) => console.error(`[timers] ${text}`);

/** A firing process. */
interface Proc {
  go(): void;
  stop(): Promise<WorkerReport>;
}

/** Starts `count` firing processes and waits until each is ready. */
function spawnWorkers(url: string, side: Side, count: number): Promise<Proc[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      new Promise<Proc>((resolve, reject) => {
        const child = spawn(runtime[0]!, [
          ...runtime.slice(1),
          new URL("timers_worker.ts", here).pathname,
          url,
          side,
          String(CONCURRENCY),
        ], { stdio: ["pipe", "pipe", "inherit"] });
        const lines = createInterface({ input: child.stdout! });
        let last = "";
        const exited = new Promise<void>((done, fail) =>
          child.once("exit", (code) =>
            code === 0 ? done() : fail(new Error(`worker exited with ${code}`)))
        );
        exited.catch(reject);
        lines.on("line", (line) => {
          if (line === "ready") {
            resolve({
              go: () =>
                child.stdin!.write("go\n"),
              async stop() {
                child.stdin!.end("stop\n");
                await exited;
                return JSON.parse(last);
              },
            });
          }
          last = line;
        });
      })),
  );
}

const field = (info: string, name: string) =>
  Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? NaN);
const usedMemory = async (redis: Redis) =>
  field(await redis.info("memory"), "used_memory");
/** Redis' CPU time so far, in ms. */
const redisCpu = async (redis: Redis) => {
  const info = await redis.info("cpu");
  return (field(info, "used_cpu_user") + field(info, "used_cpu_sys")) * 1000;
};

/** Timers of a side still to fire (armed, waiting or running). */
async function remaining(redis: Redis, queue: Queue, side: Side) {
  if (side === "botnodes") return await redis.zcard(`${PREFIX}:{}:timers`);
  const counts = await queue.getJobCounts(
    "delayed",
    "wait",
    "active",
    "prioritized",
  );
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}

/** Script calls and other commands per unit, and the commands by name. */
interface Calls {
  scripts: number;
  commands: number;
  by: Record<string, number>;
}
function perUnit(calls: Record<string, number>, units: number): Calls {
  const by: Record<string, number> = {};
  let scripts = 0;
  let commands = 0;
  for (const [name, count] of Object.entries(calls)) {
    if (name === "flushall" || name === "memory|usage") continue;
    by[name] = count / units;
    if (name === "evalsha" || name === "eval") scripts += count;
    else commands += count;
  }
  return { scripts: scripts / units, commands: commands / units, by };
}

/** Arms `count` timers due at `at(i)`: events on botnodes, addBulk on BullMQ. */
async function arm(
  side: Side,
  redis: Redis,
  queue: Queue,
  count: number,
  at: (i: number) => number,
): Promise<number> {
  const started = performance.now();
  if (side === "botnodes") {
    const nodes = reminderBot(new RedisStore(redis, { prefix: PREFIX }));
    await drive(count, 1_000, (i) => nodes.route({ user: `u${i}`, at: at(i) }));
  } else {
    const chunk = 1_000;
    await drive(Math.ceil(count / chunk), 4, (c) => {
      const jobs = [];
      for (let i = c * chunk; i < Math.min(count, (c + 1) * chunk); i++) {
        const due = at(i);
        jobs.push({
          name: JOB,
          data: { user: `u${i}`, at: due },
          opts: {
            delay: Math.max(1, due - Date.now()),
            removeOnComplete: true,
            removeOnFail: true,
          },
        });
      }
      return queue.addBulk(jobs);
    });
  }
  return count / ((performance.now() - started) / 1000);
}

interface Firing {
  processes: number;
  fired: number;
  perSec: number;
  p50: number;
  p99: number;
  max: number;
  calls: Calls;
  /** Redis CPU ms per 1,000 timers fired. */
  redisCpu: number;
  /** The 1-minute load average as the firing started. */
  load: number;
}

/** Percentiles of a merged histogram of whole ms. */
function percentiles(late: Map<number, number>, total: number) {
  const keys = [...late.keys()].sort((a, b) => a - b);
  const at = (p: number) => {
    let seen = 0;
    for (const key of keys) {
      seen += late.get(key)!;
      if (seen >= p * total) return key;
    }
    return keys.at(-1) ?? NaN;
  };
  return { p50: at(0.5), p99: at(0.99), max: keys.at(-1) ?? NaN };
}

/** Lets the firing processes run until at most `until` timers are left. */
async function fire(
  redis: Redis,
  queue: Queue,
  side: Side,
  procs: Proc[],
  until: number,
): Promise<Firing> {
  await redis.config("RESETSTAT");
  const load = os.loadavg()[0]!;
  const cpu = await redisCpu(redis);
  for (const proc of procs) proc.go();
  while (await remaining(redis, queue, side) > until) await sleep(100);
  const reports = await Promise.all(procs.map((proc) => proc.stop()));
  const calls = await commandCalls(redis);
  const cpuMs = await redisCpu(redis) - cpu;
  const late = new Map<number, number>();
  let fired = 0;
  for (const report of reports) {
    fired += report.fired;
    for (const [ms, n] of Object.entries(report.late)) {
      late.set(Number(ms), (late.get(Number(ms)) ?? 0) + n);
    }
  }
  const first = Math.min(...reports.map((r) => r.first));
  const last = Math.max(...reports.map((r) => r.last));
  return {
    processes: procs.length,
    fired,
    perSec: fired / ((last - first) / 1000),
    ...percentiles(late, fired),
    calls: perUnit(calls, fired),
    redisCpu: (cpuMs / fired) * 1000,
    load,
  };
}

interface Cost {
  event: string;
  calls: Calls;
}

/** Redis calls per event of each kind, one event at a time. */
async function costs(side: Side, redis: Redis, queue: Queue): Promise<Cost[]> {
  const far = Date.now() + 3_600_000;
  const users = Array.from({ length: COST_EVENTS }, (_, i) => `c${i}`);
  const measure = async (
    event: string,
    run: (i: number) => Promise<unknown>,
  ) => {
    await redis.config("RESETSTAT");
    await drive(COST_EVENTS, 1, run);
    return { event, calls: perUnit(await commandCalls(redis), COST_EVENTS) };
  };
  if (side === "bullmq") {
    const ids: string[] = [];
    return [
      await measure("arms a timer (`queue.add` with `delay`)", async (i) => {
        const job = await queue.add(JOB, { user: users[i], at: far }, {
          delay: 3_600_000,
          removeOnComplete: true,
          removeOnFail: true,
        });
        ids[i] = job.id!;
      }),
      await measure(
        "cancels it (`queue.remove(id)`)",
        (i) => queue.remove(ids[i]!),
      ),
    ];
  }
  const nodes = reminderBot(new RedisStore(redis, { prefix: PREFIX }));
  await drive(COST_EVENTS, 1, (i) => nodes.route({ user: users[i]! }));
  const result = [
    await measure(
      "no timeout before or after (idle → idle)",
      (i) => nodes.route({ user: users[i]! }),
    ),
    await measure(
      "arms a timer (idle → reminding)",
      (i) => nodes.route({ user: users[i]!, at: far }),
    ),
    await measure(
      "re-arms it (reminding → reminding, new due time)",
      (i) => nodes.route({ user: users[i]!, at: far + 1 }),
    ),
    await measure(
      "cancels it: the user answers (reminding → idle)",
      (i) => nodes.route({ user: users[i]! }),
    ),
  ];
  const now = Date.now();
  await drive(COST_EVENTS, 1, (i) => nodes.route({ user: users[i]!, at: now }));
  result.push(
    await measure(
      "fires it (`runDue({ limit: 1 })`, reminding → idle)",
      () => nodes.runDue({ limit: 1 }),
    ),
  );
  return result;
}

interface SideResult {
  side: Side;
  armPerSec: number;
  memory: { total: number; index: number; hash: number };
  firing: Firing[];
  latency: Firing[];
  costs: Cost[];
}

/** Arms N timers of a side (all due within BACKLOG_WINDOW): its memory. */
async function armBacklog(redis: Redis, queue: Queue, side: Side) {
  const before = await usedMemory(redis);
  log(`${side}: arming ${N} timers`);
  const t0 = Date.now();
  const armPerSec = await arm(
    side,
    redis,
    queue,
    N,
    (i) => t0 + Math.floor((i * BACKLOG_WINDOW) / N),
  );
  const total = ((await usedMemory(redis)) - before) / N;
  const index = side === "botnodes"
    ? `${PREFIX}:{}:timers`
    : `bull:${QUEUE}:delayed`;
  // a sample of the hashes: the users' states, or the jobs
  const sample = Math.min(N, 1_000);
  let hashes = 0;
  for (let s = 0; s < sample; s++) {
    const i = Math.floor((s * N) / sample);
    const key = side === "botnodes"
      ? `${PREFIX}:{u${i}}`
      : `bull:${QUEUE}:${i + 1}`;
    hashes += Number(await redis.memory("USAGE", key, "SAMPLES", 0));
  }
  const memory = {
    total,
    index: Number(await redis.memory("USAGE", index, "SAMPLES", 0)) / N,
    hash: hashes / sample,
  };
  log(`${side}: ${round(armPerSec, 0)} armed/s, ${JSON.stringify(memory)}`);
  return { armPerSec, memory, due: t0 + BACKLOG_WINDOW };
}

/**
 * Runs every measure, the two sides taking turns at each step so that the
 * load of the shared machine weighs on both alike.
 */
async function runAll(url: string): Promise<SideResult[]> {
  const redis = new Redis(url);
  const { hostname, port } = new URL(url);
  const queue = new Queue(QUEUE, {
    connection: { host: hostname, port: Number(port) },
  });
  const results = new Map<Side, SideResult>(SIDES.map((side) => [side, {
    side,
    armPerSec: 0,
    memory: { total: 0, index: 0, hash: 0 },
    firing: [],
    latency: [],
    costs: [],
  }]));
  const result = (side: Side) => results.get(side)!;
  try {
    await redis.flushall("SYNC");
    let due = 0;
    for (const side of SIDES) {
      const armed = await armBacklog(redis, queue, side);
      result(side).armPerSec = armed.armPerSec;
      result(side).memory = armed.memory;
      due = Math.max(due, armed.due);
    }
    await sleep(due - Date.now()); // all due
    for (const [processes, until] of [[1, Math.floor(N / 2)], [3, 0]]) {
      for (const side of SIDES) {
        const procs = await spawnWorkers(url, side, processes!);
        const firing = await fire(redis, queue, side, procs, until!);
        result(side).firing.push(firing);
        log(
          `${side}: ${round(firing.perSec, 0)} fired/s, ${processes} processes`,
        );
      }
    }
    for (const processes of [1, 3]) {
      for (const side of SIDES) {
        await redis.flushall("SYNC");
        const procs = await spawnWorkers(url, side, processes);
        const start = Date.now() + 3_000 + LATENCY_N / 5;
        await arm(
          side,
          redis,
          queue,
          LATENCY_N,
          (i) => start + Math.floor((i * LATENCY_WINDOW) / LATENCY_N),
        );
        if (Date.now() > start) log(`${side}: arming ran past the first due`);
        const firing = await fire(redis, queue, side, procs, 0);
        result(side).latency.push(firing);
        log(`${side}: late p50 ${firing.p50}, p99 ${firing.p99} ms`);
      }
    }
    for (const side of SIDES) {
      await redis.flushall("SYNC");
      result(side).costs = await costs(side, redis, queue);
    }
    return SIDES.map(result);
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

// ---------------------------------------------------------------- the report

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const fixed = (x: number, digits = 2) => round(x, digits).toString();
const breakdown = (calls: Calls) =>
  Object.entries(calls.by)
    .filter(([, n]) => n >= 0.005)
    .sort(([, a], [, b]) => b - a)
    .map(([name, n]) => `${name} ${fixed(n)}`)
    .join(", ");

function report(
  results: SideResult[],
  context: { load: [string, string]; started: string; seconds: number },
): string {
  const [bn, bq] = results as [SideResult, SideResult];
  const ratio = (a: number, b: number) => `${fixed(a / b)}×`;
  const lines: string[] = [];
  const table = (head: string[], rows: (string | number)[][]) => {
    lines.push(`| ${head.join(" | ")} |`);
    lines.push(`| ${head.map(() => "---").join(" | ")} |`);
    for (const row of rows) lines.push(`| ${row.join(" | ")} |`);
    lines.push("");
  };
  lines.push(
    "# Durable timers: botnodes against BullMQ delayed jobs",
    "",
    "Written by `deno task bench:timers` (bench/timers.ts); do not edit by hand.",
    "",
    `- Run: ${context.started}, ${int(context.seconds)} s in all`,
    `- Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "CPU"}, ${
      int(os.totalmem() / 2 ** 30)
    } GiB, ${os.type()} ${os.release()}; shared with other work`,
    `- Load average (1, 5, 15 min): ${context.load[0]} at the start, ${
      context.load[1]
    } at the end`,
    `- Versions: ${
      firstLine(bin("deno"), ["--version"])
    } (arming, measuring), ${
      RUNTIME === "deno"
        ? "the same Deno"
        : `Node ${firstLine("node", ["--version"])}`
    } (firing processes), ${firstLine("redis-server", ["--version"])}, bullmq ${
      version("bullmq")
    }, ioredis ${version("ioredis")}`,
    `- N = ${int(N)} armed timers per side, due over ${
      BACKLOG_WINDOW / 1000
    } s from the start of the arming (all due before firing starts); the first half is fired by 1 process, the rest by 3; the two sides take turns at each step (botnodes, then BullMQ), so that the varying load of the shared machine weighs on both. Latency: ${
      int(LATENCY_N)
    } timers due over ${LATENCY_WINDOW / 1000} s (${
      int(LATENCY_N / (LATENCY_WINDOW / 1000))
    }/s), armed before the first is due, once with 1 and once with 3 processes.`,
    `- Concurrency: each botnodes process runs \`nodes.runTimers({ limit: ${CONCURRENCY} })\` (up to ${CONCURRENCY} timers in flight, claimed in the store as half of them end: each process takes timers of its own); each BullMQ process runs one \`Worker\` with \`concurrency: ${CONCURRENCY}\`. BullMQ jobs carry \`{ user, at }\` and \`removeOnComplete\`/\`removeOnFail: true\` (kept jobs would cost more memory); botnodes fires \`onTimeout\`, which moves the user to another node and commits it. Both record the delay when the handler starts.`,
    "",
    "## Memory in Redis per armed timer",
    "",
    `\`used_memory\` (INFO memory) after arming, less before, divided by N; the index is \`MEMORY USAGE\` of the sorted set (\`<prefix>:{}:timers\` for botnodes, \`bull:<queue>:delayed\` for BullMQ) divided by N. A botnodes timer lives in its user's state hash (the \`due\` and \`user\` fields of the state JSON) plus one index entry; the state hash is there for every user anyway, timer or not: the timer adds ${
      `,"due":${Date.now()},"user":"u${N - 1}"`.length
    } bytes to its JSON here (\`,"due":<ms>,"user":"<id>"\`). A BullMQ job is a hash of its own (name, data, options, timestamps) plus its index entry; the user's state is elsewhere.`,
    "",
  );
  table(["", "botnodes", "BullMQ", "botnodes / BullMQ"], [
    [
      "bytes per timer, all keys (botnodes: with the user's state hash)",
      int(bn.memory.total),
      int(bq.memory.total),
      ratio(bn.memory.total, bq.memory.total),
    ],
    [
      "bytes per timer, index only",
      int(bn.memory.index),
      int(bq.memory.index),
      ratio(bn.memory.index, bq.memory.index),
    ],
    [
      "the hash of each timer (botnodes: the user's state; BullMQ: the job), mean of 1,000, `MEMORY USAGE`",
      int(bn.memory.hash),
      int(bq.memory.hash),
      ratio(bn.memory.hash, bq.memory.hash),
    ],
    ["armed per second", int(bn.armPerSec), int(bq.armPerSec), ""],
  ]);
  lines.push(
    "Arming is not a like-for-like rate: each botnodes timer is armed by a whole event (lease, state read, transition, index entry, commit), 1,000 in flight; BullMQ's by `queue.addBulk` in chunks of 1,000 jobs, 4 chunks in flight.",
    "",
    "## Timers fired per second",
    "",
    "Fired by all processes together, from the first firing to the last (process start-up left out), with Redis' CPU time and the Redis calls per timer fired (script calls, and the commands that the scripts and clients ran).",
    "",
  );
  const firingRows = (f: Firing, side: string) => [
    side,
    f.processes,
    int(f.fired),
    int(f.perSec),
    fixed(f.redisCpu, 1),
    fixed(f.calls.scripts),
    fixed(f.calls.commands),
    fixed(f.load),
  ];
  table(
    [
      "",
      "processes",
      "fired",
      "timers/s",
      "Redis CPU ms per 1,000",
      "script calls per timer",
      "commands per timer",
      "load (1 min) at start",
    ],
    [0, 1].flatMap((i) => [
      firingRows(bn.firing[i]!, "botnodes"),
      firingRows(bq.firing[i]!, "BullMQ"),
    ]),
  );
  lines.push(
    `botnodes / BullMQ: ${
      ratio(bn.firing[0]!.perSec, bq.firing[0]!.perSec)
    } with 1 process, ${
      ratio(bn.firing[1]!.perSec, bq.firing[1]!.perSec)
    } with 3.`,
    "",
    "Redis commands per timer fired (inside the scripts and sent directly):",
    "",
    ...[0, 1].flatMap((i) => [
      `- botnodes, ${bn.firing[i]!.processes} process(es): ${
        breakdown(bn.firing[i]!.calls)
      }`,
      `- BullMQ, ${bq.firing[i]!.processes} process(es): ${
        breakdown(bq.firing[i]!.calls)
      }`,
    ]),
    "",
    "## How late timers fire (light load)",
    "",
    "From the due time to the start of the handler, in whole ms.",
    "",
  );
  table(
    ["", "processes", "fired", "p50 ms", "p99 ms", "max ms", "load at start"],
    [0, 1].flatMap((i) =>
      [bn, bq].map((r) => {
        const f = r.latency[i]!;
        return [
          r.side === "botnodes" ? "botnodes" : "BullMQ",
          f.processes,
          int(f.fired),
          f.p50,
          f.p99,
          f.max,
          fixed(f.load),
        ];
      })
    ),
  );
  lines.push(
    "## Redis calls per event",
    "",
    `${
      int(COST_EVENTS)
    } events of each kind, one at a time (so that nothing is coalesced), counted with INFO commandstats.`,
    "",
  );
  table(
    ["", "event", "script calls", "commands", "commands by name"],
    [bn, bq].flatMap((r) =>
      r.costs.map((c) => [
        r.side === "botnodes" ? "botnodes" : "BullMQ",
        c.event,
        fixed(c.calls.scripts),
        fixed(c.calls.commands),
        breakdown(c.calls),
      ])
    ),
  );
  lines.push(...losses(bn, bq));
  return lines.join("\n");
}

/** Where botnodes loses in this run, and why. */
function losses(bn: SideResult, bq: SideResult): string[] {
  const found: string[] = [];
  if (bn.memory.index > bq.memory.index) {
    found.push(
      `- **Index bytes**: ${int(bn.memory.index)} against ${
        int(bq.memory.index)
      } per timer. A botnodes index member is the due time in 7 base-64 digits followed by the user id (so that a replaced timer's entry is found without reading the state; it is removed while the user's lease is still held, so that an arming of the same due time by another process is never touched); BullMQ's is the job id, a counter. Redis keeps a member of up to 14 bytes in a smaller block than one of 15 to 28 (measured: 112 against 128 bytes per entry), so user ids of up to 7 characters, as here, take the smaller one; the 10-digit ids of Telegram do not.`,
    );
  }
  if (bn.memory.total > bq.memory.total) {
    found.push(
      `- **Memory with the state**: ${int(bn.memory.total)} against ${
        int(bq.memory.total)
      } bytes per timer, because the user's whole state hash is counted.`,
    );
  }
  for (const i of [0, 1]) {
    const [a, b] = [bn.firing[i]!, bq.firing[i]!];
    if (a.perSec < b.perSec) {
      found.push(
        `- **Firing rate, ${a.processes} process(es)**: ${
          int(a.perSec)
        } against ${int(b.perSec)} timers/s.`,
      );
    }
  }
  const [one, three] = bn.firing as [Firing, Firing];
  if (three.perSec < one.perSec) {
    found.push(
      `- **3 processes fire fewer timers per second than 1** (${
        int(three.perSec)
      } against ${
        int(one.perSec)
      }), although each process claims timers of its own (${
        fixed(three.calls.scripts)
      } script calls per timer against ${
        fixed(one.calls.scripts)
      } with 1 process): on this 2-core machine the 3 processes share the CPU with Redis and each other${
        bq.firing[1]!.perSec < bq.firing[0]!.perSec
          ? ", which is why BullMQ's rate drops with 3 processes too"
          : ""
      }.`,
    );
  }
  for (const i of [0, 1]) {
    const [a, b] = [bn.latency[i]!, bq.latency[i]!];
    if (a.p99 > b.p99) {
      found.push(
        `- **Lateness p99, ${a.processes} process(es)**: ${a.p99} ms against ${b.p99} ms.`,
      );
    }
  }
  return [
    "## Where botnodes loses",
    "",
    ...(found.length ? found : ["Nowhere in this run."]),
    "",
  ];
}

const started = new Date().toISOString();
const load0 = loadAverage();
const t0 = performance.now();
const server = await startRedis();
log(`redis-server on ${server.url}, N = ${N}, load ${load0}`);
const results: SideResult[] = [];
try {
  results.push(...await runAll(server.url));
} finally {
  await server.stop();
}
const load1 = loadAverage();
const seconds = (performance.now() - t0) / 1000;
writeFileSync(
  new URL("timers.json", here),
  JSON.stringify({ started, N, load: [load0, load1], results }, null, 2) + "\n",
);
writeFileSync(
  new URL("TIMERS.md", here),
  report(results, { load: [load0, load1], started, seconds }) + "\n",
);
log(`done in ${int(seconds)} s: bench/TIMERS.md`);
