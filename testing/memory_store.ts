/**
 * `MemoryStore`: a `StateStore` in memory, for tests and demos.
 *
 * @module
 */

import { waitForLease } from "../src/_lease_wait.ts";
import { LeaseLostError } from "../src/errors.ts";
import {
  ASIDE_LIMIT,
  type BeginOptions,
  type CommitOptions,
  type Lease,
  type ResolvedStoreOptions,
  resolveStoreOptions,
  type StateStore,
  type StoreOptions,
  type StoreTiming,
} from "../src/store.ts";

interface Entry {
  value: string;
  version: string;
  expiresAt: number;
}

interface Seen {
  ids: string[];
  expiresAt: number;
}

interface Held {
  token: string;
  expiresAt: number;
}

/**
 * A `StateStore` that keeps state in this process's memory, with the same
 * lease, fencing and idle-expiry semantics as the Redis store and an
 * injectable clock. Several `Nodes` sharing one `MemoryStore` behave like
 * several processes sharing one Redis.
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
  readonly #aside = new Map<string, string[]>();
  readonly #seen = new Map<string, Seen>();
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
      if (this.#entry(userId)) count++;
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
      wait,
    );
  }

  /** {@inheritDoc StateStore.commit} */
  commit(
    lease: Lease,
    state: string | undefined,
    options: CommitOptions = {},
  ): Promise<void> {
    const { clock, ttl } = this.#options;
    if (this.#entry(lease.userId)?.version !== lease.version) {
      return Promise.reject(new LeaseLostError(lease.userId));
    }
    if (state === undefined) {
      this.#entries.delete(lease.userId);
    } else {
      this.#entries.set(lease.userId, {
        value: state,
        version: lease.token,
        expiresAt: ttl === undefined ? Infinity : clock.now() + ttl,
      });
    }
    if (lease.eventId !== undefined) {
      const ids = this.#seenIds(lease.userId);
      ids.unshift(lease.eventId);
      ids.length = Math.min(ids.length, this.#options.seenEvents);
      this.#seen.set(lease.userId, {
        ids,
        expiresAt: ttl === undefined ? Infinity : clock.now() + ttl,
      });
    }
    if (options.aside !== undefined) {
      const kept = this.#aside.get(lease.userId) ?? [];
      kept.unshift(options.aside);
      kept.length = Math.min(kept.length, ASIDE_LIMIT);
      this.#aside.set(lease.userId, kept);
    }
    return this.release(lease);
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

  /** {@inheritDoc StateStore.timing} */
  get timing(): StoreTiming {
    return this.#options;
  }

  /** {@inheritDoc StateStore.aside} */
  aside(userId: string): Promise<string[]> {
    return Promise.resolve([...this.#aside.get(userId) ?? []]);
  }

  #entry(userId: string): Entry | undefined {
    const entry = this.#entries.get(userId);
    if (entry && entry.expiresAt <= this.#options.clock.now()) {
      this.#entries.delete(userId);
      return undefined;
    }
    return entry;
  }

  #seenIds(userId: string): string[] {
    const seen = this.#seen.get(userId);
    if (!seen || seen.expiresAt <= this.#options.clock.now()) return [];
    return seen.ids;
  }

  #tryBegin(userId: string, eventId: string | undefined): Lease | number {
    const { clock, leaseTtl } = this.#options;
    const now = clock.now();
    const held = this.#leases.get(userId);
    if (held && held.expiresAt > now) return held.expiresAt - now;
    const token = `${++this.#tokens}`;
    if (eventId !== undefined && this.#seenIds(userId).includes(eventId)) {
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
