/**
 * botnodes: persistent, typed, per-user conversation state for chat bots.
 *
 * A user always sits on a {@linkcode Node}: a small class with typed `data`,
 * `onEnter` and `onEvent`. {@linkcode Nodes} routes each event to the user's
 * node and commits the transition atomically in a {@linkcode StateStore}
 * (Redis in production, `MemoryStore` from `@botnodes/core/testing` in tests).
 *
 * This module is runtime-neutral and imports neither grammY nor a Redis
 * client.
 *
 * @example A counter bot on the in-memory store
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { Node, Nodes } from "@botnodes/core";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * type Event = { from: number; text: string };
 * type Shared = { say(to: number, text: string): void };
 *
 * class Counter extends Node<Shared, Event, number, { count: number }> {
 *   static override schema = z.object({ count: z.number() });
 *   override onEnter(user: number, shared: Shared) {
 *     shared.say(user, `count: ${this.data.count}`);
 *   }
 *   onEvent(): Counter {
 *     return new Counter({ count: this.data.count + 1 });
 *   }
 * }
 *
 * const said: string[] = [];
 * const nodes = new Nodes<Shared, Event, number>({
 *   store: new MemoryStore(),
 *   nodes: { counter: Counter },
 *   start: () => new Counter({ count: 0 }),
 *   shared: { say: (to, text) => said.push(`${to}: ${text}`) },
 *   userId: (event) => event.from,
 * });
 * await nodes.route({ from: 1, text: "hi" });
 * await nodes.route({ from: 1, text: "again" });
 * assert.deepEqual(said, ["1: count: 0", "1: count: 1"]);
 * ```
 *
 * @module
 */

// Commonly used
export { Node, type NodeClass } from "./src/node.ts";
export {
  type FiredTimer,
  type InvalidStateHook,
  type ListedUser,
  type Logger,
  type MoveOptions,
  Nodes,
  type NodesOptions,
  type RouteResult,
  type RunDueOptions,
  type RunTimersOptions,
  type UserCounts,
  type UserHandle,
  type UsersOptions,
} from "./src/nodes.ts";

// Observing
export type {
  Transition,
  TransitionKind,
  TransitionListener,
  TransitionOutcome,
} from "./src/transition.ts";

// Errors
export {
  BotnodesError,
  InvalidStateError,
  type InvalidStateReason,
  LeaseLostError,
  type LeaseLostReason,
  LeaseTimeoutError,
  NodeDataError,
  type NodeDataErrorOptions,
  type NodeDataReason,
  StateTooLargeError,
  StoreError,
  type StoreOperation,
  UnregisteredNodeError,
} from "./src/errors.ts";

// Stores
export {
  type BeginOptions,
  type Claimed,
  type Clock,
  type CommitOptions,
  type DueTimer,
  type Lease,
  type ScanOptions,
  type StateStore,
  type StoredUser,
  type StoreOptions,
  type StoreTiming,
  systemClock,
} from "./src/store.ts";

export {
  type RedisLike,
  RedisStore,
  type RedisStoreOptions,
} from "./src/redis_store.ts";

// Types
export type { MaybePromise } from "./src/maybe_promise.ts";
export type { StandardSchemaV1 } from "./src/standard_schema.ts";
