/**
 * The lease-waiting loop stores share.
 *
 * @module
 */

import { LeaseTimeoutError } from "./errors.ts";
import type { Clock } from "./store.ts";

/** How long the first retry waits; each retry doubles it up to the cap. */
const FIRST_DELAY = 2;
const MAX_DELAY = 50;

/**
 * Tries to take a lease until `attempt` returns one, backing off
 * exponentially with jitter between tries (2 ms doubling up to 50 ms, never
 * past the holder's expiry), for at most `wait` ms of `clock`: what a store's
 * `begin` does while another handler holds the user.
 *
 * @typeParam L The lease type.
 * @param userId The user, for the error.
 * @param attempt One try: the lease, or the time in ms until the current
 * holder's lease expires (a bound on the next delay).
 * @param clock The clock to wait on.
 * @param wait How long to try, in ms.
 * @returns The lease.
 * @throws {LeaseTimeoutError} When no try got the lease within `wait`.
 *
 * @example A store's begin
 * ```ts
 * import { systemClock, waitForLease } from "@botnodes/core/store";
 * import assert from "node:assert/strict";
 *
 * let tries = 0;
 * const lease = await waitForLease(
 *   "42",
 *   () => Promise.resolve(++tries < 3 ? 5 : { token: "t" }),
 *   systemClock,
 *   1_000,
 * );
 * assert.deepEqual(lease, { token: "t" });
 * assert.equal(tries, 3);
 * ```
 */
export function waitForLease<L>(
  userId: string,
  attempt: () => Promise<L | number>,
  clock: Clock,
  wait: number,
): Promise<L> {
  const start = clock.now();
  // the first try without a loop around it: most leases are free
  let first: Promise<L | number>;
  try {
    first = attempt();
  } catch (error) {
    return Promise.reject(error);
  }
  return first.then((got) =>
    typeof got === "number"
      ? retry(userId, attempt, clock, wait, start, got)
      : got
  );
}

/** The tries after a first that found the lease held (`got` ms more). */
async function retry<L>(
  userId: string,
  attempt: () => Promise<L | number>,
  clock: Clock,
  wait: number,
  start: number,
  got: L | number,
): Promise<L> {
  for (let delay = FIRST_DELAY;; delay = Math.min(delay * 2, MAX_DELAY)) {
    if (typeof got !== "number") return got;
    const waited = clock.now() - start;
    if (waited >= wait) throw new LeaseTimeoutError(userId, waited);
    const jittered = delay / 2 + Math.random() * delay / 2;
    await clock.sleep(Math.max(1, Math.min(jittered, got, wait - waited)));
    got = await attempt();
  }
}
