/**
 * `MemoryStore`: a `StateStore` in memory, for tests and demos.
 *
 * @module
 */

import { LeaseLostError, waitForLease } from "../store/mod.ts";
import {
  ASIDE_LIMIT,
  type BeginOptions,
  type Claimed,
  type CommitOptions,
  type DueTimer,
  type Lease,
  type ResolvedStoreOptions,
  resolveStoreOptions,
  type ScanOptions,
  type StateStore,
  type StoredUser,
  type StoreOptions,
  type StoreTiming,
} from "../store/mod.ts";

/** A user's state; `value` undefined after a delete, which keeps the version. */
interface Entry {
  value: string | undefined;
  version: string;
  expiresAt: number;
}

/** A list of a user's (recent event ids, values kept aside), with its expiry. */
interface Kept {
  items: string[];
  expiresAt: number;
}

interface Held {
  token: string;
  expiresAt: number;
  /**
   * A late commit (of an expired lease) wrote while this lease was held:
   * its holder may no longer assume that nobody wrote since it read.
   */
  marked?: boolean;
}

/**
 * A `StateStore` that keeps state in this process's memory, with the same
 * lease, fencing and idle-expiry semantics as the Redis store and an
 * injectable clock. Several `Nodes` on one `MemoryStore` share its state as
 * several processes share one Redis, and one queue per user as `Nodes` on
 * one store object do in any process (calls for a user run in call order);
 * to model processes, give each a store object of its own that forwards to
 * the `MemoryStore`.
 *
 * State is lost when the process exits: use it for tests, demos and the
 * terminal chat, not for a deployed bot.
 *
 * @example A store whose idle time and leases follow a fake clock
 * ```ts
 * import { FakeClock, MemoryStore } from "@botnodes/core/testing";
 *
 * const clock = new FakeClock();
 * const store = new MemoryStore({ clock, ttl: 60_000 });
 * const lease = await store.begin("42");
 * await store.commit(lease, "state");
 * clock.advance(60_000);
 * await store.get("42"); // undefined: expired
 * ```
 */
export class MemoryStore implements StateStore {
  readonly #options: ResolvedStoreOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #leases = new Map<string, Held>();
  readonly #aside = new Map<string, Kept>();
  readonly #seen = new Map<string, Kept>();
  /**
   * The index of timers: each user's scheduled due times, each with when it
   * is to be looked at (its due time, or later while claimed or deferred).
   */
  readonly #timers = new Map<string, Map<number, number>>();
  /** Unique to this instance, so that tokens never repeat across stores. */
  readonly #tag = crypto.randomUUID();
  #tokens = 0;

  /**
   * Makes an empty store.
   *
   * @param options Lease time to live, wait, idle time to live and clock.
   */
  constructor(options: StoreOptions = {}) {
    this.#options = resolveStoreOptions(options);
  }

  /** The number of users with a stored state (expired ones not counted). */
  get size(): number {
    let count = 0;
    for (const userId of this.#entries.keys()) {
      if (this.#entry(userId)?.value !== undefined) count++;
    }
    return count;
  }

  /** {@inheritDoc StateStore.get} */
  get(userId: string): Promise<string | undefined> {
    return Promise.resolve(this.#entry(userId)?.value);
  }

  /** {@inheritDoc StateStore.begin} */
  begin(userId: string, options: BeginOptions = {}): Promise<Lease> {
    const { clock, wait } = this.#options;
    return waitForLease(
      userId,
      () => Promise.resolve(this.#tryBegin(userId, options.eventId)),
      clock,
      options.wait ?? wait,
    );
  }

  /** {@inheritDoc StateStore.commit} */
  commit(
    lease: Lease,
    state: string | undefined,
    options: CommitOptions = {},
  ): Promise<void> {
    const { clock, ttl, seenEvents } = this.#options;
    const entry = this.#entry(lease.userId);
    const version = entry?.version;
    if (version === lease.token) return Promise.resolve(); // applied already
    const held = this.#leases.get(lease.userId);
    const live = held !== undefined && held.expiresAt > clock.now();
    const ours = live && held.token === lease.token;
    // the idle ttl ran out while this lease held: nobody wrote since it read
    // (a late commit would have marked the lease), as on Redis
    const expiredUnderUs = entry === undefined && ours && !held.marked;
    if (version !== lease.version && !expiredUnderUs) {
      return Promise.reject(
        new LeaseLostError(lease.userId, ours ? "overtaken" : "expired"),
      );
    }
    // a late commit while another handler holds the lease: that handler read
    // the state replaced here, and is fenced by its version (or this mark)
    if (live && !ours) held.marked = true;
    const expiresAt = ttl === undefined ? Infinity : clock.now() + ttl;
    this.#entries.set(lease.userId, {
      value: state,
      version: lease.token,
      expiresAt,
    });
    if (lease.eventId !== undefined) {
      this.#push(this.#seen, lease.userId, lease.eventId, seenEvents);
    }
    if (options.aside !== undefined) {
      this.#push(this.#aside, lease.userId, options.aside, ASIDE_LIMIT);
    }
    for (const lists of [this.#seen, this.#aside]) {
      const kept = this.#kept(lists, lease.userId);
      if (kept) kept.expiresAt = expiresAt;
    }
    return options.keep ? Promise.resolve() : this.release(lease);
  }

  /** {@inheritDoc StateStore.release} */
  release(lease: Lease): Promise<void> {
    if (this.#leases.get(lease.userId)?.token === lease.token) {
      this.#leases.delete(lease.userId);
    }
    return Promise.resolve();
  }

  /** {@inheritDoc StateStore.renew} */
  renew(lease: Lease): Promise<boolean> {
    const { clock, leaseTtl } = this.#options;
    const held = this.#leases.get(lease.userId);
    if (held?.token !== lease.token || held.expiresAt <= clock.now()) {
      return Promise.resolve(false);
    }
    held.expiresAt = clock.now() + leaseTtl;
    return Promise.resolve(true);
  }

  /** {@inheritDoc StateStore.schedule} */
  schedule(userId: string, due: number): Promise<void> {
    const dues = this.#timers.get(userId) ?? new Map<number, number>();
    dues.set(due, due);
    this.#timers.set(userId, dues);
    return Promise.resolve();
  }

  /** {@inheritDoc StateStore.unschedule} */
  unschedule(userId: string, due: number): Promise<void> {
    const dues = this.#timers.get(userId);
    dues?.delete(due);
    if (dues?.size === 0) this.#timers.delete(userId);
    return Promise.resolve();
  }

  /** {@inheritDoc StateStore.dueTimers} */
  dueTimers(until: number, limit: number): Promise<DueTimer[]> {
    return Promise.resolve(
      this.#looked(until, limit).map(({ userId, due }) => ({ userId, due })),
    );
  }

  /** {@inheritDoc StateStore.claimTimers} */
  claimTimers(until: number, limit: number, hold: number): Promise<Claimed> {
    const timers: DueTimer[] = [];
    for (const { userId, due } of this.#looked(until, limit)) {
      this.#timers.get(userId)!.set(due, until + hold);
      timers.push({ userId, due });
    }
    const [next] = this.#looked(Infinity, 1);
    return Promise.resolve({ timers, next: next?.at });
  }

  /** {@inheritDoc StateStore.deferTimer} */
  deferTimer(userId: string, due: number, at: number): Promise<void> {
    const dues = this.#timers.get(userId);
    if (dues?.has(due)) dues.set(due, at);
    return Promise.resolve();
  }

  /** The entries to be looked at by `until`, in that order, at most `limit`. */
  #looked(until: number, limit: number) {
    const entries: { userId: string; due: number; at: number }[] = [];
    for (const [userId, dues] of this.#timers) {
      for (const [due, at] of dues) {
        if (at <= until) entries.push({ userId, due, at });
      }
    }
    // as Redis orders them: by when, then by due time, then by user
    entries.sort((a, b) =>
      a.at - b.at || a.due - b.due ||
      (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0)
    );
    return entries.slice(0, Math.max(0, limit));
  }

  /** {@inheritDoc StateStore.scan} */
  async *scan(_options: ScanOptions = {}): AsyncGenerator<StoredUser> {
    // a Map's iterator sees the entries set and deleted while it runs
    for (const userId of this.#entries.keys()) {
      const state = this.#entry(userId)?.value;
      if (state !== undefined) yield { userId, state };
    }
  }

  /** {@inheritDoc StateStore.timing} */
  get timing(): StoreTiming {
    return this.#options;
  }

  /** {@inheritDoc StateStore.aside} */
  aside(userId: string): Promise<string[]> {
    return Promise.resolve([...this.#kept(this.#aside, userId)?.items ?? []]);
  }

  #entry(userId: string): Entry | undefined {
    const entry = this.#entries.get(userId);
    if (entry && entry.expiresAt <= this.#options.clock.now()) {
      this.#entries.delete(userId);
      // its event ids and values kept aside expired with it
      this.#kept(this.#seen, userId);
      this.#kept(this.#aside, userId);
      return undefined;
    }
    return entry;
  }

  /** A user's list, unless it expired. */
  #kept(lists: Map<string, Kept>, userId: string): Kept | undefined {
    const kept = lists.get(userId);
    if (kept && kept.expiresAt <= this.#options.clock.now()) {
      lists.delete(userId);
      return undefined;
    }
    return kept;
  }

  /** Pushes onto a user's list, newest first, keeping at most `limit`. */
  #push(
    lists: Map<string, Kept>,
    userId: string,
    item: string,
    limit: number,
  ): void {
    const kept = this.#kept(lists, userId) ??
      { items: [], expiresAt: Infinity };
    kept.items.unshift(item);
    kept.items.length = Math.min(kept.items.length, limit);
    lists.set(userId, kept);
  }

  #tryBegin(userId: string, eventId: string | undefined): Lease | number {
    const { clock, leaseTtl } = this.#options;
    const now = clock.now();
    const held = this.#leases.get(userId);
    if (held && held.expiresAt > now) return held.expiresAt - now;
    const token = `${this.#tag}.${++this.#tokens}`;
    if (
      eventId !== undefined &&
      this.#kept(this.#seen, userId)?.items.includes(eventId)
    ) {
      return {
        userId,
        token,
        state: undefined,
        version: undefined,
        eventId,
        duplicate: true,
      };
    }
    this.#leases.set(userId, { token, expiresAt: now + leaseTtl });
    const entry = this.#entry(userId);
    return {
      userId,
      token,
      state: entry?.value,
      version: entry?.version,
      ...(eventId === undefined ? {} : { eventId }),
    };
  }
}
