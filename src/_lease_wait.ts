import { LeaseTimeoutError } from "./errors.ts";
import type { Clock } from "./store.ts";

/** How long the first retry waits; each retry doubles it up to the cap. */
const FIRST_DELAY = 2;
const MAX_DELAY = 50;

/**
 * Tries to take a lease until `attempt` returns one, backing off
 * exponentially with jitter between tries, for at most `wait` ms of `clock`.
 * `attempt` returns the lease, or the time in ms until the current holder's
 * lease expires (a bound on the next delay).
 */
export async function waitForLease<L>(
  userId: string,
  attempt: () => Promise<L | number>,
  clock: Clock,
  wait: number,
): Promise<L> {
  const start = clock.now();
  for (let delay = FIRST_DELAY;; delay = Math.min(delay * 2, MAX_DELAY)) {
    const got = await attempt();
    if (typeof got !== "number") return got;
    const waited = clock.now() - start;
    if (waited >= wait) throw new LeaseTimeoutError(userId, waited);
    const jittered = delay / 2 + Math.random() * delay / 2;
    await clock.sleep(Math.max(1, Math.min(jittered, got, wait - waited)));
  }
}
