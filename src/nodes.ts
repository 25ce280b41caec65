/**
 * `Nodes`: the manager that routes events to the node each user is on.
 *
 * @module
 */

import {
  InvalidStateError,
  StateTooLargeError,
  UnregisteredNodeError,
} from "./errors.ts";
import { isPromise, type MaybePromise } from "./maybe_promise.ts";
import type { Node, NodeClass } from "./node.ts";
import { Registry } from "./registry.ts";
import type { Lease, StateStore } from "./store.ts";
import { UserQueue } from "./user_queue.ts";

/**
 * Where botnodes reports what it handled on its own (invalid stored state, a
 * lease that could not be released). `console` fits.
 *
 * @example Sending reports to your own logger
 * ```ts
 * import type { Logger } from "@botnodes/core";
 *
 * const logger: Logger = { warn: (message) => console.warn(`[bot] ${message}`) };
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
 * @example Sending users with outdated state to a dedicated node
 * ```ts ignore
 * const onInvalidState: InvalidStateHook<Shared, Event, number> = (error) =>
 *   error.reason === "invalid-data" ? new Outdated() : undefined;
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
 * ```ts ignore
 * const options: NodesOptions<Shared, Message, number> = {
 *   store: new MemoryStore(),
 *   nodes: { start: Start, hungry: Hungry },
 *   start: () => new Start(),
 *   shared: { send },
 *   userId: (message) => message.from?.id,
 * };
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
   * again (a webhook retry): grammY's `shared.update.update_id`. A redelivered
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
   * refused with `StateTooLargeError` before anything is written.
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
 * ```ts ignore
 * const result = await nodes.route(event);
 * if (result.handled) console.log(result.userId, "is now on", result.key);
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
 * ```ts ignore
 * const node = await nodes.user(42).node();
 * if (node instanceof Hungry) console.log(node.data.order);
 * ```
 */
export interface UserHandle<Shared, Event, UserId extends string | number> {
  /** The user. */
  readonly userId: UserId;

  /**
   * The node the user is on, restored from the store, or `undefined` when the
   * user has no state. Takes no lease: a snapshot. Invalid stored state goes
   * through the `onInvalidState` hook (nothing is written here).
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
   * user's pending events in this process.
   *
   * Called from inside this user's own handler it fails at once with an
   * `Error` (it would wait for the handler that awaits it); where
   * `AsyncLocalStorage` is missing (a runtime without
   * `process.getBuiltinModule`) it fails with `LeaseTimeoutError` after the
   * store's `wait` instead.
   *
   * @param node The node to put the user on.
   * @throws {UnregisteredNodeError} When the node's class is not registered.
   * @throws {NodeDataError} When the node's data may not be stored.
   * @throws {LeaseTimeoutError} When the user stayed busy for the store's
   * `wait`.
   */
  to(node: Node<Shared, Event, UserId>): Promise<void>;

  /**
   * Deletes the user's state: their next event enters the start node. Waits
   * behind the user's pending events, and fails at once from inside this
   * user's own handler, like {@linkcode UserHandle.to}.
   */
  reset(): Promise<void>;

  /**
   * The raw stored values that could not be restored and were replaced,
   * newest first: nothing unreadable is ever lost.
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
 * shared.replies; // ["Hungry?", "What will it be?"]
 * ```
 */
export class Nodes<Shared, Event, UserId extends string | number> {
  readonly #store: StateStore;
  readonly #registry: Registry<Shared, Event, UserId>;
  readonly #start: (event: Event) => MaybePromise<Node<Shared, Event, UserId>>;
  readonly #shared: Shared;
  readonly #userId: (event: Event) => UserId | undefined;
  readonly #onInvalidState: InvalidStateHook<Shared, Event, UserId>;
  readonly #logger: Logger;
  readonly #eventId:
    | ((event: Event) => string | number | undefined)
    | undefined;
  readonly #maxStateBytes: number;
  /** Runs each user's events one at a time, with their lease. */
  readonly #queue: UserQueue;

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
    this.#registry = new Registry(options.nodes);
    this.#start = options.start;
    this.#shared = options.shared;
    this.#userId = options.userId;
    this.#logger = options.logger ?? console;
    this.#queue = new UserQueue(store, this.#logger);
    this.#eventId = options.eventId;
    this.#maxStateBytes = options.maxStateBytes ?? 1_048_576;
    if (!(this.#maxStateBytes > 0)) {
      throw new RangeError(
        `Cannot create Nodes: option "maxStateBytes" must be positive, got ${this.#maxStateBytes}`,
      );
    }
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
   * (see {@linkcode NodesOptions.userId}). An `Error` when called for a user
   * from inside that user's own handler, where it would wait for itself.
   */
  readonly route = (
    event: Event,
  ): Promise<RouteResult<Shared, Event, UserId>> => {
    let userId: UserId | undefined;
    let eventId: string | number | undefined;
    let key: string;
    try {
      userId = this.#userId(event);
      if (userId === undefined) {
        return Promise.resolve({ handled: false, reason: "not-ours" });
      }
      key = userKey(userId);
      eventId = this.#eventId?.(event);
    } catch (error) {
      return Promise.reject(error);
    }
    const id = userId;
    return this.#queue.run(
      key,
      (lease) => this.#transition(lease, id, event),
      eventId === undefined ? undefined : String(eventId),
    );
  };

  /** One event's transition, under the user's lease. */
  async #transition(
    lease: Lease,
    id: UserId,
    event: Event,
  ): Promise<RouteResult<Shared, Event, UserId>> {
    if (lease.duplicate) {
      return { handled: false, reason: "duplicate", userId: id };
    }
    // each step awaits only what is really a promise: this is the hot path
    let current = this.#restore(lease);
    if (isPromise(current)) current = await current;
    let next: MaybePromise<Node<Shared, Event, UserId> | undefined | void>;
    if (current instanceof InvalidStateError) {
      next = this.#onInvalidState(current, event);
      if (isPromise(next)) next = await next;
      next ??= this.#start(event);
    } else if (current === undefined) {
      next = this.#start(event);
    } else {
      next = current.onEvent(id, event, this.#shared);
    }
    if (isPromise(next)) next = await next;
    const key = this.#keyOf(next as Node<Shared, Event, UserId>);
    const node = next as Node<Shared, Event, UserId>;
    const entered = node.onEnter(id, this.#shared);
    if (isPromise(entered)) await entered;
    let state = this.#encode(node, key);
    if (isPromise(state)) state = await state;
    await this.#commit(lease, state, current);
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

  /** The registry key of a node's class; refuses an unregistered one. */
  #keyOf(node: Node<Shared, Event, UserId>): string {
    const key = this.#registry.keyOf(node);
    if (key === undefined) {
      const name = (node as { constructor?: { name?: string } } | null)
        ?.constructor?.name ?? String(node);
      throw new UnregisteredNodeError(name, this.#registry.keys);
    }
    return key;
  }

  /** Encodes a node for the store, within the size limit. */
  #encode(
    node: Node<Shared, Event, UserId>,
    key: string,
  ): string | Promise<string> {
    const state = this.#registry.encode(node, key);
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

  /** Commits, keeping an invalid state being replaced aside. */
  #commit(
    lease: Lease,
    state: string | undefined,
    replaced: Node<Shared, Event, UserId> | InvalidStateError | undefined,
  ): Promise<void> {
    return this.#queue.commit(
      lease,
      state,
      replaced instanceof InvalidStateError ? { aside: replaced.raw } : {},
    );
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
   * ```ts ignore
   * await nodes.user(42).to(new Paid(orderId));
   * ```
   */
  user(userId: UserId): UserHandle<Shared, Event, UserId> {
    const id = userKey(userId);
    return {
      userId,
      node: async () => {
        const raw = await this.#store.get(id);
        if (raw === undefined) return undefined;
        const node = await this.#registry.decode(id, raw);
        if (!(node instanceof InvalidStateError)) return node;
        return (await this.#onInvalidState(node, undefined)) ?? undefined;
      },
      peek: async () => {
        const raw = await this.#store.get(id);
        return raw === undefined ? undefined : this.#registry.decode(id, raw);
      },
      to: (node) =>
        this.#queue.run(id, async (lease) => {
          const key = this.#keyOf(node);
          await node.onEnter(userId, this.#shared);
          const state = await this.#encode(node, key);
          await this.#commit(lease, state, await this.#restore(lease));
        }),
      reset: () =>
        this.#queue.run(id, async (lease) => {
          if (lease.state === undefined) return;
          await this.#commit(lease, undefined, await this.#restore(lease));
        }),
      aside: () => this.#store.aside(id),
    };
  }

  /**
   * The registry key of a node's class, or `undefined` when the class is not
   * registered.
   *
   * @param node A node.
   * @returns Its key in the `nodes` option.
   *
   * @example Naming where a user is
   * ```ts ignore
   * const node = await nodes.user(42).node();
   * console.log(node && nodes.keyOf(node)); // "hungry"
   * ```
   */
  keyOf(node: Node<Shared, Event, UserId>): string | undefined {
    return this.#registry.keyOf(node);
  }
}

/** The longest user id, in UTF-16 code units. */
const MAX_ID_LENGTH = 1_024;

/**
 * The key of a user id: its string form (`42` and `"42"` are one user).
 * Refuses what cannot be meant as an id.
 */
function userKey(id: unknown): string {
  if (typeof id === "string") {
    if (id.length > MAX_ID_LENGTH) {
      throw new RangeError(
        `Cannot use a user id of ${id.length} UTF-16 units: the limit is ${MAX_ID_LENGTH}`,
      );
    }
    return id;
  }
  if (typeof id === "number") {
    if (!Number.isSafeInteger(id)) {
      throw new TypeError(
        `Cannot use user id ${id}: a number id must be a safe integer`,
      );
    }
    return String(id);
  }
  throw new TypeError(
    `Cannot use a user id of type "${
      id === null ? "null" : typeof id
    }": it must be a string or a number`,
  );
}
