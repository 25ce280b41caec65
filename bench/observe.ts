// Scenario 5: what observing costs. route() on MemoryStore (no Redis: only
// the client's work is measured, so little noise), 1,000 users, 20,000
// events, 64 in flight, the handler appending to a small array:
//
// - baseline: the library as it was before transition listeners existed
//   (commit BASELINE, extracted with `git archive`; between it and now,
//   route()'s path differs only by the observation code);
// - baseline-again: a second copy of it (its own modules and classes): the
//   A/A control, whose ratio to baseline is the noise floor of the run;
// - none: this library, nobody listening;
// - listener: a listener that counts outcomes per node pair;
// - otel-api: `instrument()` on the OpenTelemetry API with no SDK registered
//   (its no-op tracer and meter);
// - otel-sdk: `instrument()` on the SDK's providers, spans batched to an
//   exporter that drops them.
//
// All variants run in one process, interleaved (the order rotates each
// repetition), a full GC between runs where the runtime offers one. Judged
// by client CPU µs per event (process.cpuUsage), each variant against
// "baseline" of the same repetition; the medians and the spread of those
// ratios are reported. `deno run -A bench/observe.ts` runs it alone.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import process from "node:process";
import { z } from "zod";
import * as current from "../mod.ts";
import { MemoryStore } from "../testing/mod.ts";
import { instrument } from "../integrations/otel.ts";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { drive, median, percentile } from "./_common.ts";

/** The commit before transition listeners (the parent of their merge). */
export const BASELINE = "4f24c4a";
export const OBSERVE_USERS = 1_000;
export const OBSERVE_EVENTS = 10_000;
export const OBSERVE_IN_FLIGHT = 64;
/** Rounds of a block of OBSERVE_EVENTS events per variant, interleaved. */
export const OBSERVE_REPS = 20;
const KEEP = 10;

export type ObserveVariant =
  | "baseline"
  | "baseline-again"
  | "none"
  | "listener"
  | "otel-api"
  | "otel-sdk";
export const OBSERVE_VARIANTS: ObserveVariant[] = [
  "baseline",
  "baseline-again",
  "none",
  "listener",
  "otel-api",
  "otel-sdk",
];

export interface ObserveResult {
  variant: ObserveVariant;
  /** Median events/s, and each round's. */
  eventsPerSec: number;
  runs: number[];
  /** Client CPU µs per event: median, and each round's. */
  clientCpuUs: number;
  cpuRuns: number[];
  /** Client CPU over baseline's in the same round: its distribution. */
  ratio: Spread;
}

/** The median, quartiles and extremes of some values. */
export interface Spread {
  median: number;
  p25: number;
  p75: number;
  min: number;
  max: number;
}

function spread(values: number[]): Spread {
  return {
    median: median(values),
    p25: percentile(values, 25),
    p75: percentile(values, 75),
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

/** What a bot needs of a version of the library. */
type Library = Pick<typeof current, "Node" | "Nodes">;
type Event = { user: number; text: string };
type Bot = { route(event: Event): Promise<unknown> };

/** The library at BASELINE, extracted once under .tmp/ (copy 1 or 2). */
async function baseline(copy: 1 | 2): Promise<Library> {
  const root = new URL("../", import.meta.url).pathname;
  const dir = `${root}.tmp/bench-baseline-${BASELINE}-${copy}`;
  if (!existsSync(`${dir}/mod.ts`)) {
    mkdirSync(dir, { recursive: true });
    execFileSync("bash", [
      "-c",
      `git -C "${root}" archive ${BASELINE} mod.ts src | tar -x -C "${dir}"`,
    ]);
  }
  return await import(`${dir}/mod.ts`) as Library;
}

/**
 * The throughput scenario's node class, made once per version of the
 * library: every bot of a version shares it, as a bot's nodes would.
 */
function appendingClass(library: Library) {
  return class Appending
    extends library.Node<null, Event, number, { items: string[] }> {
    static override schema = z.object({ items: z.array(z.string()) });
    onEvent(_user: number, event: Event): Appending {
      return new Appending({
        items: [...this.data.items, event.text].slice(-KEEP),
      });
    }
  };
}

/** A bot of one variant, on a MemoryStore of its own. */
function bot(
  library: Library,
  Appending: ReturnType<typeof appendingClass>,
  variant: ObserveVariant,
): Bot {
  const nodes = new library.Nodes<null, Event, number>({
    store: new MemoryStore(),
    nodes: { appending: Appending },
    start: () => new Appending({ items: [] }),
    shared: null,
    userId: (event) => event.user,
  });
  watch(nodes as current.Nodes<null, Event, number>, variant);
  return nodes;
}

/**
 * Makes `nodes` observed as the variant says: by a listener counting
 * outcomes per node pair, or by `instrument()` on the OpenTelemetry API
 * (no SDK: no-op) or on the SDK's providers (spans batched to an exporter
 * that drops them); other variants are left alone. Scenario 1 uses it too.
 */
export function watch<E>(
  nodes: current.Nodes<null, E, number>,
  variant: ObserveVariant,
): void {
  if (variant === "listener") {
    const counts = new Map<string, number>();
    nodes.observe((t) => {
      const key = `${t.from}>${t.to}:${t.outcome}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    });
  }
  if (variant === "otel-api") instrument(nodes);
  if (variant === "otel-sdk") {
    instrument(nodes, {
      tracerProvider: new BasicTracerProvider({
        spanProcessors: [
          new BatchSpanProcessor({
            export: (_spans, done) => done({ code: 0 }),
            shutdown: () => Promise.resolve(),
          }),
        ],
      }),
      meterProvider: new MeterProvider(),
    });
  }
}

/** A full garbage collection, where the runtime offers one. */
const collect: () => void = (() => {
  const bun = (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun;
  if (bun) return () => bun.gc(true);
  const gc = (globalThis as { gc?: () => void }).gc;
  return typeof gc === "function" ? gc : () => {};
})();

const cpu = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/** One block of `count` events on a warm bot: events/s and CPU µs/event. */
async function block(
  route: (i: number) => Promise<unknown>,
  from: number,
  count: number,
): Promise<{ eventsPerSec: number; cpuUs: number }> {
  collect(); // the garbage of the block before is not this one's
  const before = cpu();
  const { seconds } = await drive(
    count,
    OBSERVE_IN_FLIGHT,
    (i) => route(from + i),
  );
  return { eventsPerSec: count / seconds, cpuUs: (cpu() - before) / count };
}

/**
 * Every variant on a bot of its own, warmed up, then `reps` rounds of a
 * block of OBSERVE_EVENTS events each, interleaved; the ratios to
 * baseline's block of the same round.
 */
export async function runObserve(
  reps = OBSERVE_REPS,
  log: (line: string) => void = () => {},
): Promise<ObserveResult[]> {
  const libraries: Partial<Record<ObserveVariant, Library>> = {
    "baseline": await baseline(1),
    "baseline-again": await baseline(2),
  };
  const classes = new Map<Library, ReturnType<typeof appendingClass>>(
    [...Object.values(libraries), current].map((
      library,
    ) => [library, appendingClass(library)]),
  );
  const routes = new Map(OBSERVE_VARIANTS.map((variant) => {
    const library = libraries[variant] ?? current;
    const nodes = bot(library, classes.get(library)!, variant);
    const route = (i: number) =>
      nodes.route({ user: i % OBSERVE_USERS, text: `e${i}` });
    return [variant, route] as const;
  }));
  type Run = { eventsPerSec: number; cpuUs: number };
  const runs = new Map<ObserveVariant, Run[]>(
    OBSERVE_VARIANTS.map((v) => [v, []]),
  );
  let next = 0;
  // round -1 warms every bot up (JIT, users' first events) and is not kept
  for (let rep = -1; rep < reps; rep++) {
    // rotate the order so that no variant always follows the same one
    const order = OBSERVE_VARIANTS.map((_, i) =>
      OBSERVE_VARIANTS[(i + rep + 1) % OBSERVE_VARIANTS.length]!
    );
    for (const variant of order) {
      const result = await block(routes.get(variant)!, next, OBSERVE_EVENTS);
      next += OBSERVE_EVENTS;
      if (rep < 0) continue;
      runs.get(variant)!.push(result);
      log(
        `observe ${variant} (round ${rep + 1}): ${
          Math.round(result.eventsPerSec)
        }/s, client ${result.cpuUs.toFixed(2)} µs per event`,
      );
    }
  }
  const base = runs.get("baseline")!;
  return OBSERVE_VARIANTS.map((variant) => {
    const mine = runs.get(variant)!;
    const ratios = mine.map((r, i) => r.cpuUs / base[i]!.cpuUs);
    return {
      variant,
      eventsPerSec: median(mine.map((r) => r.eventsPerSec)),
      runs: mine.map((r) => r.eventsPerSec),
      clientCpuUs: median(mine.map((r) => r.cpuUs)),
      cpuRuns: mine.map((r) => r.cpuUs),
      ratio: spread(ratios),
    };
  });
}

/** The Markdown table of a run's results. */
export function observeTable(results: ObserveResult[]): string[] {
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  const x = (n: number) => n.toFixed(3);
  return [
    "| variant | events/s (median) | client CPU µs/event (median) | client CPU vs baseline, same round: median | quartiles (p25–p75) | min–max |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...results.map(({ variant, eventsPerSec, clientCpuUs, ratio }) =>
      `| ${OBSERVE_LABEL[variant]} | ${fmt(eventsPerSec)} | ${
        clientCpuUs.toFixed(2)
      } | ${
        variant === "baseline"
          ? "1 | – | –"
          : `${x(ratio.median)}× | ${x(ratio.p25)}–${x(ratio.p75)} | ${
            x(ratio.min)
          }–${x(ratio.max)}`
      } |`
    ),
  ];
}

export const OBSERVE_LABEL: Record<ObserveVariant, string> = {
  "baseline": `baseline: the library before transition listeners (${BASELINE})`,
  "baseline-again": "baseline again, a second copy (A/A: the noise floor)",
  "none": "no listener",
  "listener": "a listener (a counter per outcome and node pair)",
  "otel-api": "OpenTelemetry `instrument()`, API only (no SDK: no-op)",
  "otel-sdk": "OpenTelemetry `instrument()`, SDK (spans batched, dropped)",
};

// run alone (Node has no import.meta.main)
if (
  (import.meta as { main?: boolean }).main ??
    process.argv[1]?.endsWith("observe.ts")
) {
  const t0 = performance.now();
  const results = await runObserve(
    Number(process.env.BENCH_REPS ?? OBSERVE_REPS),
    (line) => process.stderr.write(`${line}\n`),
  );
  console.log(observeTable(results).join("\n"));
  process.stderr.write(
    `${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
}
