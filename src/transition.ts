/**
 * What `Nodes` reports to its observers: one {@linkcode Transition} per
 * outcome of `route`, `user(id).to`, `user(id).reset` and a fired timer.
 *
 * @module
 */

import type { InvalidStateReason } from "./errors.ts";

/**
 * What started a transition: an event (`route`), `user(id).to`,
 * `user(id).reset`, or a timer that fired (`runDue`).
 *
 * @example
 * ```ts
 * import type { TransitionKind } from "@botnodes/core";
 *
 * const kinds: TransitionKind[] = ["event", "to", "reset", "timeout"];
 * ```
 */
export type TransitionKind = "event" | "to" | "reset" | "timeout";

/**
 * How a transition ended: `committed` (the new state is stored; for a
 * `reset` of a user without state, nothing was to be written), `duplicate`
 * (the event was handled before: nothing ran), `not-ours` (`userId`
 * returned `undefined`: nothing was read), `skipped` (a `user(id).to(node,
 * { from })` found the user on another node, or without state: nothing was
 * written), `passed` (the node passed the event on with the `pass()` of
 * `@botnodes/core/grammy`: nothing was written, later handlers get it) or
 * `failed` (nothing was written; `error` says why).
 *
 * @example
 * ```ts
 * import type { TransitionOutcome } from "@botnodes/core";
 *
 * const outcome: TransitionOutcome = "duplicate";
 * ```
 */
export type TransitionOutcome =
  | "committed"
  | "duplicate"
  | "not-ours"
  | "skipped"
  | "passed"
  | "failed";

/**
 * One transition, as `Nodes` reports it to the listeners given to
 * `nodes.observe()`: who, what started it, the node keys before and after,
 * how it ended and where the time went.
 *
 * Times are in ms: on the store's clock when it is not the system clock (a
 * `FakeClock` makes them exact in tests), else from `performance.now()`.
 *
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 *
 * @example A transition as a listener receives it
 * ```ts
 * import type { Transition } from "@botnodes/core";
 *
 * const seen: Transition<{ text: string }, number> = {
 *   kind: "event",
 *   outcome: "committed",
 *   userId: 42,
 *   eventId: "1001",
 *   event: { text: "Yes" },
 *   from: "start",
 *   to: "hungry",
 *   leaseWait: 0.4,
 *   handlerTime: 1.2,
 *   storeTime: 0.3,
 *   duration: 1.9,
 * };
 * ```
 */
export interface Transition<Event, UserId extends string | number> {
  /** What started it. */
  readonly kind: TransitionKind;
  /** How it ended. */
  readonly outcome: TransitionOutcome;
  /**
   * The user, as given (`userId(event)`, `user(id)`, or the id a timer was
   * armed with; an id `route` refused, such as `1.5`, too); `undefined` for
   * `not-ours`, or when `userId` threw.
   */
  readonly userId: UserId | undefined;
  /** The event's id (the `eventId` option), as a string, if any. */
  readonly eventId?: string | undefined;
  /** The event, for `kind: "event"`. */
  readonly event?: Event | undefined;
  /**
   * The key of the node the user was on; `undefined` for a user without
   * state, with unreadable state (see `invalid`), for a duplicate, or when
   * the transition failed before the state was read.
   */
  readonly from?: string | undefined;
  /**
   * The key of the node the user is on afterwards (or, for `failed`, was
   * going to when it failed); `undefined` after a `reset`, for a duplicate,
   * or when it failed before the next node was known.
   */
  readonly to?: string | undefined;
  /**
   * Set when the stored state could not be restored: it was kept aside
   * (unless `onInvalidState` threw) and the user was handled as the hook
   * said.
   */
  readonly invalid?: InvalidStateReason | undefined;
  /** What was thrown, for `failed`. */
  readonly error?: unknown;
  /**
   * From the call until the user's lease was held: the wait behind the
   * user's earlier calls in this process plus the store's `begin` (one
   * round trip when nobody else holds the user). 0 for `not-ours`.
   */
  readonly leaseWait: number;
  /**
   * In the handlers (`start`, `onEvent`, `onTimeout`, `onInvalidState`,
   * `onEnter`) and encoding the new state.
   */
  readonly handlerTime: number;
  /** In the store's commit (and the timer index), after the handlers. */
  readonly storeTime: number;
  /** From the call until the outcome. */
  readonly duration: number;
}

/**
 * Receives each {@linkcode Transition} of a `Nodes`, after its outcome and
 * before the call that made it returns. It must not throw: what it throws
 * (or a promise it returns rejects with) goes to the `logger` and never
 * changes the transition.
 *
 * @typeParam Event The event type.
 * @typeParam UserId The type of the user ids.
 *
 * @example Logging failed transitions
 * ```ts
 * import type { TransitionListener } from "@botnodes/core";
 *
 * const listener: TransitionListener<unknown, number> = (t) => {
 *   if (t.outcome === "failed") console.error(t.userId, t.from, t.error);
 * };
 * ```
 */
export type TransitionListener<Event, UserId extends string | number> = (
  transition: Transition<Event, UserId>,
) => void | Promise<void>;
