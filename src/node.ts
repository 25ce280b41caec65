/**
 * The `Node` base class: where a user is in a conversation.
 *
 * @module
 */

import type { MaybePromise } from "./maybe_promise.ts";
import type { StandardSchemaV1 } from "./standard_schema.ts";

/**
 * A place a user can be in a conversation: a small class with typed `data`,
 * `onEnter` (runs when the user arrives) and `onEvent` (handles one event and
 * returns the next node).
 *
 * Only `data` is stored, as JSON, under the key the class is registered with
 * in `Nodes`. A node restored from the store is rebuilt **without calling its
 * constructor**: its `data` is set to the stored value after the class's
 * `static schema` has validated it, and every other field (set in the
 * constructor or by a field initializer) is `undefined`. Keep what a node needs
 * across events in `data`; fields outside it are for `onEnter` of a freshly
 * built node only (like the greeting name of the start node below).
 *
 * Returning a node from `onEvent` always enters it: `onEnter` runs even when it
 * is a node of the same class (this is how "stay here and say it again" reads).
 *
 * @typeParam Shared What every handler receives: your bot's shared services.
 * @typeParam Event One incoming event (a grammY `Context`, a message, ...).
 * @typeParam UserId The type of the user ids.
 * @typeParam Data The stored data of this node: what JSON carries as is
 * (plain objects, arrays, strings, finite numbers, booleans, `null`).
 *
 * @example A start node that greets a new user by name
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { Node, Nodes } from "@botnodes/core";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * type Shared = { send(userId: number, text: string): Promise<void> };
 * type Event = { userId: number; text: string; name: string };
 *
 * class Start extends Node<Shared, Event, number, { greeted: number }> {
 *   static override schema = z.object({ greeted: z.number() });
 *   // not stored: only set when the node is built with `new`
 *   name: string | undefined;
 *
 *   constructor(name?: string, greeted = 0) {
 *     super({ greeted });
 *     this.name = name;
 *   }
 *
 *   override async onEnter(userId: number, shared: Shared) {
 *     await shared.send(userId, this.name ? `Hello, ${this.name}!` : "Main menu");
 *   }
 *
 *   onEvent(_userId: number, event: Event) {
 *     return new Start(event.name, this.data.greeted + 1);
 *   }
 * }
 *
 * const sent: string[] = [];
 * const nodes = new Nodes<Shared, Event, number>({
 *   store: new MemoryStore(),
 *   nodes: { start: Start },
 *   start: () => new Start(),
 *   shared: {
 *     send: async (_userId, text) => {
 *       sent.push(text);
 *     },
 *   },
 *   userId: (event) => event.userId,
 * });
 * await nodes.route({ userId: 7, text: "/start", name: "Ann" });
 * await nodes.route({ userId: 7, text: "hi", name: "Ann" });
 * assert.deepEqual(sent, ["Main menu", "Hello, Ann!"]);
 *
 * // restored from the store: `data` is back, the constructor did not run
 * const restored = await nodes.user(7).node();
 * assert.ok(restored instanceof Start);
 * assert.deepEqual(restored.data, { greeted: 1 });
 * assert.equal(restored.name, undefined);
 * ```
 */
export abstract class Node<
  Shared = unknown,
  Event = unknown,
  UserId extends string | number = string | number,
  Data = unknown,
> {
  /**
   * Validates the node's `data` when it is restored from the store and before
   * it is written. Any Standard Schema works (zod 4, valibot, ArkType). The
   * validated output becomes `data` on restore, so defaults in the schema
   * upgrade data stored by an older version of the bot.
   *
   * What is stored is the schema's output (unknown keys it strips are not
   * stored), and only when it would come back equal: data JSON cannot carry
   * (a `Date`, a `Map`, a `BigInt`, `NaN`, ...) or a transform that changes
   * a value (it would change it again on every restore) is refused with
   * `NodeDataError` before anything is written. A node class without a
   * schema stores its data unchecked but for that JSON check.
   */
  static schema?: StandardSchemaV1;

  /** The node's data: the only part of a node that is stored. */
  data: Data;

  /**
   * Builds a node with its data.
   *
   * @param data The node's data; must pass the class's schema and come back
   * equal from JSON (see {@linkcode Node.schema}).
   */
  constructor(data: Data) {
    this.data = data;
  }

  /**
   * Runs when the user arrives on this node, before the transition is
   * committed. If it throws, nothing is written and the user stays on the node
   * they were on. The default does nothing.
   *
   * @param userId The user who arrives.
   * @param shared The `shared` option of `Nodes`: your services.
   * @param event The event that brought the user here (with grammY, the
   * update's `ctx`, so `ctx.reply`, menus and i18n work from `onEnter`);
   * `undefined` when no event did: `user(id).to()` and timeouts.
   */
  onEnter(
    _userId: UserId,
    _shared: Shared,
    _event?: Event | undefined,
  ): MaybePromise<void> {}

  /**
   * Handles one event for a user on this node and returns the node to go to
   * (which is then entered). If it throws, nothing is written and the user
   * stays here.
   *
   * @param userId The user the event is from.
   * @param event The event.
   * @param shared The `shared` option of `Nodes`: your services.
   * @returns The next node.
   */
  abstract onEvent(
    userId: UserId,
    event: Event,
    shared: Shared,
  ): MaybePromise<Node<Shared, Event, UserId>>;

  /**
   * Optional: after how many ms from entering this node it times out
   * ("Are you still there?"), computed from `this.data` when the node is
   * entered (so reminders can escalate); `undefined` for no timeout. A node
   * class that has `timeout` must have `onTimeout`. Entering any node
   * replaces the user's timer; `reset()` removes it. Due timers are fired by
   * `nodes.runDue()` (a scheduler) or `nodes.runTimers()` (a loop), from any
   * process, once per arming. Staying on a node enters it again, and so
   * restarts its timeout: for a deadline that staying does not push back,
   * keep the deadline in the data and return `deadline - now`.
   *
   * @param now The time on the store's clock, in ms since the epoch (the
   * `FakeClock` in tests), when the node is entered.
   * @returns The delay in ms (a whole or fractional number from 0 to ten
   * years), or `undefined`.
   */
  timeout?(now: number): number | undefined;

  /**
   * Optional: runs when this node's timeout is due, under the user's lease
   * like an event, and returns the node to go to (which is then entered and
   * committed). If it throws, nothing is written and the timer is tried again
   * later (backing off).
   *
   * @param userId The user whose timer fired.
   * @param shared The `shared` option of `Nodes`: your services.
   * @returns The next node.
   */
  onTimeout?(
    userId: UserId,
    shared: Shared,
  ): MaybePromise<Node<Shared, Event, UserId>>;
}

/**
 * A registrable node class: a class extending `Node`, with its optional
 * `static schema`.
 *
 * @typeParam Shared What every handler receives: your services.
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 *
 * @example Typing a registry
 * ```ts
 * import assert from "node:assert/strict";
 * import { Node, type NodeClass, Nodes } from "@botnodes/core";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * type Event = { from: number };
 *
 * class Start extends Node<null, Event, number, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   onEvent(): Start {
 *     return new Start();
 *   }
 * }
 *
 * const registry: Record<string, NodeClass<null, Event, number>> = {
 *   start: Start,
 * };
 * const nodes = new Nodes<null, Event, number>({
 *   store: new MemoryStore(),
 *   nodes: registry,
 *   start: () => new Start(),
 *   shared: null,
 *   userId: (event) => event.from,
 * });
 * assert.equal(nodes.keyOf(new Start()), "start");
 * ```
 */
export type NodeClass<
  Shared = unknown,
  Event = unknown,
  UserId extends string | number = string | number,
> =
  // deno-lint-ignore no-explicit-any
  & (abstract new (...args: any[]) => Node<Shared, Event, UserId>)
  & { schema?: StandardSchemaV1 | undefined };
