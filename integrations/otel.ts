/**
 * OpenTelemetry for botnodes: a span per transition and metrics of
 * transitions, durations, lease waits and store errors, on
 * `@opentelemetry/api` (the API every tracing backend's SDK implements).
 * The core (`@botnodes/core`) does not import OpenTelemetry: this entry
 * listens to `nodes.observe()`.
 *
 * @example Instrumenting a bot (spans and metrics go to the global providers)
 * ```ts
 * import assert from "node:assert/strict";
 * import { Node, Nodes } from "@botnodes/core";
 * import { instrument } from "@botnodes/core/otel";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * type Event = { from: number };
 * class Menu extends Node<null, Event, number, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   onEvent(): Menu {
 *     return new Menu();
 *   }
 * }
 *
 * const nodes = new Nodes<null, Event, number>({
 *   store: new MemoryStore(),
 *   nodes: { menu: Menu },
 *   start: () => new Menu(),
 *   shared: null,
 *   userId: (event) => event.from,
 * });
 * const stop = instrument(nodes); // the SDK you registered receives them
 * const result = await nodes.route({ from: 1 });
 * assert.ok(result.handled);
 * stop();
 * ```
 *
 * @module
 */

import {
  type Attributes,
  context,
  type Meter,
  type MeterProvider,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
  type TracerProvider,
  ValueType,
} from "@opentelemetry/api";
import {
  LeaseLostError,
  LeaseTimeoutError,
  StoreError,
  type Transition,
  type TransitionListener,
} from "../mod.ts";

/**
 * A tracer provider, as `instrument` uses it: an OpenTelemetry
 * `TracerProvider` (the SDK's `BasicTracerProvider`, `NodeTracerProvider`)
 * is one.
 *
 * @example
 * ```ts ignore
 * const tracerProvider: TracerSource = new BasicTracerProvider();
 * ```
 */
export interface TracerSource {
  /** Gives the tracer of an instrumentation scope. */
  getTracer(name: string): object;
}

/**
 * A meter provider, as `instrument` uses it: an OpenTelemetry
 * `MeterProvider` (the SDK's) is one.
 *
 * @example
 * ```ts ignore
 * const meterProvider: MeterSource = new MeterProvider({ readers: [reader] });
 * ```
 */
export interface MeterSource {
  /** Gives the meter of an instrumentation scope. */
  getMeter(name: string): object;
}

/** The instrumentation scope: the tracer's and the meter's name. */
export const INSTRUMENTATION_NAME = "@botnodes/core";

/**
 * Options of {@linkcode instrument}.
 *
 * @example Opting in to user ids in spans, with providers of your own
 * ```ts ignore
 * instrument(nodes, { tracerProvider, meterProvider, recordUserId: true });
 * ```
 */
export interface InstrumentOptions {
  /** Where spans go. Default: the global one (`trace.getTracerProvider()`). */
  readonly tracerProvider?: TracerSource | undefined;
  /** Where metrics go. Default: the global one (`metrics.getMeterProvider()`). */
  readonly meterProvider?: MeterSource | undefined;
  /**
   * Put the user id in each span (`enduser.id`). A user id is personal
   * data: off by default, and then the messages of botnodes' errors in a
   * span (its status and the exception recorded: `user "42"`) say
   * `user "(user id)"` instead; an error your handler throws is recorded as
   * it is, so keep user ids out of its message. Metrics never carry it (it
   * would make one series per user).
   */
  readonly recordUserId?: boolean | undefined;
}

/**
 * Anything that reports transitions: a `Nodes`.
 *
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 *
 * @example
 * ```ts ignore
 * const observed: Observable<Update, number> = nodes;
 * ```
 */
export interface Observable<Event, UserId extends string | number> {
  /** Calls the listener with every transition; returns the stop function. */
  observe(listener: TransitionListener<Event, UserId>): () => void;
}

/**
 * Traces and measures every transition of `nodes`.
 *
 * Each transition is a span named `botnodes <kind>` (`botnodes event`,
 * `botnodes timeout`, `botnodes to`, `botnodes reset`; an event for no user
 * of the nodes, outcome `not-ours`, is only counted), of kind INTERNAL,
 * child of the span active where the transition was started (a webhook's
 * HTTP span, grammY's middleware span), spanning its whole duration, with
 * the attributes `botnodes.transition.kind`, `botnodes.transition.outcome`,
 * `botnodes.node.from`, `botnodes.node.to`, `botnodes.event.id`,
 * `botnodes.state.invalid` (when present), `botnodes.lease.wait_ms`,
 * `botnodes.handler.duration_ms`, `botnodes.store.duration_ms`, and
 * `enduser.id` when `recordUserId` is on. A failed transition has the status
 * ERROR, `error.type` and the exception recorded.
 *
 * Metrics: `botnodes.transitions` (a counter, by kind, outcome, from and
 * to), `botnodes.transition.duration` (a histogram in s, by kind and
 * outcome), `botnodes.lease.wait` (a histogram in s, by kind), and
 * `botnodes.store.errors` (a counter, by `error.type`: `StoreError`,
 * `LeaseLostError` or `LeaseTimeoutError`, and the store operation).
 *
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 * @param nodes The `Nodes` to instrument.
 * @param options The providers, and whether user ids go into spans.
 * @returns A function that stops the instrumentation.
 *
 * @example With a tracer provider of your own
 * ```ts ignore
 * import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
 * import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
 *
 * const tracerProvider = new BasicTracerProvider({
 *   spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
 * });
 * instrument(nodes, { tracerProvider });
 * ```
 */
export function instrument<Event, UserId extends string | number>(
  nodes: Observable<Event, UserId>,
  options: InstrumentOptions = {},
): () => void {
  const tracer =
    ((options.tracerProvider ?? trace.getTracerProvider()) as TracerProvider)
      .getTracer(INSTRUMENTATION_NAME) as Tracer;
  const meter =
    ((options.meterProvider ?? metrics.getMeterProvider()) as MeterProvider)
      .getMeter(INSTRUMENTATION_NAME) as Meter;
  const transitions = meter.createCounter("botnodes.transitions", {
    description: "Transitions, by kind, outcome and node keys",
    unit: "{transition}",
    valueType: ValueType.INT,
  });
  const duration = meter.createHistogram("botnodes.transition.duration", {
    description: "How long a transition took, from the call to its outcome",
    unit: "s",
  });
  const leaseWait = meter.createHistogram("botnodes.lease.wait", {
    description: "How long a transition waited for the user's lease",
    unit: "s",
  });
  const storeErrors = meter.createCounter("botnodes.store.errors", {
    description:
      "Transitions failed by the store: unavailable, lease lost, or lease wait exceeded",
    unit: "{error}",
    valueType: ValueType.INT,
  });
  const recordUserId = options.recordUserId === true;

  return nodes.observe((t: Transition<Event, UserId>) => {
    const end = performance.timeOrigin + performance.now();
    const keys: Attributes = {
      "botnodes.transition.kind": t.kind,
      "botnodes.transition.outcome": t.outcome,
    };
    if (t.from !== undefined) keys["botnodes.node.from"] = t.from;
    if (t.to !== undefined) keys["botnodes.node.to"] = t.to;
    transitions.add(1, keys);
    // the span's own attributes: the SDK may keep the metric's object
    const attributes: Attributes = { ...keys };
    const short = {
      "botnodes.transition.kind": t.kind,
      "botnodes.transition.outcome": t.outcome,
    };
    duration.record(t.duration / 1_000, short);
    if (t.outcome !== "not-ours") {
      leaseWait.record(t.leaseWait / 1_000, {
        "botnodes.transition.kind": t.kind,
      });
    }
    // an event for no user of the nodes (a group message to a bot keyed by
    // private chat) is counted, and has no span: no work of the nodes ran
    if (t.outcome === "not-ours") return;
    if (t.eventId !== undefined) attributes["botnodes.event.id"] = t.eventId;
    if (t.invalid !== undefined) {
      attributes["botnodes.state.invalid"] = t.invalid;
    }
    attributes["botnodes.lease.wait_ms"] = t.leaseWait;
    attributes["botnodes.handler.duration_ms"] = t.handlerTime;
    attributes["botnodes.store.duration_ms"] = t.storeTime;
    if (recordUserId && t.userId !== undefined) {
      attributes["enduser.id"] = String(t.userId);
    }
    const error = t.error;
    if (t.outcome === "failed") {
      attributes["error.type"] = error instanceof Error
        ? error.name
        : typeof error;
      if (
        error instanceof StoreError || error instanceof LeaseLostError ||
        error instanceof LeaseTimeoutError
      ) {
        storeErrors.add(1, {
          "error.type": error.name,
          ...(error instanceof StoreError
            ? { "botnodes.store.operation": error.operation }
            : {}),
        });
      }
    }
    const span = tracer.startSpan(
      `botnodes ${t.kind}`,
      { kind: SpanKind.INTERNAL, startTime: end - t.duration, attributes },
      context.active(),
    );
    if (t.outcome === "failed") {
      // botnodes' own messages name the user (`user "42"`): without
      // recordUserId, not in the span either
      const hide = recordUserId || t.userId === undefined
        ? (text: string) => text
        : (text: string) => text.split(`"${t.userId}"`).join(HIDDEN_USER);
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: hide(error instanceof Error ? error.message : String(error)),
      });
      if (error instanceof Error) {
        span.recordException({
          name: error.name,
          message: hide(error.message),
          ...(typeof error.stack === "string"
            ? { stack: hide(error.stack) }
            : {}),
        }, end);
      }
    }
    span.end(end);
  });
}

/** What stands for a user id in a span's error, without `recordUserId`. */
const HIDDEN_USER = '"(user id)"';
