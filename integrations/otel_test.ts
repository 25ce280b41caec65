// @botnodes/core/otel with the SDK's in-memory span and metric exporters:
// the exact spans and metric points of a small bot.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import {
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
import { Nodes, type RedisLike, RedisStore } from "../mod.ts";
import { instrument } from "./otel.ts";
import { FakeClock } from "../testing/mod.ts";
import {
  type Event,
  Menu,
  observedBot,
  registry,
  script,
  type Shared,
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

describe("@botnodes/core/otel", () => {
  it("makes a span per transition, with node keys, outcome and times", async () => {
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
      [
        {
          name: "botnodes event",
          attributes: {
            [kind]: "event",
            [outcome]: "committed",
            [to]: "menu",
            "botnodes.event.id": "1",
            ...times(1, 0, 2),
          },
          status: { code: 0 },
          events: [],
        },
        {
          name: "botnodes event",
          attributes: {
            [kind]: "event",
            [outcome]: "committed",
            [from]: "menu",
            [to]: "order",
            "botnodes.event.id": "2",
            ...times(1, 3, 2),
          },
          status: { code: 0 },
          events: [],
        },
        {
          name: "botnodes event",
          attributes: {
            [kind]: "event",
            [outcome]: "duplicate",
            "botnodes.event.id": "2",
            ...times(1, 0, 0),
          },
          status: { code: 0 },
          events: [],
        },
        {
          name: "botnodes event",
          attributes: {
            [kind]: "event",
            [outcome]: "failed",
            [from]: "order",
            "botnodes.event.id": "3",
            ...times(1, 0, 0),
            "error.type": "Error",
          },
          status: { code: 2, message: "the kitchen is on fire" },
          events: ["exception"],
        },
        {
          name: "botnodes event",
          attributes: {
            [kind]: "event",
            [outcome]: "committed",
            [to]: "menu",
            "botnodes.event.id": "4",
            "botnodes.state.invalid": "unparseable",
            ...times(1, 0, 2),
          },
          status: { code: 0 },
          events: [],
        },
        {
          name: "botnodes event",
          attributes: {
            [kind]: "event",
            [outcome]: "not-ours",
            ...times(0, 0, 0),
          },
          status: { code: 0 },
          events: [],
        },
        {
          name: "botnodes timeout",
          attributes: {
            [kind]: "timeout",
            [outcome]: "committed",
            [from]: "order",
            [to]: "menu",
            ...times(1, 0, 2),
          },
          status: { code: 0 },
          events: [],
        },
        {
          name: "botnodes to",
          attributes: {
            [kind]: "to",
            [outcome]: "committed",
            [from]: "menu",
            [to]: "order",
            ...times(1, 0, 2),
          },
          status: { code: 0 },
          events: [],
        },
        {
          name: "botnodes reset",
          attributes: {
            [kind]: "reset",
            [outcome]: "committed",
            [from]: "order",
            ...times(1, 0, 2),
          },
          status: { code: 0 },
          events: [],
        },
      ],
    );
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
        points: [
          {
            attributes: {
              [kind]: "event",
              [outcome]: "committed",
              [to]: "menu",
            },
            value: 2,
          },
          {
            attributes: {
              [kind]: "event",
              [outcome]: "committed",
              [from]: "menu",
              [to]: "order",
            },
            value: 1,
          },
          { attributes: { [kind]: "event", [outcome]: "duplicate" }, value: 1 },
          {
            attributes: {
              [kind]: "event",
              [outcome]: "failed",
              [from]: "order",
            },
            value: 1,
          },
          { attributes: { [kind]: "event", [outcome]: "not-ours" }, value: 1 },
          {
            attributes: {
              [kind]: "timeout",
              [outcome]: "committed",
              [from]: "order",
              [to]: "menu",
            },
            value: 1,
          },
          {
            attributes: {
              [kind]: "to",
              [outcome]: "committed",
              [from]: "menu",
              [to]: "order",
            },
            value: 1,
          },
          {
            attributes: {
              [kind]: "reset",
              [outcome]: "committed",
              [from]: "order",
            },
            value: 1,
          },
        ],
      },
      {
        name: "botnodes.transition.duration",
        unit: "s",
        points: [
          {
            attributes: { [kind]: "event", [outcome]: "committed" },
            value: { count: 3, sum: 0.012 },
          },
          {
            attributes: { [kind]: "event", [outcome]: "duplicate" },
            value: { count: 1, sum: 0.001 },
          },
          {
            attributes: { [kind]: "event", [outcome]: "failed" },
            value: { count: 1, sum: 0.001 },
          },
          {
            attributes: { [kind]: "event", [outcome]: "not-ours" },
            value: { count: 1, sum: 0 },
          },
          {
            attributes: { [kind]: "timeout", [outcome]: "committed" },
            value: { count: 1, sum: 0.003 },
          },
          {
            attributes: { [kind]: "to", [outcome]: "committed" },
            value: { count: 1, sum: 0.003 },
          },
          {
            attributes: { [kind]: "reset", [outcome]: "committed" },
            value: { count: 1, sum: 0.003 },
          },
        ],
      },
      {
        name: "botnodes.lease.wait",
        unit: "s",
        points: [
          { attributes: { [kind]: "event" }, value: { count: 5, sum: 0.005 } },
          {
            attributes: { [kind]: "timeout" },
            value: { count: 1, sum: 0.001 },
          },
          { attributes: { [kind]: "to" }, value: { count: 1, sum: 0.001 } },
          { attributes: { [kind]: "reset" }, value: { count: 1, sum: 0.001 } },
        ],
      },
    ]);
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
  });

  it("counts store errors", async () => {
    const { tracerProvider, meterProvider, points } = providers();
    const down: RedisLike = {
      eval: () => Promise.reject(new Error("ECONNREFUSED")),
      evalsha: () => Promise.reject(new Error("ECONNREFUSED")),
    };
    const nodes = new Nodes<Shared, Event, number>({
      store: new RedisStore(down),
      nodes: registry,
      start: () => new Menu(),
      shared: { clock: new FakeClock() },
      userId: (event) => event.from,
    });
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
