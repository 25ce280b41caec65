/**
 * `UserQueue`: runs a function with a user's lease, one at a time per user in
 * this process.
 *
 * @module
 */

import { LeaseTimeoutError, StoreError } from "./errors.ts";
import { holdOpen } from "./hold_open.ts";
import { isPromise } from "./maybe_promise.ts";
import { MAX_TIMER_MS } from "./options.ts";
import type { Logger } from "./nodes.ts";
import type {
  BeginOptions,
  CommitOptions,
  Lease,
  StateStore,
} from "./store.ts";

/**
 * Runs functions with a user's lease from the store: for each user one at a
 * time and in call order within this process (the store's lease does the
 * same across processes), different users concurrently. One queue serves
 * every `Nodes` on a store object ({@linkcode queueOf}), so that calls
 * through two of them keep their order too.
 *
 * - A call that waits behind the others in this process longer than the
 *   store's `wait` fails with `LeaseTimeoutError` and never runs; the calls
 *   behind it keep their order.
 * - A call for a user from inside that user's own running function fails at
 *   once: it would wait for itself (detected with `AsyncLocalStorage` where
 *   the runtime has it).
 * - A held lease is renewed every third of the store's `leaseTtl` while its
 *   function runs, and released afterwards unless it was committed with
 *   {@linkcode UserQueue.commit}.
 */
export class UserQueue {
  readonly #store: StateStore;
  /** The tail of each user's queue of calls in this process. */
  readonly #queues = new Map<string, Turn>();
  /**
   * The leases held now, kept alive by one sweep timer, each with what its
   * commit did (a record per lease rather than weak sets of leases: weak
   * collections cost the garbage collector per entry, for every event).
   */
  readonly #held = new Map<Lease, Renewal>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /**
   * Makes a queue on a store (see {@linkcode queueOf} for the store's own).
   *
   * @param store Where leases come from.
   */
  constructor(store: StateStore) {
    this.#store = store;
  }

  /**
   * Runs `fn` with the user's lease, after every earlier call for the same
   * user on this queue; releases the lease afterwards if `fn` did not
   * {@linkcode UserQueue.commit} it.
   *
   * @param id The user's key.
   * @param fn What to run with the lease; a duplicate lease (`eventId` seen
   * before) is passed as is, neither renewed nor released.
   * @param eventId The event's id, for the store's deduplication.
   * @param once Try once: fail at once with `LeaseTimeoutError` (`waited`
   * 0) when another call for the user runs or waits in this process, or
   * another handler holds the lease, instead of waiting for them.
   * @param logger Where a release or renewal of its lease that failed is
   * reported (the calling `Nodes`' logger: the queue is shared).
   * @returns What `fn` returned.
   * @throws {LeaseTimeoutError} When the call waited longer than the store's
   * `wait`, here and in the store together (a call queued here begins with
   * what is left of it).
   * @throws {Error} When called for a user from inside that user's `fn`.
   */
  run<T>(
    id: string,
    fn: (lease: Lease) => Promise<T>,
    eventId?: string,
    once = false,
    logger: Logger = console,
  ): Promise<T> {
    // a call that tries once never waits, so it cannot wait for itself: it
    // fails as busy (a timer fired from a handler is put off, not failed)
    if (!once && scope && within(scope.getStore(), this.#store, id)) {
      return Promise.reject(
        new Error(
          `Cannot wait for user "${id}" from inside their own handler: it would wait for itself forever (return the next node from onEvent instead, or call this after route returns)`,
        ),
      );
    }
    const previous = this.#queues.get(id);
    if (once && previous !== undefined) {
      return Promise.reject(new LeaseTimeoutError(id, 0, true));
    }
    // a caller that holds users (a handler moving another user) and would
    // wait for a handler that waits for one of them, directly or through
    // others: each would wait for the other until `wait` ran out
    const caller = previous === undefined ? undefined : scope?.getStore();
    const held = caller === undefined ? undefined : this.#cycle(caller, id);
    if (held !== undefined) {
      return Promise.reject(
        new Error(
          `Cannot wait for user "${id}" from inside the handler of user "${held}": the handler of user "${id}" waits for user "${held}" (directly or through other users), so both would wait until the store's wait runs out (move other users after route returns)`,
        ),
      );
    }
    const turn: Turn = {
      next: undefined,
      behind: previous,
      wake: undefined,
      inside: undefined,
    };
    const over = () => this.#over(id, turn);
    this.#queues.set(id, turn);
    if (previous === undefined) {
      const result = this.#leased(
        turn,
        id,
        fn,
        logger,
        eventId,
        once ? 0 : undefined,
      );
      result.then(over, over);
      return result;
    }
    previous.next = turn; // the tail: nobody was behind it
    const waits = caller === undefined ? undefined : caller.waits ??= new Map();
    waits?.set(id, (waits.get(id) ?? 0) + 1);
    const waited = () => {
      const count = waits?.get(id) ?? 0;
      if (count > 1) waits!.set(id, count - 1);
      else waits?.delete(id);
    };
    const wait = this.#store.timing.wait;
    const clock = this.#store.timing.clock;
    const queued = clock.now();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        // never runs: out of the line, which keeps its order
        waited();
        this.#leave(id, turn);
        reject(new LeaseTimeoutError(id, wait, true));
      }, Math.min(wait, MAX_TIMER_MS));
      // woken through a promise of its own, whose reaction runs in this
      // caller's async context (not in that of the call before it, which
      // wakes it); on a timeout, only `wake` held it
      new Promise<void>((wake) => turn.wake = wake).then(() => {
        clearTimeout(timer);
        waited();
        // `wait` bounds the whole wait: here, then for the store's lease
        const left = Math.max(0, wait - (clock.now() - queued));
        const result = this.#leased(
          turn,
          id,
          fn,
          logger,
          eventId,
          left,
          wait - left,
        );
        result.then(resolve, reject);
        result.then(over, over);
      });
    });
  }

  /**
   * The user held by `caller` (or by a call it runs inside) that a call for
   * `id` would wait for, through the handlers of this queue that wait for
   * other users: a cycle of waits. `undefined` when there is none.
   */
  #cycle(caller: Inside, id: string): string | undefined {
    const seen = new Set<string>();
    const next = [id];
    while (next.length > 0) {
      const user = next.pop()!;
      if (seen.has(user)) continue;
      seen.add(user);
      // the call running for the user: the first in its line
      let first = this.#queues.get(user);
      while (first?.behind !== undefined) first = first.behind;
      const holder = first?.inside;
      if (holder === undefined) continue;
      for (let at: Inside | undefined = caller; at; at = at.outer) {
        if (at === holder) return holder.id;
      }
      if (holder.waits) next.push(...holder.waits.keys());
    }
    return undefined;
  }

  /** A turn is over: the call behind it goes; the last leaves no queue. */
  #over(id: string, turn: Turn): void {
    if (this.#queues.get(id) === turn) this.#queues.delete(id);
    const next = turn.next;
    if (next === undefined) return;
    turn.next = next.behind = undefined;
    const wake = next.wake!;
    next.wake = undefined;
    wake();
  }

  /**
   * Takes a call that waited too long out of the line, holding on to
   * nothing of it (a handler that never settles would otherwise keep every
   * call that timed out behind it): the call behind it, if any, now waits
   * behind the one before it.
   */
  #leave(id: string, turn: Turn): void {
    const behind = turn.behind!;
    behind.next = turn.next;
    if (turn.next !== undefined) turn.next.behind = behind;
    if (this.#queues.get(id) === turn) this.#queues.set(id, behind);
    turn.next = turn.behind = turn.wake = undefined;
  }

  /**
   * Commits through the store, and marks the lease as done with: it is not
   * released after its function returns (unless `options.keep`: then the
   * commit leaves it held, and it is released after the function returns).
   *
   * @param lease The lease `run` passed.
   * @param state The new state, or `undefined` to delete it.
   * @param options What the store's `commit` takes besides.
   * @throws Whatever the store's `commit` throws (then the lease is released
   * as usual).
   */
  commit(
    lease: Lease,
    state: string | undefined,
    options?: CommitOptions,
  ): Promise<void> {
    // a lease not held here (a duplicate's) has nothing to renew or release
    const renewal = this.#held.get(lease) ?? idle(undefined);
    renewal.committing = true;
    return this.#store.commit(lease, state, options).then(() => {
      // a kept lease is released after the function returns, as usual
      if (options?.keep !== true) renewal.committed = true;
      else renewal.committing = false;
    }, (error: unknown) => {
      renewal.committing = false;
      renewal.storeFailed = error instanceof StoreError;
      throw error;
    });
  }

  /**
   * Takes the lease (waiting up to `wait` ms for it, else the store's own
   * `wait`), runs `fn` keeping the lease alive, releases it unless committed.
   */
  async #leased<T>(
    turn: Turn,
    id: string,
    fn: (lease: Lease) => Promise<T>,
    logger: Logger,
    eventId: string | undefined,
    wait?: number,
    waitedHere = 0,
  ): Promise<T> {
    const options = wait === undefined
      ? (eventId === undefined ? NO_OPTIONS : { eventId })
      : { eventId, wait };
    const lease = waitedHere > 0
      ? await this.#store.begin(id, options).catch((error: unknown) => {
        // the wait was here, then in the store: the error says all of it
        throw error instanceof LeaseTimeoutError
          ? new LeaseTimeoutError(id, waitedHere + error.waited)
          : error;
      })
      : await this.#store.begin(id, options);
    if (lease.duplicate) return fn(lease);
    const renewal = this.#hold(lease, logger);
    const inside: Inside = {
      store: this.#store,
      id,
      active: true,
      outer: scope?.getStore(),
    };
    turn.inside = inside;
    try {
      return await (scope ? scope.run(inside, fn, lease) : fn(lease));
    } finally {
      inside.active = false;
      turn.inside = undefined;
      this.#unhold(lease);
      if (!renewal.committed) {
        const released = this.#store.release(lease).catch((error: unknown) =>
          logger.warn(
            `Cannot release the lease of user "${id}"; it expires on its own`,
            error,
          )
        );
        // after a commit the store failed (no answer, a broken connection),
        // the release is sent but not waited for: it would wait as long
        if (!renewal.storeFailed) await released;
      }
    }
  }

  /**
   * Keeps `lease` alive until `#unhold`: one timer renews every held lease
   * every third of the store's `leaseTtl`. It keeps the process alive only
   * while a lease is held; between events it stays, so that events that
   * follow each other do not each make and clear a timer (that cost a
   * sequential event about a third of its time on Deno), and it stops at the
   * first tick that finds no lease held.
   */
  #hold(lease: Lease, logger: Logger): Renewal {
    const renewal = idle(logger);
    this.#held.set(lease, renewal);
    // held strongly while it holds a lease: what the function awaits may be
    // reachable only through the queue (a store that answers when renewed)
    if (this.#held.size === 1) holding.add(this);
    if (this.#sweeper === undefined) {
      // the timer holds the queue weakly: between events, an idle queue
      // (its Nodes, its store) that nothing else holds can go
      const queue = new WeakRef(this);
      const sweeper = setInterval(
        () => {
          const alive = queue.deref();
          if (alive === undefined) clearInterval(sweeper);
          else alive.#renewAll();
        },
        Math.min(Math.max(1, this.#store.timing.leaseTtl / 3), MAX_TIMER_MS),
      );
      this.#sweeper = sweeper;
    } else if (this.#held.size === 1) {
      holdOpen(this.#sweeper, true);
    }
    return renewal;
  }

  #unhold(lease: Lease): void {
    this.#held.delete(lease);
    if (this.#held.size === 0) {
      holding.delete(this);
      if (this.#sweeper !== undefined) holdOpen(this.#sweeper, false);
    }
  }

  #renewAll(): void {
    if (this.#held.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
      return;
    }
    for (const [lease, renewal] of this.#held) {
      if (renewal.renewing) continue; // the last renewal is still on its way
      renewal.renewing = true;
      let renewed: Promise<boolean>;
      try {
        renewed = this.#store.renew(lease);
      } catch (error) {
        renewed = Promise.reject(error);
      }
      renewed.then(
        (held) => {
          renewal.renewing = false;
          if (!held) this.#renewFailed(lease, renewal, undefined);
        },
        (error: unknown) => {
          renewal.renewing = false;
          this.#renewFailed(lease, renewal, error);
        },
      );
    }
  }

  /** Reports a lease that could not be renewed, once; the commit decides. */
  #renewFailed(lease: Lease, renewal: Renewal, error: unknown): void {
    if (
      renewal.reported || !this.#held.has(lease) || renewal.committing
    ) {
      return;
    }
    renewal.reported = true;
    const why = error === undefined ? "it was lost" : "the store failed";
    renewal.logger?.warn(
      `Cannot keep the lease of user "${lease.userId}": ${why}; its commit is refused if another handler changed the state meanwhile`,
      ...(error === undefined ? [] : [error]),
    );
  }
}

/**
 * A call's place in its user's queue: a line of calls, each waiting for the
 * one before it (only the last in line is in the map, and only one call
 * waits behind each).
 */
interface Turn {
  /** The call waiting behind this one. */
  next: Turn | undefined;
  /** The call this one waits behind, while it waits. */
  behind: Turn | undefined;
  /** Starts this call, once the one before it is over. */
  wake: (() => void) | undefined;
  /** The call's context while it runs with the lease (see `#cycle`). */
  inside: Inside | undefined;
}

/** The renewal of one held lease, and its commit. */
interface Renewal {
  /** A renewal is on its way. */
  renewing: boolean;
  /** A failed renewal was reported. */
  reported: boolean;
  /**
   * The commit is on its way, or done and released: a renewal that finds
   * the lease gone lost nothing (the commit released it, or its own answer
   * will say what happened).
   */
  committing: boolean;
  /** The commit succeeded, releasing the lease (so it needs no release). */
  committed: boolean;
  /** The commit failed in the store (`StoreError`). */
  storeFailed: boolean;
  /** Where a renewal that failed is reported (none for a duplicate's). */
  logger: Logger | undefined;
}

/**
 * A new lease's renewal: one object literal, so that every renewal has the
 * same shape (a spread with a field added made another, and the hot path's
 * reads of it polymorphic: about 5 µs an event on Node).
 */
function idle(logger: Logger | undefined): Renewal {
  return {
    renewing: false,
    reported: false,
    committing: false,
    committed: false,
    storeFailed: false,
    logger,
  };
}

/**
 * The queues that hold a lease now: the renewal timer holds a queue only
 * weakly (an idle one, its `Nodes` and store, may go), so this holds it
 * while its leases are renewed.
 */
const holding = new Set<UserQueue>();

/** The queue of each store object: every `Nodes` on it shares it. */
const queues = new WeakMap<StateStore, UserQueue>();

/**
 * The user queue of a store object, shared by every `Nodes` on it: calls for
 * one user through any of them run one at a time in call order (each `Nodes`
 * with a queue of its own would race for the store's lease, and the one
 * that asked first might not get it first).
 */
export function queueOf(store: StateStore): UserQueue {
  let queue = queues.get(store);
  if (queue === undefined) {
    queue = new UserQueue(store);
    queues.set(store, queue);
  }
  return queue;
}

/** The call the running code is inside of, and the ones around it. */
interface Inside {
  /** The store whose lease the call holds (any queue on it would wait). */
  readonly store: StateStore;
  readonly id: string;
  active: boolean;
  /**
   * An `onInvalidState` hook running for the user (see `runHook`), which
   * holds no lease of its own.
   */
  readonly hook?: boolean;
  readonly outer: Inside | undefined;
  /** The users this call waits for in a queue now, with how many calls. */
  waits?: Map<string, number>;
}

function within(
  inside: Inside | undefined,
  store: StateStore,
  id: string,
  hook = false,
): boolean {
  for (let at = inside; at !== undefined; at = at.outer) {
    if (
      at.active && (at.hook === true) === hook && at.store === store &&
      at.id === id
    ) {
      return true;
    }
  }
  return false;
}

/**
 * Runs the `onInvalidState` hook for user `id` of `store`, marked so that
 * {@linkcode inHook} tells, inside it, that it runs: `user(id).node()` runs
 * the hook, and would run it again from inside itself, forever.
 */
export function runHook<T>(store: StateStore, id: string, hook: () => T): T {
  if (!scope) return hook();
  const inside: Inside = {
    store,
    id,
    active: true,
    hook: true,
    outer: scope.getStore(),
  };
  const over = () => void (inside.active = false);
  let result: T;
  try {
    result = scope.run(inside, hook);
  } catch (error) {
    over();
    throw error;
  }
  if (isPromise(result)) result.then(over, over);
  else over();
  return result;
}

/** Whether the hook of user `id` of `store` is running (see `runHook`). */
export function inHook(store: StateStore, id: string): boolean {
  return scope !== undefined && within(scope.getStore(), store, id, true);
}

/** What `AsyncLocalStorage` offers that re-entry detection uses. */
interface AsyncScope<T> {
  getStore(): T | undefined;
  run<R, A extends unknown[]>(store: T, fn: (...args: A) => R, ...args: A): R;
}

/**
 * Where re-entry is detected: `AsyncLocalStorage`, found by feature
 * (`process.getBuiltinModule`, on Deno, Bun and Node 20.16+) so that this
 * module imports nothing runtime-specific. Without it, a re-entrant call
 * waits behind its own function and fails with `LeaseTimeoutError` after the
 * store's `wait`.
 */
const scope: AsyncScope<Inside> | undefined = (() => {
  try {
    const hooks = (globalThis as {
      process?: { getBuiltinModule?(id: string): unknown };
    }).process?.getBuiltinModule?.("node:async_hooks") as
      | { AsyncLocalStorage?: new () => AsyncScope<Inside> }
      | undefined;
    return hooks?.AsyncLocalStorage ? new hooks.AsyncLocalStorage() : undefined;
  } catch {
    return undefined;
  }
})();

/** The options of a `begin` without an event id. */
const NO_OPTIONS: BeginOptions = Object.freeze({});
