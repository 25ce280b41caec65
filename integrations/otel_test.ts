// @botnodes/core/otel with the SDK's in-memory span and metric exporters:
// the exact spans and metric points of a small bot.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import {
  type Attributes,
  type Context,
  context,
  type ContextManager,
  ROOT_CONTEXT,
  trace,
} from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { Nodes, type RedisLike, RedisStore, type Transition } from "../mod.ts";
import { instrument } from "./otel.ts";
import { FakeClock } from "../testing/mod.ts";
import {
  type Event,
  Menu,
  observedBot,
  registry,
  script,
  type Shared,
  walked,
} from "../test_support/observed_bot.ts";

/** A context manager on AsyncLocalStorage (what the Node SDK registers). */
class LocalContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

function providers() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(spans)],
  });
  const exporter = new InMemoryMetricExporter(
    AggregationTemporality.CUMULATIVE,
  );
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter,
        exportIntervalMillis: 3_600_000,
      }),
    ],
  });
  /** The metric points: name, unit, then attributes and value per point. */
  const points = async () => {
    await meterProvider.forceFlush();
    const last = exporter.getMetrics().at(-1);
    const round = (n: number) => Math.round(n * 1e6) / 1e6;
    return (last?.scopeMetrics ?? []).flatMap((scope) =>
      scope.metrics.map((metric) => ({
        name: metric.descriptor.name,
        unit: metric.descriptor.unit,
        points: metric.dataPoints.map((point) => ({
          attributes: point.attributes,
          value: typeof point.value === "number" ? point.value : {
            count: (point.value as { count: number }).count,
            sum: round((point.value as { sum?: number }).sum ?? 0),
          },
        })),
      }))
    );
  };
  return { spans, tracerProvider, meterProvider, points };
}

const kind = "botnodes.transition.kind";
const outcome = "botnodes.transition.outcome";
const from = "botnodes.node.from";
const to = "botnodes.node.to";
const times = (wait: number, handler: number, store: number) => ({
  "botnodes.lease.wait_ms": wait,
  "botnodes.handler.duration_ms": handler,
  "botnodes.store.duration_ms": store,
});

/** A histogram's point: its attributes, count and sum of seconds. */
const seconds = (attributes: Attributes, count: number, sum: number) => ({
  attributes,
  value: { count, sum },
});

/** A transition's kind, outcome and node keys: what it is counted by. */
function keysOf(t: Transition<Event, number>): Attributes {
  const attributes: Attributes = { [kind]: t.kind, [outcome]: t.outcome };
  if (t.from !== undefined) attributes[from] = t.from;
  if (t.to !== undefined) attributes[to] = t.to;
  return attributes;
}

/** The script's transitions counted by their keys, in first-seen order. */
function counted(): { attributes: Attributes; value: number }[] {
  const points = new Map<string, { attributes: Attributes; value: number }>();
  for (const t of walked) {
    const attributes = keysOf(t);
    const key = JSON.stringify(attributes);
    const point = points.get(key) ?? { attributes, value: 0 };
    point.value++;
    points.set(key, point);
  }
  return [...points.values()];
}

/** The span `instrument` makes of one of the script's transitions. */
function spanOf(t: Transition<Event, number>) {
  const attributes: Attributes = {
    ...keysOf(t),
    ...times(t.leaseWait, t.handlerTime, t.storeTime),
  };
  if (t.eventId !== undefined) attributes["botnodes.event.id"] = t.eventId;
  if (t.invalid !== undefined) attributes["botnodes.state.invalid"] = t.invalid;
  const failed = t.outcome === "failed";
  if (failed) attributes["error.type"] = "Error";
  return {
    name: `botnodes ${t.kind}`,
    attributes,
    status: failed
      ? { code: 2, message: "the kitchen is on fire" } // ERROR
      : { code: 0 },
    events: failed ? ["exception"] : [],
  };
}

/** The bot of the script on a Redis that refuses every call. */
function downBot(): Nodes<Shared, Event, number> {
  const down: RedisLike = {
    eval: () => Promise.reject(new Error("ECONNREFUSED")),
    evalsha: () => Promise.reject(new Error("ECONNREFUSED")),
  };
  return new Nodes<Shared, Event, number>({
    store: new RedisStore(down),
    nodes: registry,
    start: () => new Menu(),
    shared: { clock: new FakeClock() },
    userId: (event) => event.from,
  });
}

describe("@botnodes/core/otel", () => {
  it("makes a span per transition, with node keys, outcome and times, and none for events not theirs", async () => {
    const { spans, tracerProvider, meterProvider } = providers();
    const bot = observedBot();
    const stop = instrument(bot.nodes, { tracerProvider, meterProvider });
    await script(bot);
    stop();
    await bot.nodes.route({ from: 3, id: 99, text: "hi" }); // not traced
    const finished = spans.getFinishedSpans();
    assert.deepEqual(
      finished.map((span) => ({
        name: span.name,
        attributes: span.attributes,
        status: span.status,
        events: span.events.map((event) => event.name),
      })),
      // an event for no user of the nodes is counted, with no span
      walked.filter((t) => t.outcome !== "not-ours").map(spanOf),
    );
    assert.ok(walked.some((t) => t.outcome === "not-ours"));
    assert.ok(finished.every((span) => span.kind === 0)); // INTERNAL
    assert.ok(
      finished.every((s) => s.instrumentationScope.name === "@botnodes/core"),
    );
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
  });

  it("counts transitions, durations and lease waits", async () => {
    const { tracerProvider, meterProvider, points } = providers();
    const bot = observedBot();
    instrument(bot.nodes, { tracerProvider, meterProvider });
    await script(bot);
    assert.deepEqual(await points(), [
      {
        name: "botnodes.transitions",
        unit: "{transition}",
        points: counted(),
      },
      {
        name: "botnodes.transition.duration",
        unit: "s",
        points: [
          seconds({ [kind]: "event", [outcome]: "committed" }, 3, 0.012),
          seconds({ [kind]: "event", [outcome]: "duplicate" }, 1, 0.001),
          seconds({ [kind]: "event", [outcome]: "failed" }, 1, 0.001),
          seconds({ [kind]: "event", [outcome]: "not-ours" }, 1, 0),
          seconds({ [kind]: "timeout", [outcome]: "committed" }, 1, 0.003),
          seconds({ [kind]: "to", [outcome]: "committed" }, 1, 0.003),
          seconds({ [kind]: "reset", [outcome]: "committed" }, 1, 0.003),
        ],
      },
      {
        name: "botnodes.lease.wait",
        unit: "s",
        points: [
          seconds({ [kind]: "event" }, 5, 0.005), // not-ours waits for none
          seconds({ [kind]: "timeout" }, 1, 0.001),
          seconds({ [kind]: "to" }, 1, 0.001),
          seconds({ [kind]: "reset" }, 1, 0.001),
        ],
      },
    ]);
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
  });

  it("counts store errors", async () => {
    const { tracerProvider, meterProvider, points } = providers();
    const nodes = downBot();
    instrument(nodes, { tracerProvider, meterProvider });
    await assert.rejects(nodes.route({ from: 1, id: 1, text: "hi" }), {
      name: "StoreError",
    });
    const errors = (await points()).find((m) =>
      m.name === "botnodes.store.errors"
    );
    assert.deepEqual(errors, {
      name: "botnodes.store.errors",
      unit: "{error}",
      points: [{
        attributes: {
          "error.type": "StoreError",
          "botnodes.store.operation": "begin",
        },
        value: 1,
      }],
    });
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
  });

  it("keeps the user id out of a failed span's status and exception, unless asked", async () => {
    for (const recordUserId of [false, true]) {
      const { spans, tracerProvider, meterProvider } = providers();
      const nodes = downBot();
      instrument(nodes, { tracerProvider, meterProvider, recordUserId });
      await assert.rejects(
        nodes.route({ from: 98765, id: 1, text: "hi" }),
        /user "98765"/,
      );
      const [span] = spans.getFinishedSpans();
      const written = JSON.stringify([span?.status, span?.events]);
      assert.match(written, /Cannot begin the state of user/);
      assert.equal(written.includes("98765"), recordUserId, written);
      assert.equal(
        written.includes(String.raw`user \"(user id)\"`),
        !recordUserId,
        written,
      );
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    }
  });

  it("keeps a user id the bot refused out of the span too, unless asked", async () => {
    for (const recordUserId of [false, true]) {
      const { spans, tracerProvider, meterProvider } = providers();
      const nodes = downBot();
      instrument(nodes, { tracerProvider, meterProvider, recordUserId });
      for (const from of [2 ** 53 + 2, 98765.4321]) {
        await assert.rejects(
          nodes.route({ from, id: 1, text: "hi" }),
          /must be a safe integer/,
        );
      }
      const written = JSON.stringify(
        spans.getFinishedSpans().map((span) => [span.status, span.events]),
      );
      assert.match(written, /a number id must be a safe integer/);
      for (const id of ["9007199254740994", "98765.4321"]) {
        assert.equal(written.includes(id), recordUserId, written);
      }
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    }
  });

  it("parents the span on the active one, and records the user id only when asked", async () => {
    const manager = new LocalContextManager();
    context.setGlobalContextManager(manager);
    try {
      for (const recordUserId of [false, true]) {
        const { spans, tracerProvider, meterProvider } = providers();
        const bot = observedBot();
        instrument(bot.nodes, { tracerProvider, meterProvider, recordUserId });
        const parent = tracerProvider.getTracer("webhook").startSpan("POST");
        await context.with(
          trace.setSpan(context.active(), parent),
          () => bot.nodes.route({ from: 42, id: 1, text: "hi" }),
        );
        parent.end();
        const [span] = spans.getFinishedSpans().filter((s) =>
          s.name === "botnodes event"
        );
        assert.equal(
          span?.parentSpanContext?.spanId,
          parent.spanContext().spanId,
        );
        assert.equal(
          span?.spanContext().traceId,
          parent.spanContext().traceId,
        );
        assert.equal(
          span?.attributes["enduser.id"],
          recordUserId ? "42" : undefined,
        );
        await tracerProvider.shutdown();
        await meterProvider.shutdown();
      }
    } finally {
      context.disable();
    }
  });
});
