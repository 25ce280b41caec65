/**
 * For store authors: the `StateStore` contract, its options and helpers, and
 * the contract test suite every store must pass. Bot authors need none of
 * this: `@botnodes/core` has `RedisStore`, `@botnodes/core/testing` has
 * `MemoryStore`.
 *
 * @example Proving a store with the contract suite (a test file)
 * ```ts ignore
 * // ignored: MyStore is yours, and node:test registers the cases at the top
 * // level of a test file (see `storeContract` for a run in a doc example)
 * import * as test from "node:test";
 * import { storeContract } from "@botnodes/core/store";
 * import { FakeClock } from "@botnodes/core/testing";
 * import { MyStore } from "./my_store.ts";
 *
 * storeContract("MyStore", async ({ wait, ttl }) => {
 *   // time moved on the store's own clock: the suite then checks that
 *   // leases and idle states end when they should, not only that they end
 *   const clock = new FakeClock();
 *   const store = new MyStore({ clock, wait, ttl, leaseTtl: 1_000 });
 *   return {
 *     store,
 *     expireLeases: () => Promise.resolve(clock.advance(1_000)),
 *     expireStates: () => Promise.resolve(clock.advance(ttl ?? 0)),
 *     advance: (ms) => Promise.resolve(clock.advance(ms)),
 *     close: () => store.close(),
 *   };
 * }, test);
 * ```
 *
 * @module
 */

export {
  ASIDE_LIMIT,
  type BeginOptions,
  type Claimed,
  type Clock,
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
  systemClock,
} from "../src/store.ts";
export { waitForLease } from "../src/lease_wait.ts";
export {
  type HarnessOptions,
  storeContract,
  type StoreHarness,
  type TestRunner,
} from "../src/store_contract.ts";
export {
  LeaseLostError,
  type LeaseLostReason,
  LeaseTimeoutError,
  StoreError,
  type StoreOperation,
} from "../src/errors.ts";
