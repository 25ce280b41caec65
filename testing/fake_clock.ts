/**
 * `FakeClock`: a `Clock` whose time moves only when told.
 *
 * @module
 */

import type { Clock } from "../store/mod.ts";

/** One pending `sleep`. */
interface Sleeper {
  readonly deadline: number;
  readonly wake: () => void;
}

/**
 * A `Clock` for tests: time starts at `start` and moves by `advance`, and
 * by a `sleep` that ends.
 *
 * A `sleep(ms)` waits as it would in real time (a real timer of `ms`), and
 * moves the clock to its end when it ends; an `advance` past its end ends it
 * at once. So a store waiting for a lease waits as long as it would for
 * real: a live holder keeps its lease, and a crashed one's lease expires
 * when the test advances the clock past it, never because a waiter jumped
 * time ahead.
 *
 * @example Expiring a crashed holder's lease
 * ```ts
 * import assert from "node:assert/strict";
 * import { FakeClock, MemoryStore } from "@botnodes/core/testing";
 *
 * const clock = new FakeClock();
 * const store = new MemoryStore({ clock, leaseTtl: 1_000 });
 * await store.begin("42"); // never released: the holder "crashed"
 * const waiting = store.begin("42"); // waits, as it would for real
 * clock.advance(1_000); // the lease expires: the waiter takes it
 * const lease = await waiting;
 * assert.equal(lease.userId, "42");
 * assert.ok(clock.now() >= 1_000);
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  readonly #sleepers = new Set<Sleeper>();

  /**
   * Makes a clock at `start`.
   *
   * @param start The time to start at, in ms. Default 0.
   */
  constructor(start = 0) {
    this.#now = start;
  }

  /** The current fake time, in ms. */
  now(): number {
    return this.#now;
  }

  /**
   * Resolves after `ms`: when a real timer of `ms` fires (the clock then
   * moves to the sleep's end, if it is not past it already), or as soon as
   * `advance` moves the clock to its end.
   *
   * @param ms How long to sleep, in ms.
   */
  sleep(ms: number): Promise<void> {
    const deadline = this.#now + Math.max(0, ms);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#sleepers.delete(sleeper);
        this.#now = Math.max(this.#now, deadline);
        resolve();
      }, Math.max(0, ms));
      const sleeper: Sleeper = {
        deadline,
        wake: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#sleepers.add(sleeper);
    });
  }

  /**
   * Moves time forward by `ms`, ending the sleeps that end by then, earliest
   * first.
   *
   * @param ms How far to move, in ms; not negative.
   * @throws {RangeError} When `ms` is negative or not finite.
   */
  advance(ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0)) {
      throw new RangeError(`Cannot advance the clock by ${ms} ms`);
    }
    this.#now += ms;
    const due = [...this.#sleepers]
      .filter((sleeper) => sleeper.deadline <= this.#now)
      .sort((a, b) => a.deadline - b.deadline);
    for (const sleeper of due) {
      this.#sleepers.delete(sleeper);
      sleeper.wake();
    }
  }
}
