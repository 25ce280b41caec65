/**
 * `FakeClock`: a `Clock` whose time moves only when told.
 *
 * @module
 */

import type { Clock } from "../store/mod.ts";

/**
 * A `Clock` for tests: time starts at `start` and moves only by `advance` or
 * by `sleep`, which moves it forward at once instead of waiting. A store
 * given a `FakeClock` expires leases and idle state exactly when the test
 * says, and a wait for a lease runs through its backoff without real delays.
 *
 * @example Expiring a lease without waiting
 * ```ts
 * import { FakeClock, MemoryStore } from "@botnodes/core/testing";
 *
 * const clock = new FakeClock();
 * const store = new MemoryStore({ clock, leaseTtl: 1_000 });
 * await store.begin("42"); // never released: the holder "crashed"
 * const lease = await store.begin("42"); // sleeps 1,000 fake ms, then takes it
 * clock.now(); // >= 1000
 * ```
 */
export class FakeClock implements Clock {
  #now: number;

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
   * Moves time forward by `ms` and resolves at once.
   *
   * @param ms How far to move, in ms.
   */
  sleep(ms: number): Promise<void> {
    this.advance(ms);
    return Promise.resolve();
  }

  /**
   * Moves time forward by `ms`.
   *
   * @param ms How far to move, in ms; not negative.
   * @throws {RangeError} When `ms` is negative or not finite.
   */
  advance(ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0)) {
      throw new RangeError(`Cannot advance the clock by ${ms} ms`);
    }
    this.#now += ms;
  }
}
