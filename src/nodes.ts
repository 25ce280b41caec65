/**
 * `Nodes`: the manager that routes events to the node each user is on.
 *
 * @module
 */

import {
  InvalidStateError,
  LeaseTimeoutError,
  StateTooLargeError,
  UnregisteredNodeError,
} from "./errors.ts";
import type { InvalidStateReason } from "./errors.ts";
import { isPromise, type MaybePromise } from "./maybe_promise.ts";
import type { Node, NodeClass } from "./node.ts";
import {
  type Armed,
  armedOf,
  describeValue,
  Registry,
  storedTimer,
} from "./registry.ts";
import {
  type Claimed,
  type CommitOptions,
  type DueTimer,
  type Lease,
  type ScanOptions,
  type StateStore,
  systemClock,
} from "./store.ts";
import {
  finiteNumber,
  MAX_SCAN_COUNT,
  MAX_TIMER_MS,
  wholeNumber,
} from "./options.ts";
import type {
  Transition,
  TransitionKind,
  TransitionListener,
  TransitionOutcome,
} from "./transition.ts";
import { inHook, queueOf, runHook, type UserQueue } from "./user_queue.ts";

/**
 * Where botnodes reports what it handled on its own (invalid stored state, a
 * lease that could not be released). `console` fits.
 *
 * @example Sending reports to your own logger
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Logger } from "@botnodes/core";
 *
 * const warnings: string[] = [];
 * const logger: Logger = { warn: (message) => warnings.push(`[bot] ${message}`) };
 * logger.warn("a lease could not be released");
 * assert.deepEqual(warnings, ["[bot] a lease could not be released"]);
 * ```
 */
export interface Logger {
  /** Reports something botnodes handled but you should know about. */
  warn(message: string, ...details: unknown[]): void;
}

/**
 * Decides what happens to a user whose stored state cannot be restored.
 * Return a node to put the user on it (it is entered and committed), return
 * `undefined` to treat the user as new (the start node is entered), or throw
 * to make `route` throw (nothing is written). In every case but the throw the
 * raw value is kept aside by the store: see `user(id).aside()`.
 *
 * @typeParam Shared What every handler receives: your services.
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 *
 * @example Sending users on a node that no longer exists to a dedicated node
 * ```ts
 * import assert from "node:assert/strict";
 * import { type InvalidStateHook, Node, Nodes } from "@botnodes/core";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * type Event = { from: number };
 *
 * class Menu extends Node<null, Event, number, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   onEvent(): Menu {
 *     return new Menu();
 *   }
 * }
 * class Survey extends Menu {}
 * class Outdated extends Menu {}
 *
 * const onInvalidState: InvalidStateHook<null, Event, number> = (error) =>
 *   error.reason === "unknown-node" ? new Outdated() : undefined;
 *
 * const store = new MemoryStore();
 * const common = { store, shared: null, userId: (event: Event) => event.from };
 * // version 1 of the bot puts user 42 on "survey"; version 2 has no "survey"
 * const v1 = new Nodes<null, Event, number>({
 *   ...common,
 *   nodes: { menu: Menu, survey: Survey },
 *   start: () => new Survey(),
 * });
 * await v1.route({ from: 42 });
 * const v2 = new Nodes<null, Event, number>({
 *   ...common,
 *   nodes: { menu: Menu, outdated: Outdated },
 *   start: () => new Menu(),
 *   onInvalidState,
 * });
 * const result = await v2.route({ from: 42 });
 * assert.ok(result.handled && result.node instanceof Outdated);
 * assert.equal((await v2.user(42).aside()).length, 1); // the old state, kept
 * ```
 */
export type InvalidStateHook<
  Shared,
  Event,
  UserId extends string | number,
> = (
  error: InvalidStateError,
  event: Event | undefined,
) => MaybePromise<Node<Shared, Event, UserId> | undefined | void>;

/**
 * Options of {@linkcode Nodes}.
 *
 * @typeParam Shared What every handler receives: your services.
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 *
 * @example The options of a bot whose events are plain messages
 * ```ts
 * import assert from "node:assert/strict";
 * import { Node, Nodes, type NodesOptions } from "@botnodes/core";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * type Message = { from?: { id: number }; text: string };
 * type Shared = { send(to: number, text: string): void };
 *
 * class Start extends Node<Shared, Message, number, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   override onEnter(user: number, shared: Shared) {
 *     shared.send(user, "Welcome!");
 *   }
 *   onEvent(): Start {
 *     return new Start();
 *   }
 * }
 *
 * const sent: string[] = [];
 * const options: NodesOptions<Shared, Message, number> = {
 *   store: new MemoryStore(),
 *   nodes: { start: Start },
 *   start: () => new Start(),
 *   shared: { send: (to, text) => sent.push(`${to}: ${text}`) },
 *   userId: (message) => message.from?.id,
 * };
 * const nodes = new Nodes(options);
 * await nodes.route({ from: { id: 7 }, text: "hi" });
 * // a message without a sender is not for `Nodes`
 * const result = await nodes.route({ text: "from a channel" });
 * assert.deepEqual(result, { handled: false, reason: "not-ours" });
 * assert.deepEqual(sent, ["7: Welcome!"]);
 * ```
 */
export interface NodesOptions<Shared, Event, UserId extends string | number> {
  /** Where state lives: a `RedisStore`, or a `MemoryStore` in tests. */
  readonly store: StateStore;
  /**
   * Every node class, under the key it is stored with. The keys are the
   * stored identity of a node: never change or reuse them once deployed.
   */
  readonly nodes: Readonly<Record<string, NodeClass<Shared, Event, UserId>>>;
  /** The node a user with no state enters; gets the user's first event. */
  readonly start: (event: Event) => MaybePromise<Node<Shared, Event, UserId>>;
  /**
   * What every `onEnter` and `onEvent` receives: your services (`bot.api`, a
   * database, a logger).
   */
  readonly shared: Shared;
  /**
   * The id of the user an event is from, or `undefined` when the event is not
   * for `Nodes` (then `route` touches nothing).
   *
   * A user is keyed by the string form of their id: `42` and `"42"` are the
   * same user. A number id must be a safe integer (not `NaN`, `Infinity` or
   * `1.5`) and a string id at most 1,024 UTF-16 units long; any other id
   * makes `route` reject with a `TypeError` or `RangeError`.
   */
  readonly userId: (event: Event) => UserId | undefined;
  /**
   * Decides about stored state that cannot be restored. Default: report it
   * to `logger` and treat the user as new.
   */
  readonly onInvalidState?:
    | InvalidStateHook<Shared, Event, UserId>
    | undefined;
  /** Where reports go. Default `console`. */
  readonly logger?: Logger | undefined;
  /**
   * The id of an event, to handle each event once even when it is delivered
   * again (a webhook retry): grammY's `ctx.update.update_id`. A string of at
   * most 1,024 UTF-16 units or a safe integer (else `route` rejects with a
   * `TypeError` or `RangeError`), keyed by its string form. A redelivered
   * event whose first delivery was committed is skipped (`route` returns
   * `{ handled: false, reason: "duplicate" }`); the id is remembered in the
   * same atomic commit as the state, among the last `seenEvents` of the
   * user (a store option). Default: none (no deduplication).
   */
  readonly eventId?:
    | ((event: Event) => string | number | undefined)
    | undefined;
  /**
   * The largest encoded state, in bytes, that may be stored; a larger one is
   * refused with `StateTooLargeError` before anything is written: a whole
   * number from 1 to 536,870,912 (512 MiB, a Redis string's limit).
   * Default 1 MiB.
   */
  readonly maxStateBytes?: number | undefined;
}

/**
 * What `route` did with an event.
 *
 * @typeParam Shared What every handler receives: your services.
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 *
 * @example Logging transitions
 * ```ts
 * import assert from "node:assert/strict";
 * import { Node, Nodes } from "@botnodes/core";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * type Event = { from: string; id: number };
 *
 * class Menu extends Node<null, Event, string, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   onEvent(): Menu {
 *     return new Menu();
 *   }
 * }
 *
 * const nodes = new Nodes<null, Event, string>({
 *   store: new MemoryStore(),
 *   nodes: { menu: Menu },
 *   start: () => new Menu(),
 *   shared: null,
 *   userId: (event) => event.from,
 *   eventId: (event) => event.id,
 * });
 * const log: string[] = [];
 * for (const event of [{ from: "ann", id: 1 }, { from: "ann", id: 1 }]) {
 *   const result = await nodes.route(event);
 *   log.push(
 *     result.handled
 *       ? `${result.userId} is now on ${result.key}`
 *       : `${result.reason}: skipped`,
 *   );
 * }
 * assert.deepEqual(log, ["ann is now on menu", "duplicate: skipped"]);
 * ```
 */
export type RouteResult<Shared, Event, UserId extends string | number> =
  | {
    /** The event was not for `Nodes`: `userId` returned `undefined`. */
    readonly handled: false;
    /** Why: not for `Nodes`. */
    readonly reason: "not-ours";
  }
  | {
    /** The event was handled before (same `eventId`): nothing was done. */
    readonly handled: false;
    /** Why: a redelivery. */
    readonly reason: "duplicate";
    /** The user the event was from. */
    readonly userId: UserId;
  }
  | {
    /** The event was handled and the transition committed. */
    readonly handled: true;
    /** The user the event was from. */
    readonly userId: UserId;
    /** The node the user was on, or `undefined` if they had no state. */
    readonly previous: Node<Shared, Event, UserId> | undefined;
    /** The node the user is on now (entered and committed). */
    readonly node: Node<Shared, Event, UserId>;
    /** The registry key of `node`. */
    readonly key: string;
  };

/**
 * One user's state, from outside a handler: returned by `nodes.user(id)`.
 * `to` and `reset` wait their turn behind that user's events, like `route`.
 *
 * @typeParam Shared What every handler receives: your services.
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 *
 * @example Reading where a user is
 * ```ts
 * import assert from "node:assert/strict";
 * import { Node, Nodes } from "@botnodes/core";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * type Event = { from: number; text: string };
 *
 * class Hungry extends Node<null, Event, number, { order: string[] }> {
 *   onEvent(_user: number, event: Event): Hungry {
 *     return new Hungry({ order: [...this.data.order, event.text] });
 *   }
 * }
 *
 * const nodes = new Nodes<null, Event, number>({
 *   store: new MemoryStore(),
 *   nodes: { hungry: Hungry },
 *   start: () => new Hungry({ order: [] }),
 *   shared: null,
 *   userId: (event) => event.from,
 * });
 * await nodes.route({ from: 42, text: "hi" });
 * await nodes.route({ from: 42, text: "soup" });
 *
 * const node = await nodes.user(42).node();
 * assert.ok(node instanceof Hungry);
 * assert.deepEqual(node.data.order, ["soup"]);
 * assert.equal(await nodes.user(7).node(), undefined); // no state
 * ```
 */
export interface UserHandle<Shared, Event, UserId extends string | number> {
  /** The user. */
  readonly userId: UserId;

  /**
   * The node the user is on, restored from the store, or `undefined` when the
   * user has no state. Takes no lease: a snapshot. For a stored state that
   * cannot be restored: with an `onInvalidState` hook of yours, the node it
   * returns, checked as `route` checks it (`UnregisteredNodeError`,
   * `NodeDataError`), or `undefined` when it returns none; without one,
   * `undefined`. Nothing is written, kept aside or reported here. Called
   * from inside that user's own `onInvalidState`, where it would run the
   * hook again forever, it fails at once (read `peek()` there).
   */
  node(): Promise<Node<Shared, Event, UserId> | undefined>;

  /**
   * What is stored for the user, read without side effects: the node, the
   * `InvalidStateError` saying why the stored value cannot be restored, or
   * `undefined` when the user has no state. Runs no hook and writes nothing
   * (test harnesses observe users with it).
   */
  peek(): Promise<Node<Shared, Event, UserId> | InvalidStateError | undefined>;

  /**
   * Moves the user to `node`: enters it (`onEnter`) and commits it, after the
   * user's pending events in this process. With `from`, only a user who is
   * on one of those node keys (as stored) when their turn comes is moved;
   * anyone else, or a user without state, is left as they are and nothing is
   * written: the check and the move happen under the user's lease, so a user
   * who moved on since you looked (a snapshot of {@linkcode Nodes.users}) is
   * never dragged back. A stored state that cannot be restored is replaced
   * without the `onInvalidState` hook (you chose the node), and its raw
   * value is kept aside all the same (see {@linkcode UserHandle.aside}).
   *
   * Called from inside this user's own handler it fails at once with an
   * `Error` (it would wait for the handler that awaits it); where
   * `AsyncLocalStorage` is missing (a runtime without
   * `process.getBuiltinModule`) it fails with `LeaseTimeoutError` after the
   * store's `wait` instead.
   *
   * @param node The node to put the user on.
   * @param options `from`: move the user only from these node keys.
   * @returns `true` when the user was moved; `false` when `from` did not
   * match and nothing was written.
   * @throws {UnregisteredNodeError} When the node's class is not registered.
   * @throws {NodeDataError} When the node's data may not be stored.
   * @throws {LeaseTimeoutError} When the user stayed busy for the store's
   * `wait`.
   * @throws {TypeError} When `from` is not an array of strings.
   */
  to(
    node: Node<Shared, Event, UserId>,
    options?: MoveOptions,
  ): Promise<boolean>;

  /**
   * Deletes the user's state: their next event enters the start node. Waits
   * behind the user's pending events, and fails at once from inside this
   * user's own handler, like {@linkcode UserHandle.to}. A stored state that
   * cannot be restored is deleted without the `onInvalidState` hook, its raw
   * value kept aside.
   */
  reset(): Promise<void>;

  /**
   * The raw stored values that could not be restored and were replaced,
   * newest first: the newest 16 (`ASIDE_LIMIT`, exported by
   * `@botnodes/core/store`); older ones are dropped as new ones come.
   */
  aside(): Promise<string[]>;
}

/**
 * Routes each incoming event to the node its user is on, and commits the
 * transition atomically.
 *
 * For each event, `route`:
 * 1. takes the user's lease from the store and loads their node;
 * 2. for a user with no state, builds `start(event)`; otherwise calls the
 *    node's `onEvent`, which returns the next node;
 * 3. calls the next node's `onEnter`;
 * 4. only then commits the next node's `data` and releases the lease.
 *
 * If anything throws before the commit, nothing is written, the user stays
 * where they were and the error reaches the caller unchanged. Events of one
 * user run one at a time, and within one process in the order `route` was
 * called; different users run concurrently. Across processes the store's
 * lease and fencing still run a user's events one at a time and never apply
 * one on a stale state, but in the order the processes take the lease, which
 * may differ from the order the events were sent (for Telegram's order, run
 * one long-polling process, or compare `update_id`).
 *
 * A handler may take longer than the store's `leaseTtl`: the lease is
 * renewed every third of `leaseTtl` while it runs, so `leaseTtl` only bounds
 * how long a crashed process blocks a user. An event that waits behind a
 * busy user longer than the store's `wait`, in this process or another,
 * fails with `LeaseTimeoutError` and never runs.
 *
 * @typeParam Shared What every handler receives: your services (the
 * `shared` option).
 * @typeParam Event The type of one incoming event.
 * @typeParam UserId The type of the user ids.
 *
 * @example A two-node conversation on the in-memory store
 * ```ts
 * import assert from "node:assert/strict";
 * import { Node, Nodes } from "@botnodes/core";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * type Shared = { replies: string[] };
 * type Event = { from: string; text: string };
 *
 * class Menu extends Node<Shared, Event, string, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   override onEnter(_user: string, shared: Shared) {
 *     shared.replies.push("Hungry?");
 *   }
 *   onEvent(_user: string, event: Event): Menu | Order {
 *     return event.text === "Yes" ? new Order() : new Menu();
 *   }
 * }
 * class Order extends Node<Shared, Event, string, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   override onEnter(_user: string, shared: Shared) {
 *     shared.replies.push("What will it be?");
 *   }
 *   onEvent(): Menu {
 *     return new Menu();
 *   }
 * }
 *
 * const shared: Shared = { replies: [] };
 * const nodes = new Nodes<Shared, Event, string>({
 *   store: new MemoryStore(),
 *   nodes: { menu: Menu, order: Order },
 *   start: () => new Menu(),
 *   shared,
 *   userId: (event) => event.from,
 * });
 * await nodes.route({ from: "ann", text: "hi" });
 * await nodes.route({ from: "ann", text: "Yes" });
 * assert.deepEqual(shared.replies, ["Hungry?", "What will it be?"]);
 * ```
 */
export class Nodes<Shared, Event, UserId extends string | number> {
  readonly #store: StateStore;
  readonly #registry: Registry<Shared, Event, UserId>;
  readonly #start: (event: Event) => MaybePromise<Node<Shared, Event, UserId>>;
  readonly #shared: Shared;
  readonly #userId: (event: Event) => UserId | undefined;
  readonly #onInvalidState: InvalidStateHook<Shared, Event, UserId>;
  /** Whether `onInvalidState` is the bot's own (not the default report). */
  readonly #hookGiven: boolean;
  readonly #logger: Logger;
  readonly #eventId:
    | ((event: Event) => string | number | undefined)
    | undefined;
  readonly #maxStateBytes: number;
  /** Runs each user's events one at a time, with their lease. */
  readonly #queue: UserQueue;
  /** The transition listeners (replaced, never mutated, on a change). */
  #observers: readonly TransitionListener<Event, UserId>[] = [];
  /** The clock transitions are timed on. */
  readonly #now: () => number;

  /**
   * Makes the manager.
   *
   * @param options The store, the node registry, the start node, your
   * services (`shared`) and how to get a user id from an event.
   * @throws {TypeError} When the registry is empty, a class is registered
   * twice, a required option is missing, or `ctx` is given for `shared`.
   */
  constructor(options: NodesOptions<Shared, Event, UserId>) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("Cannot create Nodes: options must be an object");
    }
    for (const name of ["start", "userId"] as const) {
      if (typeof options[name] !== "function") {
        throw new TypeError(
          `Cannot create Nodes: option "${name}" must be a function`,
        );
      }
    }
    for (const name of ["eventId", "onInvalidState"] as const) {
      if (options[name] !== undefined && typeof options[name] !== "function") {
        throw new TypeError(
          `Cannot create Nodes: option "${name}" must be a function or left out, got ${
            describeValue(options[name])
          }`,
        );
      }
    }
    const logger = options.logger;
    if (
      logger !== undefined &&
      (logger === null || typeof logger.warn !== "function")
    ) {
      throw new TypeError(
        'Cannot create Nodes: option "logger" must have a warn(message, error) method, like console',
      );
    }
    if ("ctx" in options && !("shared" in options)) {
      throw new TypeError(
        'Cannot create Nodes: option "ctx" is now called "shared"',
      );
    }
    const store = options.store;
    if (
      store === null || typeof store !== "object" ||
      typeof store.begin !== "function"
    ) {
      throw new TypeError(
        'Cannot create Nodes: option "store" must be a StateStore',
      );
    }
    this.#store = store;
    this.#logger = options.logger ?? console;
    this.#registry = new Registry(
      options.nodes,
      (key, field) =>
        this.#logger.warn(
          field === undefined
            ? `Node "${key}": its schema dropped more fields from the data nodes were built with; no more are reported`
            : `Node "${key}": its schema dropped the field ${
              JSON.stringify(field)
            } from the data the node was built with, so it is not stored (the next event finds it missing): add it to the schema, or let the schema keep unknown keys (z.looseObject). Said once per field.`,
        ),
    );
    this.#start = options.start;
    this.#shared = options.shared;
    this.#userId = options.userId;
    this.#queue = queueOf(store);
    const clock = store.timing?.clock ?? systemClock;
    this.#now = clock === systemClock
      ? () => performance.now()
      : () => clock.now();
    this.#eventId = options.eventId;
    // at most what one Redis string holds (512 MiB)
    this.#maxStateBytes = wholeNumber(
      'Cannot create Nodes: option "maxStateBytes"',
      options.maxStateBytes ?? 1_048_576,
      1,
      536_870_912,
    );
    this.#hookGiven = options.onInvalidState !== undefined;
    this.#onInvalidState = options.onInvalidState ?? ((error) => {
      this.#logger.warn(
        `${error.message}; the user starts over and the raw value is kept aside`,
      );
    });
  }

  /**
   * Handles one event: loads the user's node, runs `onEvent` (or enters the
   * start node for a new user), enters the next node and commits it.
   *
   * A bound function, so it can be passed as a callback as is:
   * `bot.on("message", nodes.route)`.
   *
   * @param event The incoming event.
   * @returns What was done; `{ handled: false, reason: "not-ours" }` when
   * `userId(event)` is `undefined` (then nothing was read or written),
   * `{ handled: false, reason: "duplicate" }` for a redelivered event.
   * @throws Whatever `start`, `onEvent` or `onEnter` threw, unchanged, and
   * nothing is written. {@linkcode UnregisteredNodeError} for a node whose
   * class is not registered. `NodeDataError` for data that would not come
   * back equal and `StateTooLargeError` for a state that may not be stored.
   * `LeaseTimeoutError` when the user stayed busy for the store's `wait`
   * (in this process or another); `LeaseLostError` and `StoreError` from the
   * store. `TypeError` or `RangeError` for a user id that cannot be meant
   * (see {@linkcode NodesOptions.userId}); `TypeError` for a handler, `start`
   * or hook that gives no node at all. An `Error` when called for a user
   * from inside that user's own handler, where it would wait for itself.
   */
  readonly route = (
    event: Event,
  ): Promise<RouteResult<Shared, Event, UserId>> => {
    const trace = this.#trace("event", undefined, event);
    let userId: UserId | undefined;
    let eventId: string | undefined;
    let key: string;
    try {
      userId = this.#userId(event);
      if (userId === undefined) {
        if (trace) this.#report(trace, "not-ours");
        return Promise.resolve({ handled: false, reason: "not-ours" });
      }
      key = idKey("user id", userId);
      const given = this.#eventId?.(event);
      eventId = given === undefined ? undefined : idKey("event id", given);
    } catch (error) {
      if (trace) {
        // the id refused, for a listener that hides it (OpenTelemetry
        // without recordUserId: the error names it)
        trace.userId = userId;
        this.#report(trace, "failed", error);
      }
      return Promise.reject(error);
    }
    const id = userId;
    if (trace === undefined) {
      return this.#queue.run(
        key,
        (lease) => this.#transition(lease, id, event, undefined),
        eventId,
        false,
        this.#logger,
      );
    }
    trace.userId = id;
    trace.eventId = eventId;
    return this.#traced(
      trace,
      this.#queue.run(
        key,
        (lease) => this.#transition(lease, id, event, trace),
        eventId,
        false,
        this.#logger,
      ),
      (result) => result.handled ? "committed" : result.reason,
    );
  };

  /**
   * Calls `listener` with every transition from now on: each outcome of
   * `route`, `user(id).to`, `user(id).reset` and of each timer `runDue`
   * fires (a stale timer entry that fires nothing is not one), with the node
   * keys before and after and where the time went. The listener runs after
   * the outcome, before the call that made it returns, inside that call's
   * async context (so a tracer sees the caller's active span). It must not
   * throw: what it throws, or a promise it returns rejects with, goes to
   * the `logger` and never changes the transition. Without listeners,
   * nothing is measured.
   *
   * @param listener Receives each {@linkcode Transition}.
   * @returns A function that stops the listener.
   *
   * @example Counting outcomes
   * ```ts
   * import assert from "node:assert/strict";
   * import { Node, Nodes } from "@botnodes/core";
   * import { MemoryStore } from "@botnodes/core/testing";
   *
   * type Event = { from?: number; id: number; text: string };
   *
   * class Menu extends Node<null, Event, number, null> {
   *   constructor() {
   *     super(null);
   *   }
   *   onEvent(_user: number, event: Event): Menu | Order {
   *     if (event.text === "boom") throw new Error("boom");
   *     return event.text === "order" ? new Order() : new Menu();
   *   }
   * }
   * class Order extends Menu {}
   *
   * const nodes = new Nodes<null, Event, number>({
   *   store: new MemoryStore(),
   *   nodes: { menu: Menu, order: Order },
   *   start: () => new Menu(),
   *   shared: null,
   *   userId: (event) => event.from,
   *   eventId: (event) => event.id,
   * });
   * const seen: string[] = [];
   * const stop = nodes.observe((t) => {
   *   seen.push(`${t.kind} ${t.from ?? "-"} -> ${t.to ?? "-"}: ${t.outcome}`);
   * });
   * await nodes.route({ from: 7, id: 1, text: "hi" });
   * await nodes.route({ from: 7, id: 2, text: "order" });
   * await nodes.route({ from: 7, id: 2, text: "order" }); // redelivered
   * await nodes.route({ id: 3, text: "from a channel" });
   * await nodes.user(7).to(new Menu());
   * stop();
   * await nodes.route({ from: 7, id: 4, text: "hi" }); // not seen
   * assert.deepEqual(seen, [
   *   "event - -> menu: committed",
   *   "event menu -> order: committed",
   *   "event - -> -: duplicate",
   *   "event - -> -: not-ours",
   *   "to order -> menu: committed",
   * ]);
   * ```
   */
  observe(listener: TransitionListener<Event, UserId>): () => void {
    if (typeof listener !== "function") {
      throw new TypeError("Cannot observe: the listener must be a function");
    }
    this.#observers = [...this.#observers, listener];
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      const at = this.#observers.indexOf(listener);
      if (at >= 0) {
        this.#observers = this.#observers.filter((_, i) => i !== at);
      }
    };
  }

  /**
   * Starts observing one transition, or, when nobody listens, returns
   * `undefined` and does nothing else. This is the one gate of observation:
   * every other step of it (reading the clock, noting node keys, building
   * the `Transition`, calling listeners) runs only with the trace it
   * returns, so without listeners a transition costs one length check.
   */
  #trace(
    kind: TransitionKind,
    userId: UserId | undefined,
    event?: Event,
  ): Trace<Event, UserId> | undefined {
    if (this.#observers.length === 0) return undefined;
    return {
      kind,
      userId,
      eventId: undefined,
      event,
      from: undefined,
      to: undefined,
      invalid: undefined,
      start: this.#now(),
      held: -1,
      committing: -1,
    };
  }

  /** Notes where a traced transition starts from. */
  #from(
    trace: Trace<Event, UserId>,
    current: Node<Shared, Event, UserId> | InvalidStateError | undefined,
  ): void {
    if (current instanceof InvalidStateError) trace.invalid = current.reason;
    else if (current !== undefined) {
      trace.from = this.#registry.keyOf(current);
    }
  }

  /** Reports a traced call's outcome once it settles. */
  #traced<T>(
    trace: Trace<Event, UserId>,
    run: Promise<T>,
    outcome: (result: T) => TransitionOutcome = () => "committed",
  ): Promise<T> {
    return run.then((result) => {
      this.#report(trace, outcome(result));
      return result;
    }, (error: unknown) => {
      this.#report(trace, passedOn(error) ? "passed" : "failed", error);
      throw error;
    });
  }

  /** Hands a finished transition to every listener; none may break it. */
  #report(
    trace: Trace<Event, UserId>,
    outcome: TransitionOutcome,
    error?: unknown,
  ): void {
    const end = this.#now();
    const held = trace.held < 0 ? end : trace.held;
    const committing = trace.committing < 0 ? end : trace.committing;
    const transition: {
      -readonly [K in keyof Transition<Event, UserId>]: Transition<
        Event,
        UserId
      >[K];
    } = { kind: trace.kind, outcome, userId: trace.userId } as Transition<
      Event,
      UserId
    >;
    if (trace.eventId !== undefined) transition.eventId = trace.eventId;
    if (trace.kind === "event") transition.event = trace.event;
    if (outcome !== "duplicate" && outcome !== "not-ours") {
      if (trace.from !== undefined) transition.from = trace.from;
      if (trace.to !== undefined) transition.to = trace.to;
      if (trace.invalid !== undefined) transition.invalid = trace.invalid;
    }
    if (outcome === "failed") transition.error = error;
    transition.leaseWait = outcome === "not-ours" ? 0 : held - trace.start;
    transition.handlerTime = Math.max(0, committing - held);
    transition.storeTime = Math.max(0, end - Math.max(committing, held));
    transition.duration = end - trace.start;
    for (const listener of this.#observers) {
      try {
        const done = listener(transition);
        if (isPromise(done)) {
          done.then(
            undefined,
            (thrown: unknown) => this.#listenerFailed(thrown),
          );
        }
      } catch (thrown) {
        this.#listenerFailed(thrown);
      }
    }
  }

  #listenerFailed(error: unknown): void {
    this.#logger.warn(
      "A transition listener threw; the transition is not affected",
      error,
    );
  }

  /** One event's transition, under the user's lease. */
  async #transition(
    lease: Lease,
    id: UserId,
    event: Event,
    trace: Trace<Event, UserId> | undefined,
  ): Promise<RouteResult<Shared, Event, UserId>> {
    if (trace) trace.held = this.#now();
    if (lease.duplicate) {
      return { handled: false, reason: "duplicate", userId: id };
    }
    // each step awaits only what is really a promise: this is the hot path
    let current = this.#restore(lease);
    if (isPromise(current)) current = await current;
    if (trace) this.#from(trace, current);
    let next: MaybePromise<Node<Shared, Event, UserId> | undefined | void>;
    let from: "onEvent" | "start" | "onInvalidState";
    if (current instanceof InvalidStateError) {
      from = "onInvalidState";
      const invalid = current;
      next = runHook(
        this.#store,
        lease.userId,
        () => this.#onInvalidState(invalid, event),
      );
      if (isPromise(next)) next = await next;
      if (next === undefined || next === null) {
        from = "start";
        next = this.#start(event);
      }
    } else if (current === undefined) {
      from = "start";
      next = this.#start(event);
    } else {
      from = "onEvent";
      next = current.onEvent(id, event, this.#shared);
    }
    if (isPromise(next)) next = await next;
    const key = this.#keyOf(next as Node<Shared, Event, UserId>, from, current);
    if (trace) trace.to = key;
    const node = next as Node<Shared, Event, UserId>;
    const entered = node.onEnter(id, this.#shared, event);
    if (isPromise(entered)) await entered;
    const armed = node.timeout === undefined
      ? undefined
      : this.#arm(node, key, id);
    let state = this.#encode(node, key, armed);
    if (isPromise(state)) state = await state;
    if (trace) trace.committing = this.#now();
    await this.#commit(lease, state, current, armed);
    return {
      handled: true,
      userId: id,
      previous: current instanceof InvalidStateError ? undefined : current,
      node,
      key,
    };
  }

  /** Restores the leased state: a node, nothing, or why it is invalid. */
  #restore(
    lease: Lease,
  ): MaybePromise<Node<Shared, Event, UserId> | InvalidStateError | undefined> {
    return lease.state === undefined
      ? undefined
      : this.#registry.decode(lease.userId, lease.state);
  }

  /**
   * The registry key of a node's class; refuses an unregistered one, and
   * with a `TypeError` naming what gave it (`from`: a handler of `on`, a
   * hook, `start`, `to()`) a value that is no node at all (`undefined` from
   * a missing `return`, a class, a plain object).
   */
  #keyOf(
    node: Node<Shared, Event, UserId>,
    from:
      | "onEvent"
      | "onTimeout"
      | "start"
      | "onInvalidState"
      | "user(id).to()",
    on?: unknown,
  ): string {
    const key = this.#registry.keyOf(node);
    if (key !== undefined) return key;
    const kind = notANode(node);
    if (kind !== undefined) {
      const handler = from === "onEvent" || from === "onTimeout";
      const hint = typeof node === "function"
        ? `a node is an instance: new ${className(node)}(data)`
        : handler
        ? "return the next node, or this to stay"
        : "a node is an instance of a registered node class";
      const gave = from === "user(id).to()"
        ? `${from} was given`
        : handler
        ? `${from} of node "${this.#registry.keyOf(on as never)}" returned`
        : `${from} returned`;
      throw new TypeError(`${gave} ${kind}, not a node (${hint})`);
    }
    const name = (node as { constructor?: { name?: string } }).constructor
      ?.name ?? String(node);
    throw new UnregisteredNodeError(name, this.#registry.keys);
  }

  /** The timer of a node being entered, from its `timeout()`. */
  #arm(
    node: Node<Shared, Event, UserId>,
    key: string,
    user: UserId,
  ): Armed | undefined {
    const now = this.#store.timing.clock.now();
    const ms = node.timeout?.(now);
    if (ms === undefined) return undefined;
    if (typeof ms !== "number" || !(ms >= 0 && ms <= MAX_TIMEOUT)) {
      throw new RangeError(
        `Cannot enter node "${key}": its timeout() returned ${
          typeof ms === "number" ? String(ms) : describeValue(ms)
        }, not a number of ms from 0 to ten years (3,660 days)`,
      );
    }
    // a whole ms, not earlier than asked
    return { due: Math.ceil(now + ms), user };
  }

  /** Encodes a node for the store, within the size limit. */
  #encode(
    node: Node<Shared, Event, UserId>,
    key: string,
    armed?: Armed,
  ): string | Promise<string> {
    const state = this.#registry.encode(node, key, armed);
    return isPromise(state)
      ? state.then((encoded) => this.#withinLimit(encoded, key))
      : this.#withinLimit(state, key);
  }

  #withinLimit(state: string, key: string): string {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: count only when it matters
    if (state.length * 3 > this.#maxStateBytes) {
      const bytes = new TextEncoder().encode(state).length;
      if (bytes > this.#maxStateBytes) {
        throw new StateTooLargeError(key, bytes, this.#maxStateBytes);
      }
    }
    return state;
  }

  /**
   * Commits, keeping an invalid state being replaced aside. A timer being
   * armed goes into the store's index before the commit (the index may run
   * ahead of the state, never behind); the timers it replaces leave the index
   * after it, while the lease is still held (the commit keeps it, and the
   * queue releases it after), so that no one else can arm the same timer
   * again (same user, same due time: the same index entry) before the
   * replaced one is gone.
   *
   * @param fired The due time of the index entry a timer fired from (it was
   * claimed: its score moved), if any.
   */
  #commit(
    lease: Lease,
    state: string | undefined,
    replaced: Node<Shared, Event, UserId> | InvalidStateError | undefined,
    armed?: Armed,
    fired?: number,
  ): Promise<void> {
    const options = replaced instanceof InvalidStateError
      ? { aside: replaced.raw }
      : {};
    const old = armedOf(replaced)?.due;
    return armed === undefined && old === undefined && fired === undefined
      ? this.#queue.commit(lease, state, options)
      : this.#commitTimed(lease, state, options, armed?.due, old, fired);
  }

  async #commitTimed(
    lease: Lease,
    state: string | undefined,
    options: CommitOptions,
    due: number | undefined,
    old: number | undefined,
    fired: number | undefined,
  ): Promise<void> {
    const stale = new Set<number>();
    if (old !== undefined && old !== due) stale.add(old);
    if (fired !== undefined && fired !== due) stale.add(fired);
    // always (re)written: a timer armed again at the due time it fired from
    // has its claimed entry put back at that time, and one armed again at the
    // same due time gets its entry back if the index lost it
    if (due !== undefined) await this.#store.schedule(lease.userId, due);
    if (stale.size === 0) return this.#queue.commit(lease, state, options);
    await this.#queue.commit(lease, state, { ...options, keep: true });
    await Promise.all(
      [...stale].map((gone) => this.#unschedule(lease.userId, gone)),
    );
  }

  /** Takes an entry out of the timer index; a failure only leaves it stale. */
  #unschedule(userId: string, due: number): Promise<void> {
    return this.#store.unschedule(userId, due).catch((error: unknown) =>
      this.#logger.warn(
        `Cannot remove a fired or replaced timer of user "${userId}" from the index; it is skipped when found`,
        error,
      )
    );
  }

  /**
   * Fires the timers that are due now, each under its user's lease like an
   * event: the user's node's `onTimeout` returns the next node, which is
   * entered and committed. The call claims up to `limit` due timers in the
   * store (hidden from other calls for the store's `leaseTtl`, so that calls
   * running at once take different timers) and fires them at once. A timer
   * fires once per arming, whichever process fires it; an entry whose user
   * moved on since (answered before the due time) is dropped; a user whose
   * lease is taken (an event) is not waited for: their timer is looked at
   * again a second later. A timer whose `onTimeout` throws writes nothing
   * and is tried again later, backing off from 1 s to 5 min (reported to the
   * logger). Made for a scheduler: `Deno.cron`, a cron job, a serverless
   * schedule; `runTimers` is the loop for long-running bots.
   *
   * @param options `limit`: the most timers to fire in this call, 1 to
   * 100,000 (default 100).
   * @returns The timers fired.
   * @throws {RangeError} When `limit` is not a whole number from 1 to
   * 100,000 (`TypeError` when not a number).
   *
   * @example Ending an order after an hour of silence
   * ```ts
   * import assert from "node:assert/strict";
   * import { Node, Nodes } from "@botnodes/core";
   * import { FakeClock, MemoryStore } from "@botnodes/core/testing";
   *
   * type Event = { from: number; text: string };
   * class Ordering extends Node<string[], Event, number, null> {
   *   constructor() {
   *     super(null);
   *   }
   *   override timeout() {
   *     return 3_600_000;
   *   }
   *   override onTimeout(user: number, said: string[]) {
   *     said.push(`${user}: order dropped`);
   *     return new Idle();
   *   }
   *   onEvent(): Ordering {
   *     return new Ordering();
   *   }
   * }
   * class Idle extends Node<string[], Event, number, null> {
   *   constructor() {
   *     super(null);
   *   }
   *   onEvent(): Ordering {
   *     return new Ordering();
   *   }
   * }
   *
   * const clock = new FakeClock();
   * const said: string[] = [];
   * const nodes = new Nodes<string[], Event, number>({
   *   store: new MemoryStore({ clock }),
   *   nodes: { ordering: Ordering, idle: Idle },
   *   start: () => new Ordering(),
   *   shared: said,
   *   userId: (event) => event.from,
   * });
   * await nodes.route({ from: 7, text: "pizza" });
   * assert.deepEqual(await nodes.runDue(), []); // not due yet
   * clock.advance(3_600_000);
   * const [fired] = await nodes.runDue();
   * assert.equal(fired?.key, "idle");
   * assert.deepEqual(said, ["7: order dropped"]);
   * assert.deepEqual(await nodes.runDue(), []); // once per arming
   * ```
   */
  async runDue(
    options: RunDueOptions = {},
  ): Promise<FiredTimer<Shared, Event, UserId>[]> {
    const { now, timers } = await this.#claim(
      roundLimit("runDue", options.limit),
    );
    const fired = await Promise.all(
      timers.map((entry) => this.#fireClaimed(entry, now)),
    );
    return fired.filter((done) => done !== undefined).sort((a, b) =>
      a.due - b.due
    );
  }

  /**
   * Fires due timers until `signal` aborts, sleeping between rounds until the
   * next timer is due or `interval` ms have passed, whichever comes first
   * (so a timer fires within about `interval` of its due time). It keeps up
   * to `limit` timers firing at once, and claims more in the store as soon
   * as half of them have ended, so one slow `onTimeout` does not hold up the
   * others. Several processes may run it at once, and share the work: each
   * claims its own timers (hidden from the other loops for the store's
   * `leaseTtl`, after which the timers of a process that died come back),
   * and each timer still fires once. A user busy with an event is not waited
   * for: their timer is tried again a second later. Once `signal` aborts, it
   * claims nothing more and resolves when the timers in flight have ended
   * (an `onTimeout` that never settles keeps it waiting) and a claim on its
   * way has its answer (at most the store's `commandTimeout`, when Redis
   * does not answer). For bots that stay
   * up (long polling); on serverless, call `runDue` from a schedule.
   *
   * @param options `signal` to stop it, `interval` (1 ms to 2^31 - 1 ms;
   * default 1,000 ms), and `limit`, the most timers firing at once (1 to
   * 100,000; default 100).
   * @throws {RangeError} At once, when `interval` or `limit` is out of
   * range (`TypeError` when not a number).
   * @throws {TypeError} At once, when `signal` is not an `AbortSignal`.
   *
   * @example Beside a long-polling bot
   * ```ts ignore
   * const stop = new AbortController();
   * const timers = nodes.runTimers({ signal: stop.signal });
   * await bot.start({ onStart: () => console.log("running") });
   * stop.abort();
   * await timers;
   * ```
   */
  async runTimers(options: RunTimersOptions = {}): Promise<void> {
    const { signal } = options;
    if (
      signal !== undefined &&
      (signal === null || typeof signal !== "object" ||
        typeof signal.aborted !== "boolean" ||
        typeof signal.addEventListener !== "function")
    ) {
      throw new TypeError(
        `runTimers: signal must be an AbortSignal, got ${
          describeValue(signal)
        }`,
      );
    }
    const limit = roundLimit("runTimers", options.limit);
    const interval = finiteNumber(
      "runTimers: interval",
      options.interval ?? 1_000,
      1,
      MAX_TIMER_MS,
    );
    const clock = this.#store.timing.clock;
    // a window of up to `limit` timers in flight: more are claimed once half
    // of it is free, so that one slow timer does not hold up the others
    const firing = new Set<Promise<void>>();
    // rounds in a row that waited for no timer or socket of the event loop
    let busy = 0;
    while (!signal?.aborted) {
      let wait = interval;
      const room = limit - firing.size;
      if (room * 2 >= limit) {
        try {
          const { now, timers, next } = await this.#claim(room);
          for (const entry of timers) {
            const one: Promise<void> = this.#fireClaimed(entry, now).then(
              () => void firing.delete(one),
              (error: unknown) => {
                firing.delete(one);
                this.#logger.warn(
                  "Cannot fire a due timer; it comes back",
                  error,
                );
              },
            );
            firing.add(one);
          }
          if (timers.length >= room) wait = 0; // more may be due
          else if (next !== undefined) {
            wait = Math.max(0, Math.min(interval, next - clock.now()));
          }
        } catch (error) {
          this.#logger.warn("Cannot fire the due timers; trying again", error);
        }
      }
      // wait for room in the window (a firing always ends), or for the next
      // due timer
      if (firing.size * 2 > limit) await Promise.race(firing);
      else if (wait > 0) {
        await pause(wait, signal);
        busy = 0;
        continue;
      }
      // a store that answers at once and timers due again at once (a
      // timeout() of 0 that enters its own node) would keep the loop in
      // promises alone, and the event loop (the signal's abort among its
      // work) would never run: it gets a turn every few rounds
      if (++busy === BUSY_ROUNDS) {
        busy = 0;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
    await Promise.all(firing);
  }

  /**
   * Claims up to `limit` due timers in the store: hidden from the other
   * loops for as long as a lease, so that a process that dies after claiming
   * blocks its timers no longer than its users.
   */
  async #claim(limit: number): Promise<Claimed & { now: number }> {
    const { clock, leaseTtl } = this.#store.timing;
    const now = clock.now();
    return { now, ...await this.#store.claimTimers(now, limit, leaseTtl) };
  }

  /**
   * Fires one claimed timer under its user's lease, taken without waiting:
   * the timer fired, or `undefined` (a stale entry, a busy user, whose timer
   * is looked at again soon, or a failure, retried later).
   */
  async #fireClaimed(
    entry: DueTimer,
    now: number,
  ): Promise<FiredTimer<Shared, Event, UserId> | undefined> {
    const trace = this.#trace("timeout", entry.userId as UserId);
    let held = false;
    try {
      const done = await this.#queue.run(
        entry.userId,
        (lease) => {
          held = true;
          return this.#fire(lease, entry, now, trace);
        },
        undefined,
        true,
        this.#logger,
      );
      if (done && trace) this.#report(trace, "committed");
      return done;
    } catch (error) {
      if (!held && error instanceof LeaseTimeoutError) {
        // the user is busy (an event, or a slow firing elsewhere): their
        // commit replaces the timer, or it is looked at again soon
        await this.#defer(entry, this.#store.timing.clock.now() + BUSY_RETRY);
        return undefined;
      }
      if (trace) this.#report(trace, "failed", error);
      await this.#retryLater(entry, now, error);
      return undefined;
    }
  }

  /** Fires one due timer under its user's lease, or drops a stale entry. */
  async #fire(
    lease: Lease,
    entry: DueTimer,
    now: number,
    trace: Trace<Event, UserId> | undefined,
  ): Promise<FiredTimer<Shared, Event, UserId> | undefined> {
    if (trace) trace.held = this.#now();
    let current = this.#restore(lease);
    if (isPromise(current)) current = await current;
    if (trace) this.#from(trace, current);
    const armed = current instanceof InvalidStateError
      ? storedTimer(current)
      : armedOf(current);
    if (
      armed?.due === entry.due && armed.due <= now &&
      (current instanceof InvalidStateError ||
        typeof current?.onTimeout !== "function")
    ) {
      // due, and armed by a version of the bot that knows the node: this
      // one does not (a deploy under way), so it is not dropped but put off,
      // for a process that can fire it; a day after it was due, given up
      const why = current instanceof InvalidStateError ? current : new Error(
        `Cannot fire the timer of user "${lease.userId}": node "${
          this.#registry.keyOf(current!)
        }" has no onTimeout() in this version of the bot`,
      );
      if (now - entry.due < UNFIREABLE_FOR) {
        unfireable.add(why);
        throw why;
      }
      this.#logger.warn(
        `Dropped the timer of user "${lease.userId}", due ${
          now - entry.due
        } ms ago: this process cannot fire it, and no other process fired it within a day of its due time`,
        why,
      );
      await this.#unschedule(lease.userId, entry.due);
      return undefined;
    }
    if (
      current === undefined || current instanceof InvalidStateError ||
      armed === undefined || armed.due > now ||
      typeof current.onTimeout !== "function"
    ) {
      // the user moved on since, or the timer is later now: keep the index
      // as the state says
      if (armed !== undefined && armed.due !== entry.due) {
        await this.#store.schedule(lease.userId, armed.due);
      }
      if (armed?.due === entry.due && armed.due > now) {
        await this.#defer(entry, armed.due); // by another process's clock
      } else await this.#unschedule(lease.userId, entry.due);
      return undefined;
    }
    const user = armed.user as UserId;
    if (trace) trace.userId = user;
    let next = current.onTimeout(user, this.#shared);
    if (isPromise(next)) next = await next;
    const key = await this.#enterAndCommit(
      lease,
      next,
      user,
      current,
      "onTimeout",
      trace,
      entry.due,
    );
    return { userId: user, due: armed.due, previous: current, node: next, key };
  }

  /**
   * Enters a node without an event (a move from outside, a timeout), arms
   * its timer and commits it; returns its key.
   */
  async #enterAndCommit(
    lease: Lease,
    node: Node<Shared, Event, UserId>,
    user: UserId,
    replaced: Node<Shared, Event, UserId> | InvalidStateError | undefined,
    from: "onTimeout" | "user(id).to()",
    trace?: Trace<Event, UserId>,
    fired?: number,
  ): Promise<string> {
    const key = this.#keyOf(node, from, replaced);
    if (trace) trace.to = key;
    await node.onEnter(user, this.#shared);
    const armed = node.timeout === undefined
      ? undefined
      : this.#arm(node, key, user);
    const state = await this.#encode(node, key, armed);
    if (trace) trace.committing = this.#now();
    await this.#commit(lease, state, replaced, armed, fired);
    return key;
  }

  /**
   * Puts off a timer whose firing failed: by as long as it is overdue, plus
   * a second (at most 5 minutes). Tried on schedule, that doubles the wait
   * at each failure (1, 2, 4, 8 s...), and it needs no count of failures:
   * the due time, in the index, is the same for every process that claims
   * the timer, so the backoff holds across processes, and a new timer of
   * the user starts afresh.
   */
  async #retryLater(entry: DueTimer, now: number, error: unknown) {
    const overdue = Math.max(0, now - entry.due);
    const delay = Math.min(overdue + 1_000, MAX_BACKOFF);
    // a timer this process cannot fire is reported while its wait grows, then
    // put off quietly until a process that can fires it, or it is dropped
    if (delay < MAX_BACKOFF || !unfireable.has(error as object)) {
      this.#logger.warn(
        `Cannot fire the timer of user "${entry.userId}" (${overdue} ms overdue); trying again in ${delay} ms`,
        error,
      );
    }
    await this.#defer(entry, now + delay);
  }

  /** Has the index look at a timer again at `at`; a failure leaves it claimed. */
  #defer(entry: DueTimer, at: number): Promise<void> {
    return this.#store.deferTimer(entry.userId, entry.due, at).catch(
      (cause: unknown) =>
        this.#logger.warn(
          `Cannot move the timer of user "${entry.userId}"; it is looked at again when its claim ends`,
          cause,
        ),
    );
  }

  /**
   * The user `route` would key an event by: the `userId` option applied to
   * it, checked as `route` checks it. Nothing is read or written. Test kits
   * use it to look at the state an event moves (with grammY's `chatId`, a
   * group's; with `chatUserId`, a member's in that chat), not its sender's.
   *
   * @param event The event.
   * @returns The user id, or `undefined` when the event is not for these
   * `Nodes` (`route` would answer `not-ours`).
   * @throws Whatever the `userId` option throws. {@linkcode TypeError} or
   * {@linkcode RangeError} for an id `route` would refuse (see
   * {@linkcode NodesOptions.userId}).
   *
   * @example The state of a group, keyed by its chat
   * ```ts
   * import assert from "node:assert/strict";
   * import { Node, Nodes } from "@botnodes/core";
   * import { MemoryStore } from "@botnodes/core/testing";
   *
   * type Event = { chat: number; from: number };
   *
   * class Lobby extends Node<null, Event, number, null> {
   *   constructor() {
   *     super(null);
   *   }
   *   onEvent(): Lobby {
   *     return new Lobby();
   *   }
   * }
   *
   * const nodes = new Nodes<null, Event, number>({
   *   store: new MemoryStore(),
   *   nodes: { lobby: Lobby },
   *   start: () => new Lobby(),
   *   shared: null,
   *   userId: (event) => event.chat, // one state per chat
   * });
   * const event = { chat: -42, from: 7 };
   * await nodes.route(event);
   * assert.equal(nodes.userIdOf(event), -42);
   * assert.ok((await nodes.user(-42).node()) instanceof Lobby);
   * assert.equal(await nodes.user(7).node(), undefined);
   * ```
   */
  userIdOf(event: Event): UserId | undefined {
    const userId = this.#userId(event);
    if (userId !== undefined) idKey("user id", userId);
    return userId;
  }

  /**
   * Reads or moves one user from outside a handler (an admin command, a
   * scheduled job, a payment webhook).
   *
   * `to` and `reset` wait behind the user's events, like `route`; called
   * for a user from inside that user's own handler (`onEvent`, `onEnter`),
   * they fail at once instead of waiting for themselves: return the next
   * node from `onEvent` instead, or call them once `route` has returned.
   *
   * @param userId The user; `42` and `"42"` are the same user.
   * @returns The user's handle.
   * @throws {TypeError} When the id is neither a string nor a safe integer.
   * @throws {RangeError} When a string id is longer than 1,024 UTF-16 units.
   *
   * @example Moving a user when their payment arrives
   * ```ts
   * import assert from "node:assert/strict";
   * import { Node, Nodes } from "@botnodes/core";
   * import { MemoryStore } from "@botnodes/core/testing";
   *
   * type Shared = { sent: string[] };
   * type Event = { from: number };
   *
   * class Menu extends Node<Shared, Event, number, null> {
   *   constructor() {
   *     super(null);
   *   }
   *   onEvent(): Menu {
   *     return new Menu();
   *   }
   * }
   * class Paid extends Node<Shared, Event, number, { orderId: string }> {
   *   override onEnter(_user: number, shared: Shared) {
   *     shared.sent.push(`Order ${this.data.orderId} is paid`);
   *   }
   *   onEvent(): Menu {
   *     return new Menu();
   *   }
   * }
   *
   * const shared: Shared = { sent: [] };
   * const nodes = new Nodes<Shared, Event, number>({
   *   store: new MemoryStore(),
   *   nodes: { menu: Menu, paid: Paid },
   *   start: () => new Menu(),
   *   shared,
   *   userId: (event) => event.from,
   * });
   * // the payment webhook, outside any handler
   * await nodes.user(42).to(new Paid({ orderId: "A-17" }));
   * assert.deepEqual(shared.sent, ["Order A-17 is paid"]);
   * assert.ok((await nodes.user(42).node()) instanceof Paid);
   *
   * await nodes.user(42).reset();
   * assert.equal(await nodes.user(42).node(), undefined);
   * ```
   */
  user(userId: UserId): UserHandle<Shared, Event, UserId> {
    const id = idKey("user id", userId);
    return {
      userId,
      node: async () => {
        if (inHook(this.#store, id)) {
          throw new Error(
            `Cannot read the node of user "${id}" from inside onInvalidState for that user: it would run the hook again, forever (use user(id).peek())`,
          );
        }
        const raw = await this.#store.get(id);
        if (raw === undefined) return undefined;
        const node = await this.#registry.decode(id, raw);
        if (!(node instanceof InvalidStateError)) return node;
        // the default hook only reports what route does: nothing to ask
        if (!this.#hookGiven) return undefined;
        const next = await runHook(
          this.#store,
          id,
          () => this.#onInvalidState(node, undefined),
        );
        if (next === undefined || next === null) return undefined;
        // what route would put the user on: a registered node whose data
        // may be stored
        await this.#encode(next, this.#keyOf(next, "onInvalidState"));
        return next;
      },
      peek: async () => {
        const raw = await this.#store.get(id);
        return raw === undefined ? undefined : this.#registry.decode(id, raw);
      },
      to: (node, options) => {
        let from: Set<string> | undefined;
        try {
          from = nodeKeys("user(id).to(node, { from })", options?.from);
        } catch (error) {
          return Promise.reject(error); // as every failure of to: a rejection
        }
        const trace = this.#trace("to", userId);
        const run = this.#queue.run(
          id,
          async (lease) => {
            if (trace) trace.held = this.#now();
            if (from !== undefined) {
              const key = lease.state === undefined
                ? undefined
                : storedKey(lease.state);
              if (key === undefined || !from.has(key)) {
                if (trace && key !== undefined) trace.from = key;
                return false;
              }
            }
            const current = await this.#restore(lease);
            if (trace) this.#from(trace, current);
            await this.#enterAndCommit(
              lease,
              node,
              userId,
              current,
              "user(id).to()",
              trace,
            );
            return true;
          },
          undefined,
          false,
          this.#logger,
        );
        return trace
          ? this.#traced(trace, run, (moved) => moved ? "committed" : "skipped")
          : run;
      },
      reset: () => {
        const trace = this.#trace("reset", userId);
        const run = this.#queue.run(
          id,
          async (lease) => {
            if (trace) trace.held = this.#now();
            if (lease.state === undefined) return;
            const current = await this.#restore(lease);
            if (trace) {
              this.#from(trace, current);
              trace.committing = this.#now();
            }
            await this.#commit(lease, undefined, current);
          },
          undefined,
          false,
          this.#logger,
        );
        return trace ? this.#traced(trace, run) : run;
      },
      aside: () => this.#store.aside(id),
    };
  }

  /**
   * Every user with a stored state, with the node they are on: a snapshot
   * read a page at a time (on Redis, `SCAN` on every master; never `KEYS`),
   * taking no lease and holding one page in memory whatever the number of
   * users. A user stored for the whole iteration is yielded at least once
   * (rarely twice, when Redis resizes its tables meanwhile); one who moves
   * meanwhile may be yielded on either node or not at all. To act on a user,
   * go through `user(id)`, which takes their turn like an event; to move
   * them only if they are still where the snapshot saw them, give `to` a
   * `from`.
   *
   * @param options `on`: only users on these node keys (compared with the
   * stored key, so a key no longer registered can be asked for: its users
   * come with an `InvalidStateError`); `count`: keys looked at per round
   * trip, 1 to 1,000,000 (default 100).
   * @returns The users, in no particular order.
   * @throws {StoreError} From the iteration, when the store failed.
   * @throws {TypeError} From the iteration, when `on` is not an array of
   * strings.
   * @throws {RangeError} From the iteration, when `count` is out of range.
   *
   * @example Messaging everyone on a node about to be removed, then moving them
   * ```ts
   * import assert from "node:assert/strict";
   * import { Node, Nodes } from "@botnodes/core";
   * import { MemoryStore } from "@botnodes/core/testing";
   *
   * type Event = { from: number; text: string };
   * type Shared = { sent: string[] };
   *
   * class Menu extends Node<Shared, Event, number, null> {
   *   constructor() {
   *     super(null);
   *   }
   *   onEvent(_user: number, event: Event): Menu | Survey {
   *     return event.text === "survey" ? new Survey() : new Menu();
   *   }
   * }
   * class Survey extends Menu {} // to be removed in the next version
   *
   * const shared: Shared = { sent: [] };
   * const nodes = new Nodes<Shared, Event, number>({
   *   store: new MemoryStore(),
   *   nodes: { menu: Menu, survey: Survey },
   *   start: () => new Menu(),
   *   shared,
   *   userId: (event) => event.from,
   * });
   * for (const from of [1, 2, 3]) await nodes.route({ from, text: "hi" });
   * for (const from of [1, 3]) await nodes.route({ from, text: "survey" });
   *
   * for await (const { userId } of nodes.users({ on: ["survey"] })) {
   *   // moved only if still on the survey when their turn comes
   *   if (await nodes.user(Number(userId)).to(new Menu(), { from: ["survey"] })) {
   *     shared.sent.push(`${userId}: the survey is over, thank you!`);
   *   }
   * }
   * assert.deepEqual(shared.sent.sort(), [
   *   "1: the survey is over, thank you!",
   *   "3: the survey is over, thank you!",
   * ]);
   * assert.deepEqual((await nodes.countUsers()).nodes, new Map([["menu", 3]]));
   * ```
   */
  async *users(
    options: UsersOptions = {},
  ): AsyncGenerator<ListedUser<Shared, Event, UserId>> {
    const on = nodeKeys("users({ on })", options.on);
    const scan = scanOptions("users", options);
    for await (const { userId, state } of this.#store.scan(scan)) {
      if (userId.length > MAX_ID_LENGTH) continue; // no user(id) reaches it
      const key = storedKey(state);
      if (on !== undefined && (key === undefined || !on.has(key))) continue;
      let node = this.#registry.decode(userId, state);
      if (isPromise(node)) node = await node;
      yield { userId, key, node };
    }
  }

  /**
   * How many users are on each node: a snapshot counted a page at a time,
   * like {@linkcode Nodes.users} (and with its caveats), by the key stored
   * (without restoring the data, so it is cheap, and a key no longer
   * registered is counted too).
   *
   * @param options `count`: keys looked at per round trip (default 100).
   * @returns The counts.
   * @throws {StoreError} When the store failed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Node, Nodes } from "@botnodes/core";
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
   * for (const from of [1, 2]) await nodes.route({ from });
   * assert.deepEqual(await nodes.countUsers(), {
   *   total: 2,
   *   nodes: new Map([["menu", 2]]),
   *   unreadable: 0,
   * });
   * ```
   */
  async countUsers(options: Pick<UsersOptions, "count"> = {}): Promise<
    UserCounts
  > {
    const scan = scanOptions("countUsers", options);
    const counts = new Map<string, number>();
    let total = 0;
    let unreadable = 0;
    for await (const { userId, state } of this.#store.scan(scan)) {
      if (userId.length > MAX_ID_LENGTH) continue; // as users() skips it
      total++;
      const key = storedKey(state);
      if (key === undefined) unreadable++;
      else counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return { total, nodes: counts, unreadable };
  }

  /**
   * The registry key of a node's class, or `undefined` when the class is not
   * registered.
   *
   * @param node A node.
   * @returns Its key in the `nodes` option.
   *
   * @example Naming where a user is
   * ```ts
   * import assert from "node:assert/strict";
   * import { Node, Nodes } from "@botnodes/core";
   * import { MemoryStore } from "@botnodes/core/testing";
   *
   * type Event = { from: number };
   *
   * class Hungry extends Node<null, Event, number, null> {
   *   constructor() {
   *     super(null);
   *   }
   *   onEvent(): Hungry {
   *     return new Hungry();
   *   }
   * }
   *
   * const nodes = new Nodes<null, Event, number>({
   *   store: new MemoryStore(),
   *   nodes: { hungry: Hungry },
   *   start: () => new Hungry(),
   *   shared: null,
   *   userId: (event) => event.from,
   * });
   * await nodes.route({ from: 42 });
   * const node = await nodes.user(42).node();
   * assert.equal(node && nodes.keyOf(node), "hungry");
   * ```
   */
  keyOf(node: Node<Shared, Event, UserId>): string | undefined {
    return this.#registry.keyOf(node);
  }
}

/**
 * The mark of an integration's signal that a node passed its event on (the
 * `pass()` of `@botnodes/core/grammy`): nothing is written, and it is no
 * failure.
 */
const PASS = Symbol.for("@botnodes/core.pass");

/** Whether `error` is a pass signal (see {@linkcode PASS}). */
function passedOn(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { [PASS]?: unknown })[PASS] === true;
}

/** Node keys given as an option (`to`'s `from`, `users`' `on`), checked. */
function nodeKeys(option: string, keys: unknown): Set<string> | undefined {
  if (keys === undefined) return undefined;
  if (
    !Array.isArray(keys) ||
    // a hole is no key either
    Array.from(keys).some((key) => typeof key !== "string")
  ) {
    throw new TypeError(
      `${option}: must be an array of node keys (strings), got ${
        describeValue(keys)
      }`,
    );
  }
  return new Set(keys);
}

/** The most timers one round may take. */
const MAX_LIMIT = 100_000;

/** A round's `limit` option, checked (default 100). */
function roundLimit(call: string, limit: number | undefined): number {
  return wholeNumber(`${call}: limit`, limit ?? 100, 1, MAX_LIMIT);
}

/** The scan options of `users` and `countUsers`, checked. */
function scanOptions(
  call: string,
  options: Pick<UsersOptions, "count">,
): ScanOptions {
  return options.count === undefined ? {} : {
    count: wholeNumber(`${call}: count`, options.count, 1, MAX_SCAN_COUNT),
  };
}

/** The node key a stored state names, or `undefined` when it names none. */
function storedKey(state: string): string | undefined {
  try {
    const stored: unknown = JSON.parse(state);
    const key = (stored as { node?: unknown } | null)?.node;
    return typeof key === "string" ? key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Options of {@linkcode UserHandle.to}.
 *
 * @example Moving the users of a node about to be removed, and only them
 * ```ts
 * import type { MoveOptions } from "@botnodes/core";
 *
 * const options: MoveOptions = { from: ["survey"] };
 * ```
 */
export interface MoveOptions {
  /**
   * Move the user only when they are on one of these node keys (compared
   * with the stored key, so a key no longer registered may be named).
   * Default: from anywhere, and a user without state too.
   */
  readonly from?: readonly string[] | undefined;
}

/**
 * Options of {@linkcode Nodes.users}.
 *
 * @example
 * ```ts
 * import type { UsersOptions } from "@botnodes/core";
 *
 * const options: UsersOptions = { on: ["survey"], count: 500 };
 * ```
 */
export interface UsersOptions {
  /** Only the users on these node keys (as stored). Default: every user. */
  readonly on?: readonly string[] | undefined;
  /** Keys looked at per round trip (Redis `SCAN`'s `COUNT`). Default 100. */
  readonly count?: number | undefined;
}

/**
 * A user as {@linkcode Nodes.users} yields them.
 *
 * @typeParam Shared Your services' type.
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 *
 * @example
 * ```ts ignore
 * for await (const { userId, key, node } of nodes.users()) {
 *   console.log(userId, key, node instanceof InvalidStateError ? node.reason : node.data);
 * }
 * ```
 */
export interface ListedUser<Shared, Event, UserId extends string | number> {
  /**
   * The user id's string form, as stored (`Number(userId)` gives back a
   * number id for `user(id)`).
   */
  readonly userId: string;
  /** The node key stored, or `undefined` when the state names none. */
  readonly key: string | undefined;
  /** The node restored, or why it could not be (as `user(id).peek()`). */
  readonly node: Node<Shared, Event, UserId> | InvalidStateError;
}

/**
 * What {@linkcode Nodes.countUsers} returns.
 *
 * @example
 * ```ts
 * import type { UserCounts } from "@botnodes/core";
 *
 * const counts: UserCounts = { total: 3, nodes: new Map([["menu", 3]]), unreadable: 0 };
 * ```
 */
export interface UserCounts {
  /** Users with a stored state. */
  readonly total: number;
  /** Users per node key stored (registered or not). */
  readonly nodes: ReadonlyMap<string, number>;
  /** Users whose state names no node key (not a botnodes state). */
  readonly unreadable: number;
}

/** A transition being observed: what is known so far, and its times. */
interface Trace<Event, UserId> {
  readonly kind: TransitionKind;
  userId: UserId | undefined;
  eventId: string | undefined;
  readonly event: Event | undefined;
  from: string | undefined;
  to: string | undefined;
  invalid: InvalidStateReason | undefined;
  /** When the call began, the lease was held, the commit began; -1: not yet. */
  readonly start: number;
  held: number;
  committing: number;
}

/** The longest user or event id, in UTF-16 code units. */
const MAX_ID_LENGTH = 1_024;

/**
 * The key of a user or event id: its string form (`42` and `"42"` are one
 * user). Refuses what cannot be meant as an id.
 */
function idKey(what: "user id" | "event id", id: unknown): string {
  const a = what === "event id" ? "an" : "a";
  if (typeof id === "string") {
    if (id.length > MAX_ID_LENGTH) {
      throw new RangeError(
        `Cannot use ${a} ${what} of ${id.length} UTF-16 units: the limit is ${MAX_ID_LENGTH}`,
      );
    }
    return id;
  }
  if (typeof id === "number") {
    if (!Number.isSafeInteger(id)) {
      throw new TypeError(
        `Cannot use ${what} "${id}": a number id must be a safe integer`,
      );
    }
    return String(id);
  }
  throw new TypeError(
    `Cannot use ${a} ${what} of type "${
      id === null ? "null" : typeof id
    }": it must be a string or a number`,
  );
}

/** The longest timeout a node may ask for: ten years, in ms. */
const MAX_TIMEOUT = 10 * 366 * 86_400_000;
/** How long a timer whose user was busy waits before it is looked at again. */
const BUSY_RETRY = 1_000;
/** The longest a failed timer is put off, in ms. */
const MAX_BACKOFF = 300_000;
/**
 * How long after its due time a timer that this process cannot fire (its
 * state names a node this version does not know, or whose data it cannot
 * read, or which has no `onTimeout` here) is put off, for a process of the
 * version that armed it, before it is dropped: a day, so that a deploy after
 * a long outage does not drop it.
 */
const UNFIREABLE_FOR = 86_400_000;
/** The errors of timers this process cannot fire (see `UNFIREABLE_FOR`). */
const unfireable = new WeakSet<object>();

/** How many rounds of `runTimers` may run without giving the event loop a turn. */
const BUSY_ROUNDS = 16;

/** Resolves after `ms` real ms, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Options of {@linkcode Nodes.runDue}.
 *
 * @example
 * ```ts
 * import type { RunDueOptions } from "@botnodes/core";
 *
 * const options: RunDueOptions = { limit: 500 };
 * ```
 */
export interface RunDueOptions {
  /** The most timers to fire in one call. Default 100. */
  readonly limit?: number | undefined;
}

/**
 * Options of {@linkcode Nodes.runTimers}.
 *
 * @example
 * ```ts
 * import type { RunTimersOptions } from "@botnodes/core";
 *
 * const options: RunTimersOptions = { interval: 500, signal: AbortSignal.timeout(60_000) };
 * ```
 */
export interface RunTimersOptions extends RunDueOptions {
  /** Stops the loop (after the round in progress). */
  readonly signal?: AbortSignal | undefined;
  /** The longest sleep between rounds, in ms. Default 1,000. */
  readonly interval?: number | undefined;
}

/**
 * A timer that `runDue` fired.
 *
 * @typeParam Shared Your services' type.
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 *
 * @example
 * ```ts ignore
 * for (const fired of await nodes.runDue()) {
 *   console.log(fired.userId, "timed out, now on", fired.key);
 * }
 * ```
 */
export interface FiredTimer<Shared, Event, UserId extends string | number> {
  /** The user whose timer fired. */
  readonly userId: UserId;
  /** When it was due, in ms of the store's clock. */
  readonly due: number;
  /** The node that timed out. */
  readonly previous: Node<Shared, Event, UserId>;
  /** The node the user is on now (entered and committed). */
  readonly node: Node<Shared, Event, UserId>;
  /** The registry key of `node`. */
  readonly key: string;
}

/**
 * What a value that is no node at all is (`undefined`, a primitive, a class
 * or function, a plain object or array), or `undefined` for an instance of
 * some class: a node, registered or not.
 */
function notANode(value: unknown): string | undefined {
  if (typeof value === "function") {
    return /^class\b/.test(Function.prototype.toString.call(value))
      ? `the class ${className(value)}`
      : "a function";
  }
  // a text is not shown: it may be what a user wrote
  if (typeof value === "string") {
    return `a string (${value.length} characters)`;
  }
  if (value === null || typeof value !== "object") return describeValue(value);
  if (Array.isArray(value)) return "an array";
  if (typeof (value as { then?: unknown }).then === "function") {
    return "a promise (await it)";
  }
  const proto = Object.getPrototypeOf(value);
  if (proto === null || proto === Object.prototype) return "a plain object";
  const builtIn = BUILT_INS.find((type) => value instanceof type);
  return builtIn === undefined ? undefined : `a ${builtIn.name}`;
}

/** A class's name as code would write it, or "(anonymous)". */
function className(cls: unknown): string {
  const name = (cls as { name?: unknown }).name;
  return typeof name === "string" && name !== "" ? name : "(anonymous)";
}

/** Classes of the language whose instances are no node. */
const BUILT_INS = [
  String,
  Number,
  Boolean,
  Date,
  RegExp,
  Map,
  Set,
  WeakMap,
  WeakSet,
  Error,
  ArrayBuffer,
  DataView,
  Uint8Array,
];
