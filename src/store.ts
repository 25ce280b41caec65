/**
 * The contract between `Nodes` and a state store.
 *
 * @module
 */

import { MAX_TIMER_MS } from "./options.ts";

/**
 * A user's lease, returned by {@linkcode StateStore.begin}: while it is held,
 * no other handler (in this process or another) can begin for the same user.
 *
 * @example What a store hands back
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * const store = new MemoryStore();
 * const lease = await store.begin("42");
 * assert.equal(lease.userId, "42");
 * assert.equal(lease.state, undefined); // a new user
 * await store.release(lease);
 * ```
 */
export interface Lease {
  /** The user the lease is for. */
  readonly userId: string;
  /** A token unique to this lease; only its holder can commit or release it. */
  readonly token: string;
  /** The stored state when the lease was taken; `undefined` for none. */
  readonly state: string | undefined;
  /**
   * The version of that state, opaque to everyone but the store; a commit is
   * fenced by it.
   */
  readonly version: string | undefined;
  /**
   * The event this lease was taken for (see {@linkcode BeginOptions}); the
   * commit remembers it.
   */
  readonly eventId?: string | undefined;
  /**
   * `true` when that event was already committed for this user: a
   * redelivery. The store then holds no lease: there is nothing to commit or
   * release.
   */
  readonly duplicate?: boolean | undefined;
}

/**
 * Options of {@linkcode StateStore.begin}.
 *
 * @example Beginning for a Telegram update
 * ```ts
 * import type { BeginOptions } from "@botnodes/core";
 *
 * const options: BeginOptions = { eventId: String(123456789) };
 * ```
 */
export interface BeginOptions {
  /**
   * The id of the event the transition is for. When the user's recent
   * committed events include it, `begin` returns a lease with
   * `duplicate: true` and takes nothing; otherwise the commit of this lease
   * remembers the id, in the same atomic write as the state.
   */
  readonly eventId?: string | undefined;
  /**
   * How long to wait for a lease held by another handler, in ms, instead of
   * the store's `wait` option; `0` tries once and throws
   * `LeaseTimeoutError` at once when the lease is taken (what a timer loop
   * does, so that one busy user does not hold up its round).
   */
  readonly wait?: number | undefined;
}

/**
 * Options of {@linkcode StateStore.commit}.
 *
 * @example Keeping an unreadable state aside while replacing it
 * ```ts
 * import type { CommitOptions } from "@botnodes/core";
 *
 * const options: CommitOptions = { aside: "{not json" };
 * ```
 */
export interface CommitOptions {
  /**
   * A raw value to keep aside in the same atomic write (the unreadable state
   * being replaced), so that it is never lost. A store keeps the newest
   * {@linkcode ASIDE_LIMIT} (16) such values of a user, also when the commit
   * deletes the state.
   */
  readonly aside?: string | undefined;
  /**
   * Keep the lease after the commit instead of releasing it: the caller
   * releases it (`release`) once it has done what must happen before
   * anyone else may take the user (`Nodes` takes a replaced timer out of
   * the index of timers then, so that no other process can arm the same
   * timer again before it is gone).
   */
  readonly keep?: boolean | undefined;
}

/**
 * Where user state lives: a store gives per-user mutual exclusion across
 * processes (a lease with a time to live) and fencing (a commit whose lease
 * expired while the state was changed by someone else is refused).
 *
 * The protocol of one transition is `begin` → (handlers run) → `commit`, or
 * `release` when nothing is to be written. Every store in botnodes passes the
 * same contract test suite.
 *
 * @example A transition by hand (what `Nodes` does for you)
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * const store = new MemoryStore();
 * const lease = await store.begin("42");
 * await store.commit(lease, JSON.stringify({ hello: "world" }));
 * assert.equal(await store.get("42"), '{"hello":"world"}');
 * ```
 */
export interface StateStore {
  /**
   * Reads a user's state without taking the lease.
   *
   * @param userId The user.
   * @returns The stored state, or `undefined` for none.
   */
  get(userId: string): Promise<string | undefined>;

  /**
   * Takes the user's lease, waiting (with bounded backoff) while another
   * handler holds it, and returns it with the stored state.
   *
   * @param userId The user.
   * @param options The event the transition is for, to skip redeliveries.
   * @returns The lease.
   * @throws {LeaseTimeoutError} When the lease stayed taken for the store's
   * whole `wait`.
   * @throws {StoreError} When the store failed.
   */
  begin(userId: string, options?: BeginOptions): Promise<Lease>;

  /**
   * Writes the user's new state (or deletes it, for `undefined`) and releases
   * the lease, atomically, with the lease's event id among the user's seen
   * ones. What the contract suite checks besides:
   *
   * - A commit whose lease expired is accepted when nobody changed the state
   *   since its `begin`; if another handler holds the lease by then, that
   *   holder's own commit is refused (`LeaseLostError`, `"overtaken"`), as it
   *   read a state that is no longer the stored one.
   * - A refused commit writes nothing: not its state, not its event id (the
   *   event was not handled, so its redelivery must run).
   * - Deleting keeps the version (a later stale commit is still fenced), the
   *   event ids seen and the values kept aside.
   * - A commit sent twice (a reply that was lost) is applied once.
   *
   * @param lease The lease from `begin`.
   * @param state The new state; `undefined` deletes it.
   * @param options A value to keep aside in the same write.
   * @throws {LeaseLostError} When the lease expired and the state was changed
   * since (`"expired"`), or a late commit came meanwhile (`"overtaken"`);
   * nothing is written.
   * @throws {StoreError} When the store failed; nothing is written.
   */
  commit(
    lease: Lease,
    state: string | undefined,
    options?: CommitOptions,
  ): Promise<void>;

  /**
   * Releases the lease without writing. Releasing a lease that expired and was
   * taken by another handler does nothing.
   *
   * @param lease The lease from `begin`.
   */
  release(lease: Lease): Promise<void>;

  /**
   * Keeps a held lease alive: extends it to a full `leaseTtl` from now, if
   * it is still this lease's. `Nodes` calls it while a handler runs, so that
   * `leaseTtl` only bounds how long a crashed process blocks a user.
   *
   * @param lease The lease from `begin`.
   * @returns `true` when the lease was still held and is extended; `false`
   * when it was lost (expired, taken by another handler or not, or
   * released): an expired lease is never revived.
   * @throws {StoreError} When the store failed.
   */
  renew(lease: Lease): Promise<boolean>;

  /**
   * The raw values kept aside for a user by `commit`, newest first.
   *
   * @param userId The user.
   */
  aside(userId: string): Promise<string[]>;

  /**
   * Puts a user's timer in the store's index of timers: the user is to be
   * looked at when `due` has passed. Called before the commit that arms the
   * timer, so that the index may be ahead of the stored state, never behind.
   * An entry is the pair (user, due): a user may have several, and removing
   * one never touches another. Idempotent, but for one thing: scheduling an
   * entry that is claimed or deferred makes it due again at once (a timer
   * armed again at the due time it fired from, or one whose index entry
   * must be rewritten).
   *
   * @param userId The user.
   * @param due When, in whole ms of the store's clock.
   * @throws {StoreError} When the store failed.
   */
  schedule(userId: string, due: number): Promise<void>;

  /**
   * Takes one entry out of the index of timers (after the commit that
   * replaced or fired that timer). Removing an entry that is not there does
   * nothing.
   *
   * @param userId The user.
   * @param due The entry's due time, as scheduled.
   * @throws {StoreError} When the store failed.
   */
  unschedule(userId: string, due: number): Promise<void>;

  /**
   * The entries of the index of timers to be looked at by `until`, in the
   * order they are to be looked at, at most `limit` (`until` = `Infinity`
   * gives the next ones to come). An entry is to be looked at when it is
   * due, or later while it is claimed or deferred (see
   * {@linkcode StateStore.claimTimers}); `due` is always its due time as
   * scheduled. A snapshot: an entry may be stale (the user moved on since);
   * the caller checks the user's state under the lease.
   *
   * @param until The latest time to include, in ms of the store's clock.
   * @param limit The most entries to return.
   * @returns The entries.
   * @throws {StoreError} When the store failed.
   */
  dueTimers(until: number, limit: number): Promise<DueTimer[]>;

  /**
   * Claims entries of the index of timers, atomically: takes up to `limit`
   * of those to be looked at by `until`, earliest first, and hides each
   * from other claims until `until + hold` (the entry stays in the index
   * with its due time: if the claimer dies before removing it, it comes
   * back then). Two claims never get the same entry while it is hidden, so
   * several processes firing timers take different users. Also says when
   * the next entry is to be looked at, so that a loop knows how long it may
   * sleep.
   *
   * @param until The time to claim by, in ms of the store's clock (now).
   * @param limit The most entries to claim.
   * @param hold How long the claimed entries stay hidden, in ms.
   * @returns The entries claimed, and when the earliest entry left (hidden
   * or not) is to be looked at.
   * @throws {StoreError} When the store failed.
   */
  claimTimers(until: number, limit: number, hold: number): Promise<Claimed>;

  /**
   * Sets when an entry of the index of timers is to be looked at next, its
   * due time unchanged: a timer to try again later, or a user who was busy.
   * Does nothing when the entry is not in the index (it was removed
   * meanwhile): a deferral never brings an entry back.
   *
   * @param userId The user.
   * @param due The entry's due time, as scheduled.
   * @param at When to look at it, in ms of the store's clock.
   * @throws {StoreError} When the store failed.
   */
  deferTimer(userId: string, due: number, at: number): Promise<void>;

  /**
   * Every user with a stored state, in no particular order, read a page at
   * a time: a snapshot that takes no lease and holds at most a page in
   * memory (on Redis: `SCAN`, never `KEYS`, on every master of a Cluster).
   * A user stored for the whole iteration is yielded at least once (rarely
   * twice, when Redis resizes its tables meanwhile); one stored or deleted
   * meanwhile may be yielded or not, with its state then or a newer one.
   * Users without state (deleted, expired) are not yielded.
   *
   * @param options How many keys to look at per round trip.
   * @returns The users and their stored states.
   * @throws {StoreError} When the store failed (from the iteration).
   */
  scan(options?: ScanOptions): AsyncIterable<StoredUser>;

  /**
   * The times the store works by: `Nodes` renews a held lease every third
   * of `leaseTtl` and lets an event wait behind another of the same user in
   * its process for at most `wait`.
   */
  readonly timing: StoreTiming;
}

/**
 * A user as {@linkcode StateStore.scan} yields it.
 *
 * @example
 * ```ts
 * import type { StoredUser } from "@botnodes/core";
 *
 * const user: StoredUser = { userId: "42", state: '{"v":1,"node":"menu","data":null}' };
 * ```
 */
export interface StoredUser {
  /** The user id, as the store keys it (the string form). */
  readonly userId: string;
  /** The stored state, as `get` returns it. */
  readonly state: string;
}

/**
 * Options of {@linkcode StateStore.scan}.
 *
 * @example
 * ```ts
 * import type { ScanOptions } from "@botnodes/core";
 *
 * const options: ScanOptions = { count: 500 };
 * ```
 */
export interface ScanOptions {
  /**
   * How many keys to look at per round trip (Redis `SCAN`'s `COUNT`): more
   * is fewer round trips, each keeping Redis busier. Default 100.
   */
  readonly count?: number | undefined;
}

/**
 * An entry of a store's index of timers (see {@linkcode StateStore.dueTimers}).
 *
 * @example
 * ```ts
 * import type { DueTimer } from "@botnodes/core";
 *
 * const timer: DueTimer = { userId: "42", due: 1_700_000_000_000 };
 * ```
 */
export interface DueTimer {
  /** The user. */
  readonly userId: string;
  /** When the timer is due, in ms of the store's clock. */
  readonly due: number;
}

/**
 * What {@linkcode StateStore.claimTimers} returns.
 *
 * @example
 * ```ts
 * import type { Claimed } from "@botnodes/core";
 *
 * const claimed: Claimed = {
 *   timers: [{ userId: "42", due: 1_700_000_000_000 }],
 *   next: 1_700_000_030_000,
 * };
 * ```
 */
export interface Claimed {
  /** The entries claimed, earliest first. */
  readonly timers: DueTimer[];
  /**
   * When the earliest entry of the index is to be looked at, after this
   * claim (a claimed entry counts, at the end of its hold); `undefined` when
   * the index is empty.
   */
  readonly next: number | undefined;
}

/**
 * The times a store works by (see {@linkcode StoreOptions}).
 *
 * @example
 * ```ts
 * import type { StoreTiming } from "@botnodes/core";
 * import { systemClock } from "@botnodes/core";
 *
 * const timing: StoreTiming = { leaseTtl: 30_000, wait: 35_000, clock: systemClock };
 * ```
 */
export interface StoreTiming {
  /** See {@linkcode StoreOptions.leaseTtl}. */
  readonly leaseTtl: number;
  /** See {@linkcode StoreOptions.wait}. */
  readonly wait: number;
  /** See {@linkcode StoreOptions.clock}. */
  readonly clock: Clock;
}

/**
 * A source of time, injectable into stores so that tests control lease and
 * idle expiry instead of waiting.
 *
 * @example A clock that is always at zero and never waits
 * ```ts
 * import type { Clock } from "@botnodes/core";
 *
 * const frozen: Clock = { now: () => 0, sleep: () => Promise.resolve() };
 * ```
 */
export interface Clock {
  /** The current time, in milliseconds. */
  now(): number;
  /** Resolves after `ms` milliseconds of this clock. */
  sleep(ms: number): Promise<void>;
}

/**
 * The real clock: `Date.now()` and `setTimeout`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { systemClock } from "@botnodes/core";
 *
 * const t0 = systemClock.now();
 * await systemClock.sleep(5);
 * assert.ok(systemClock.now() > t0);
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * Options every botnodes store takes.
 *
 * @example Short leases and a week of idle time
 * ```ts
 * import type { StoreOptions } from "@botnodes/core";
 *
 * const options: StoreOptions = {
 *   leaseTtl: 10_000,
 *   wait: 15_000,
 *   ttl: 7 * 24 * 3600_000,
 * };
 * ```
 */
export interface StoreOptions {
  /**
   * How long a lease lasts without renewal, in ms: `Nodes` renews it every
   * third of this while a handler runs, so it bounds how long a crashed (or
   * frozen) process blocks its users, not how long a handler may take.
   * Default 30,000; at most 2^31 - 1; rounded up to a whole ms.
   */
  readonly leaseTtl?: number | undefined;
  /**
   * How long `begin` waits for a held lease before it throws
   * `LeaseTimeoutError`, in ms; `Nodes` bounds the wait behind an event of
   * the same user in its own process by it too. Default 35,000 (more than
   * `leaseTtl`, so a crashed holder's lease expires while events wait); at
   * most 2^31 - 1; rounded up to a whole ms.
   */
  readonly wait?: number | undefined;
  /**
   * Idle time to live of a user's state, in ms, refreshed on each commit
   * (with the values kept aside and the recent event ids, which expire with
   * it); an expired user starts over. Default: none (kept forever); at most
   * 100 years; rounded up to a whole ms.
   */
  readonly ttl?: number | undefined;
  /**
   * The clock for lease, wait and idle times, and for timers. Default
   * `systemClock`. On `RedisStore`, leases and idle times run on Redis' own
   * clock (`PX`, `PEXPIRE`): this clock times only the waits for a lease
   * and the timers' due times, so a fake clock moves neither a lease's nor a
   * state's expiry there (`MemoryStore` runs all of them on it).
   */
  readonly clock?: Clock | undefined;
  /**
   * How many recent event ids a user's state remembers, to skip redelivered
   * events (see {@linkcode BeginOptions.eventId}). Default 64.
   */
  readonly seenEvents?: number | undefined;
}

/** The defaults of {@linkcode StoreOptions}, resolved. */
export interface ResolvedStoreOptions extends StoreTiming {
  /** See {@linkcode StoreOptions.ttl}. */
  readonly ttl: number | undefined;
  /** See {@linkcode StoreOptions.seenEvents}. */
  readonly seenEvents: number;
}

/** The largest idle `ttl`, in ms: 100 years. */
const MAX_TTL_MS = 100 * 365.25 * 86_400_000;
/** The most event ids a user's state may remember (`seenEvents`). */
const MAX_SEEN_EVENTS = 10_000;

/**
 * Checks store options and fills in their defaults. Times are rounded up to
 * whole milliseconds.
 *
 * @param options The options as given.
 * @returns The options with defaults.
 * @throws {RangeError} When a time is not a positive finite number within
 * its limit (2^31 - 1, about 24.8 days, for `leaseTtl` and `wait`; 100
 * years for `ttl`), or `seenEvents` is not a whole number from 1 to
 * 10,000; the message names the option.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveStoreOptions } from "@botnodes/core/store";
 *
 * assert.equal(resolveStoreOptions({ leaseTtl: 5_000 }).wait, 35_000);
 * assert.equal(resolveStoreOptions({ leaseTtl: 30_000 / 7 }).leaseTtl, 4_286);
 * assert.throws(() => resolveStoreOptions({ ttl: 1e20 }), RangeError);
 * ```
 */
export function resolveStoreOptions(
  options: StoreOptions = {},
): ResolvedStoreOptions {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot create the store: its options must be an object, got ${
        shown(options)
      }`,
    );
  }
  const seenEvents = options.seenEvents ?? 64;
  if (
    !(Number.isInteger(seenEvents) && seenEvents > 0 &&
      seenEvents <= MAX_SEEN_EVENTS)
  ) {
    throw new RangeError(
      `Cannot create the store: option "seenEvents" must be a whole number from 1 to ${MAX_SEEN_EVENTS}, got ${
        shown(seenEvents)
      }`,
    );
  }
  const clock = options.clock ?? systemClock;
  if (
    clock === null || typeof clock.now !== "function" ||
    typeof clock.sleep !== "function"
  ) {
    throw new TypeError(
      'Cannot create the store: option "clock" must have now() and sleep(ms) methods',
    );
  }
  return {
    leaseTtl: timeOption("leaseTtl", options.leaseTtl ?? 30_000, MAX_TIMER_MS),
    wait: timeOption("wait", options.wait ?? 35_000, MAX_TIMER_MS),
    ttl: options.ttl === undefined
      ? undefined
      : timeOption("ttl", options.ttl, MAX_TTL_MS),
    clock,
    seenEvents,
  };
}

/**
 * A time option of a store, in whole ms (rounded up): a positive number up
 * to `max`, else a `RangeError` naming the option.
 */
export function timeOption(name: string, value: unknown, max: number): number {
  if (typeof value === "number" && value > 0 && value <= max) {
    return Math.ceil(value);
  }
  throw new RangeError(
    `Cannot create the store: option "${name}" must be a positive number of milliseconds up to ${max}, got ${
      shown(value)
    }`,
  );
}

/** An option's value in an error: a string quoted, so "5" is not 5. */
function shown(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** How many raw values a store keeps aside per user, at least. */
export const ASIDE_LIMIT = 16;
