/**
 * The contract test suite every `StateStore` passes: `MemoryStore` and
 * `RedisStore` (on ioredis, a Cluster, node-redis and Upstash) run it, and a
 * store for another database proves itself the same way.
 *
 * @module
 */
import assert from "node:assert/strict";
import { LeaseLostError, LeaseTimeoutError } from "./errors.ts";
import type { LeaseLostReason } from "./errors.ts";
import { ASIDE_LIMIT, type StateStore } from "./store.ts";

/**
 * A store under test, with the means to move its time; made afresh for each
 * case of {@linkcode storeContract}.
 *
 * @example A harness for `MemoryStore` on a fake clock
 * ```ts
 * import type { StoreHarness } from "@botnodes/core/store";
 * import { FakeClock, MemoryStore } from "@botnodes/core/testing";
 *
 * const clock = new FakeClock();
 * const harness: StoreHarness = {
 *   store: new MemoryStore({ clock, leaseTtl: 10_000 }),
 *   expireLeases: () => Promise.resolve(clock.advance(10_000)),
 *   advance: (ms) => Promise.resolve(clock.advance(ms)),
 *   close: () => Promise.resolve(),
 * };
 * ```
 */
export interface StoreHarness {
  /** The store under test. */
  store: StateStore;
  /** Makes every lease held right now expire. */
  expireLeases(): Promise<void>;
  /**
   * Makes every state with an idle TTL expire (and what expires with it);
   * undefined when the store has no idle TTL.
   */
  expireStates?: () => Promise<void>;
  /**
   * Another store instance on the same data (as in another process);
   * undefined when the store keeps its data in the instance.
   */
  twin?: () => StateStore;
  /**
   * Moves the store's clock on by `ms` (a fake clock, the store's `clock`
   * option); undefined when its time cannot be moved (a real Redis). With
   * it, the suite also checks what happens between now and an expiry: that
   * a lease lasts `leaseTtl` and a renewal extends it, that each commit
   * refreshes the idle TTL. Give it when you can.
   */
  advance?: (ms: number) => Promise<void>;
  /** Frees what the harness holds. */
  close(): Promise<void>;
}

/**
 * What each case asks of the harness: `wait` (the store's `wait` option; a
 * fake clock may advance on sleep) and, for the expiry cases, `ttl` (the
 * store's idle time to live). The store made must remember at least the last
 * 2 event ids of a user (`seenEvents`; 64 by default).
 *
 * @example
 * ```ts
 * import type { HarnessOptions } from "@botnodes/core/store";
 *
 * const options: HarnessOptions = { wait: 2_000, ttl: 60_000 };
 * ```
 */
export interface HarnessOptions {
  /** The store's `wait` option, in ms. */
  wait: number;
  /** The store's idle `ttl` option, in ms, when the case needs one. */
  ttl?: number;
}

/**
 * The test functions of a runner: `node:test`'s (Deno, Bun and Node run
 * them), vitest's, or any with the same shape. The suite imports no runner
 * of its own.
 *
 * @example A runner of your own, that lists the cases
 * ```ts
 * import assert from "node:assert/strict";
 * import { storeContract, type TestRunner } from "@botnodes/core/store";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * const names: string[] = [];
 * const listing: TestRunner = {
 *   describe: (_name, fn) => fn(),
 *   it: (name) => names.push(name),
 * };
 * storeContract("MemoryStore", () =>
 *   Promise.resolve({
 *     store: new MemoryStore(),
 *     expireLeases: () => Promise.resolve(),
 *     close: () => Promise.resolve(),
 *   }), listing);
 * assert.ok(names.length > 10);
 * ```
 *
 * With vitest, pass its functions: `import { describe, it } from "vitest"`,
 * then `storeContract("MyStore", makeHarness, { describe, it })`.
 */
export interface TestRunner {
  /** Groups cases. */
  describe(name: string, fn: () => void): unknown;
  /** One case. */
  it(name: string, fn: () => Promise<void>): unknown;
}

/**
 * Defines the contract cases for a store made by `make` (once per case):
 * one user at a time, fencing of stale commits, tokens unique across
 * instances, versions that never repeat, values kept aside, redeliveries,
 * renewals, idle expiry. Call it at the top level of a test file.
 *
 * @param name The store's name, in the cases' names.
 * @param make Makes a fresh store harness for one case.
 * @param runner The test functions to define the cases with: `node:test`
 * (`import * as test from "node:test"`) or vitest's `{ describe, it }`.
 *
 * @example Proving `MemoryStore` (a test file)
 * ```ts ignore
 * // ignored: a test file, where node:test registers the cases at the top
 * // level; a doc example runs inside a test, where it cannot (next example)
 * import * as test from "node:test";
 * import { storeContract } from "@botnodes/core/store";
 * import { FakeClock, MemoryStore } from "@botnodes/core/testing";
 *
 * storeContract("MemoryStore", ({ wait, ttl }) => {
 *   const clock = new FakeClock();
 *   const store = new MemoryStore({ clock, wait, ttl, leaseTtl: 10_000 });
 *   return Promise.resolve({
 *     store,
 *     expireLeases: () => Promise.resolve(clock.advance(10_000)),
 *     expireStates: () => Promise.resolve(clock.advance(ttl ?? 0)),
 *     advance: (ms) => Promise.resolve(clock.advance(ms)),
 *     close: () => Promise.resolve(),
 *   });
 * }, test);
 * ```
 *
 * @example Proving `MemoryStore`, each case run in turn
 * ```ts
 * import assert from "node:assert/strict";
 * import { storeContract, type TestRunner } from "@botnodes/core/store";
 * import { FakeClock, MemoryStore } from "@botnodes/core/testing";
 *
 * const cases: (() => Promise<void>)[] = [];
 * const runner: TestRunner = {
 *   describe: (_name, fn) => fn(),
 *   it: (_name, fn) => cases.push(fn),
 * };
 * storeContract("MemoryStore", ({ wait, ttl }) => {
 *   const clock = new FakeClock();
 *   const store = new MemoryStore({ clock, wait, ttl, leaseTtl: 10_000 });
 *   return Promise.resolve({
 *     store,
 *     expireLeases: () => Promise.resolve(clock.advance(10_000)),
 *     expireStates: () => Promise.resolve(clock.advance(ttl ?? 0)),
 *     advance: (ms) => Promise.resolve(clock.advance(ms)),
 *     close: () => Promise.resolve(),
 *   });
 * }, runner);
 * for (const run of cases) await run(); // each throws when the store fails it
 * assert.ok(cases.length > 10);
 * ```
 */
export function storeContract(
  name: string,
  make: (options: HarnessOptions) => Promise<StoreHarness>,
  runner: TestRunner,
): void {
  const { describe, it } = runner;
  describe(`${name} honours the StateStore contract`, () => {
    const withStore = (
      fn: (h: StoreHarness) => Promise<void>,
      options: HarnessOptions = { wait: 2_000 },
    ) =>
    async () => {
      const harness = await make(options);
      try {
        await fn(harness);
      } finally {
        await harness.close();
      }
    };

    it(
      "has no state for a new user",
      withStore(async ({ store }) => {
        assert.equal(await store.get("nobody"), undefined);
        const lease = await store.begin("nobody");
        assert.equal(lease.state, undefined);
        assert.equal(lease.userId, "nobody");
        await store.release(lease);
        assert.equal(await store.get("nobody"), undefined);
        assert.deepEqual(await store.aside("nobody"), []);
      }),
    );

    it(
      "commits a state that the next begin and get return",
      withStore(async ({ store }) => {
        const first = await store.begin("u");
        await store.commit(first, "one");
        assert.equal(await store.get("u"), "one");
        const second = await store.begin("u");
        assert.equal(second.state, "one");
        await store.commit(second, "two");
        assert.equal(await store.get("u"), "two");
      }),
    );

    it(
      "deletes the state when committing undefined",
      withStore(async ({ store }) => {
        await store.commit(await store.begin("u"), "one");
        await store.commit(await store.begin("u"), undefined);
        assert.equal(await store.get("u"), undefined);
        assert.equal((await store.begin("u")).state, undefined);
      }),
    );

    it(
      "keeps users apart, whatever their ids",
      withStore(async ({ store }) => {
        const ids = [
          "1",
          "12",
          "a:b",
          "a",
          "a:b:lease",
          "{x}",
          "}{",
          "*",
          "with space",
          "line\nbreak",
          "",
          "ünïcødé 🤖",
          "x".repeat(5_000),
        ];
        for (const id of ids) {
          await store.commit(await store.begin(id), `v${id}`);
        }
        for (const id of ids) assert.equal(await store.get(id), `v${id}`);
      }),
    );

    it(
      "gives the lease to one holder at a time, the next after release",
      withStore(async ({ store }) => {
        const first = await store.begin("u");
        const order: string[] = [];
        const second = store.begin("u").then((lease) => {
          order.push("second");
          return lease;
        });
        // the second begin must still be waiting after the first works
        await store.get("u");
        order.push("first");
        await store.commit(first, "from first");
        const lease = await second;
        assert.deepEqual(order, ["first", "second"]);
        assert.equal(lease.state, "from first");
        await store.release(lease);
      }),
    );

    it(
      "keeps the lease after a commit with keep, until released",
      withStore(async ({ store }) => {
        const lease = await store.begin("u");
        await store.commit(lease, "kept", { keep: true });
        assert.equal(await store.get("u"), "kept");
        await assert.rejects(
          store.begin("u", { wait: 0 }),
          LeaseTimeoutError,
          "still held",
        );
        await store.release(lease);
        const next = await store.begin("u", { wait: 0 });
        assert.equal(next.state, "kept");
        await store.commit(next, undefined, { keep: true });
        assert.equal(await store.get("u"), undefined);
        await store.release(next);
        await store.release(await store.begin("u", { wait: 0 }));
      }),
    );

    it(
      "throws LeaseTimeoutError when the lease stays held past wait",
      withStore(async ({ store }) => {
        await store.begin("u");
        await assert.rejects(store.begin("u"), (error: unknown) => {
          assert.ok(error instanceof LeaseTimeoutError);
          assert.equal(error.userId, "u");
          assert.ok(error.waited >= 50, `waited ${error.waited}`);
          return true;
        });
      }, { wait: 50 }),
    );

    it(
      "lets a new holder in once the lease expired",
      withStore(async ({ store, expireLeases }) => {
        await store.commit(await store.begin("u"), "one");
        const stale = await store.begin("u");
        await expireLeases();
        const fresh = await store.begin("u");
        assert.equal(fresh.state, "one");
        assert.notEqual(fresh.token, stale.token);
        await store.release(fresh);
      }),
    );

    it(
      "fences a commit whose lease expired while the state changed",
      withStore(async ({ store, expireLeases }) => {
        await store.commit(await store.begin("u"), "one");
        const stale = await store.begin("u");
        await expireLeases();
        await store.commit(await store.begin("u"), "newer");
        await assert.rejects(
          store.commit(stale, "stale", { aside: "kept?" }),
          (error: unknown) =>
            error instanceof LeaseLostError && error.userId === "u",
        );
        assert.equal(await store.get("u"), "newer");
        assert.deepEqual(await store.aside("u"), []);
      }),
    );

    it(
      "fences a stale commit after the state was deleted by a newer holder",
      withStore(async ({ store, expireLeases }) => {
        await store.commit(await store.begin("u"), "one");
        const stale = await store.begin("u");
        await expireLeases();
        await store.commit(await store.begin("u"), undefined);
        await assert.rejects(store.commit(stale, "stale"), LeaseLostError);
        assert.equal(await store.get("u"), undefined);
      }),
    );

    it(
      "fences a stale first commit of a new user once another committed",
      withStore(async ({ store, expireLeases }) => {
        const stale = await store.begin("new");
        await expireLeases();
        await store.commit(await store.begin("new"), "winner");
        await assert.rejects(store.commit(stale, "loser"), LeaseLostError);
        assert.equal(await store.get("new"), "winner");
      }),
    );

    it(
      "accepts a late commit when nobody changed the state, keeping the new holder's lease",
      withStore(async ({ store, expireLeases }) => {
        await store.commit(await store.begin("u"), "one");
        const late = await store.begin("u");
        await expireLeases();
        const holder = await store.begin("u");
        await store.commit(late, "late");
        assert.equal(await store.get("u"), "late");
        // the late commit released nothing of the holder's: its commit is
        // fenced because the state changed under it
        await assert.rejects(store.commit(holder, "holder"), LeaseLostError);
        assert.equal(await store.get("u"), "late");
      }),
    );

    it(
      "ignores a release by a holder whose lease expired",
      withStore(async ({ store, expireLeases }) => {
        const stale = await store.begin("u");
        await expireLeases();
        const holder = await store.begin("u");
        await store.release(stale);
        await assert.rejects(store.begin("u"), LeaseTimeoutError);
        await store.commit(holder, "ok");
        assert.equal(await store.get("u"), "ok");
      }, { wait: 50 }),
    );

    it(
      "keeps values aside in the commit, newest first, bounded",
      withStore(async ({ store }) => {
        for (let i = 0; i < ASIDE_LIMIT + 3; i++) {
          await store.commit(await store.begin("u"), `s${i}`, {
            aside: `raw${i}`,
          });
        }
        const kept = await store.aside("u");
        assert.equal(kept.length, ASIDE_LIMIT);
        assert.equal(kept[0], `raw${ASIDE_LIMIT + 2}`);
        assert.equal(kept.at(-1), "raw3");
        assert.deepEqual(await store.aside("other"), []);
      }),
    );

    it(
      "skips an event committed before, giving the lease back at once",
      withStore(async ({ store }) => {
        const first = await store.begin("u", { eventId: "e1" });
        assert.equal(first.duplicate ?? false, false);
        assert.equal(first.eventId, "e1");
        await store.commit(first, "after e1");
        const again = await store.begin("u", { eventId: "e1" });
        assert.equal(again.duplicate, true);
        // no lease is held: the next begin does not wait
        const next = await store.begin("u", { eventId: "e2" });
        assert.equal(next.duplicate ?? false, false);
        assert.equal(next.state, "after e1");
        await store.release(next); // released, not committed: e2 not seen
        const retry = await store.begin("u", { eventId: "e2" });
        assert.equal(retry.duplicate ?? false, false);
        await store.commit(retry, "after e2");
        assert.equal(
          (await store.begin("u", { eventId: "e2" })).duplicate,
          true,
        );
        assert.equal(
          (await store.begin("other", { eventId: "e1" })).duplicate ?? false,
          false,
        );
      }, { wait: 50 }),
    );

    it(
      "makes a concurrent redelivery wait, then see the first one's commit",
      withStore(async ({ store }) => {
        const first = await store.begin("u", { eventId: "e1" });
        const second = store.begin("u", { eventId: "e1" });
        await store.commit(first, "once");
        assert.equal((await second).duplicate, true);
        assert.equal(await store.get("u"), "once");
      }),
    );

    it(
      "holds a lease for leaseTtl of the store's clock, and a renewal for as long again",
      withStore(async ({ store, advance }) => {
        if (!advance) return;
        const ttl = store.timing.leaseTtl;
        const busy = () =>
          assert.rejects(store.begin("u", { wait: 0 }), LeaseTimeoutError);
        const lease = await store.begin("u");
        await advance(Math.floor(ttl * 2 / 3));
        await busy();
        assert.equal(await store.renew(lease), true);
        // past the first leaseTtl, within the renewed one
        await advance(Math.floor(ttl * 2 / 3));
        await busy();
        await store.commit(lease, "renewed");
        // a lease nobody renews ends after leaseTtl
        await store.begin("u");
        await advance(ttl);
        const next = await store.begin("u", { wait: 0 });
        assert.equal(next.state, "renewed");
        await store.release(next);
      }),
    );

    it(
      "refreshes the idle TTL with each commit, on the store's clock",
      withStore(async ({ store, advance, expireStates }) => {
        // a store without an idle TTL has no expireStates
        if (!advance || !expireStates) return;
        await store.commit(await store.begin("u"), "one");
        await advance(50_000);
        await store.commit(await store.begin("u"), "two");
        await advance(50_000); // 100 s after the first commit
        assert.equal(await store.get("u"), "two");
        await advance(10_001); // 60 s after the last
        assert.equal(await store.get("u"), undefined);
      }, { wait: 2_000, ttl: 60_000 }),
    );

    it(
      "remembers earlier event ids too, not only the last",
      withStore(async ({ store }) => {
        // the store must keep at least 2 (its seenEvents; 64 by default)
        for (const id of ["e1", "e2"]) {
          await store.commit(await store.begin("u", { eventId: id }), id);
        }
        for (const id of ["e1", "e2"]) {
          assert.equal(
            (await store.begin("u", { eventId: id })).duplicate,
            true,
            id,
          );
        }
      }),
    );

    it(
      "remembers no event id of a commit that was fenced",
      withStore(async ({ store, expireLeases }) => {
        await store.commit(await store.begin("u"), "one");
        const stale = await store.begin("u", { eventId: "e1" });
        await expireLeases();
        await store.commit(await store.begin("u"), "newer");
        await assert.rejects(store.commit(stale, "stale"), LeaseLostError);
        // the event was not handled: its redelivery must run
        const retry = await store.begin("u", { eventId: "e1" });
        assert.equal(retry.duplicate ?? false, false);
        await store.commit(retry, "retried");
        assert.equal(await store.get("u"), "retried");
      }),
    );

    it(
      "keeps event ids and values kept aside when the state is deleted",
      withStore(async ({ store }) => {
        await store.commit(await store.begin("u", { eventId: "e1" }), "one", {
          aside: "raw1",
        });
        // a reset of an invalid state: deleted, its raw value kept aside
        await store.commit(await store.begin("u"), undefined, {
          aside: "raw2",
        });
        assert.equal(await store.get("u"), undefined);
        assert.deepEqual(await store.aside("u"), ["raw2", "raw1"]);
        assert.equal(
          (await store.begin("u", { eventId: "e1" })).duplicate,
          true,
        );
      }),
    );

    it(
      "fences a stale commit after the state went back to what it read",
      withStore(async ({ store, expireLeases }) => {
        await store.commit(await store.begin("u"), "A");
        const stale = await store.begin("u");
        await expireLeases();
        await store.commit(await store.begin("u"), "B");
        await store.commit(await store.begin("u"), "A");
        // the same state, not the same version: two commits came between
        await assert.rejects(store.commit(stale, "stale"), LeaseLostError);
        assert.equal(await store.get("u"), "A");
      }),
    );

    it(
      "expires idle state after its TTL, refreshed by each commit",
      withStore(async ({ store, expireStates }) => {
        if (!expireStates) return;
        await store.commit(await store.begin("u"), "one");
        await store.commit(await store.begin("u"), "two");
        assert.equal(await store.get("u"), "two");
        await expireStates();
        assert.equal(await store.get("u"), undefined);
        assert.equal((await store.begin("u")).state, undefined);
      }, { wait: 2_000, ttl: 60_000 }),
    );
    it(
      "hands out tokens unique across instances on the same data",
      withStore(async ({ store, twin }) => {
        const other = twin?.() ?? store;
        const a = await store.begin("u");
        await store.commit(a, "from a");
        const b = await other.begin("u");
        assert.notEqual(b.token, a.token);
        assert.equal(b.state, "from a");
        await other.commit(b, "from b");
        assert.equal(await store.get("u"), "from b");
        assert.equal(await other.get("u"), "from b");
        // the commit released the lease: neither instance waits
        const c = await store.begin("u");
        assert.equal(c.state, "from b");
        assert.notEqual(c.token, b.token);
        await store.release(c);
        await other.release(await other.begin("u"));
      }, { wait: 50 }),
    );

    it(
      "never repeats a version: a stale commit is fenced after a create and delete",
      withStore(async ({ store, expireLeases }) => {
        const stale = await store.begin("u"); // a new user: no version
        await expireLeases();
        await store.commit(await store.begin("u"), "created");
        await store.commit(await store.begin("u"), undefined);
        assert.equal(await store.get("u"), undefined);
        await assert.rejects(store.commit(stale, "stale"), LeaseLostError);
        assert.equal(await store.get("u"), undefined);
        const fresh = await store.begin("u");
        assert.equal(fresh.state, undefined);
        await store.commit(fresh, "fresh");
        assert.equal(await store.get("u"), "fresh");
      }),
    );

    it(
      "says why a commit is fenced: expired, or overtaken while held",
      withStore(async ({ store, expireLeases }) => {
        const reason = (expected: LeaseLostReason) => (error: unknown) =>
          error instanceof LeaseLostError && error.reason === expected &&
          error.message.includes(
            expected === "expired"
              ? "lease expired"
              : "while the lease was held",
          );
        await store.commit(await store.begin("u"), "one");
        const late = await store.begin("u");
        await expireLeases();
        const holder = await store.begin("u");
        await store.commit(late, "late"); // accepted: nothing changed yet
        await assert.rejects(
          store.commit(holder, "holder"),
          reason("overtaken"),
        );
        await store.release(holder);
        const stale = await store.begin("u");
        await expireLeases();
        await store.commit(await store.begin("u"), "newer");
        await assert.rejects(store.commit(stale, "stale"), reason("expired"));
        assert.equal(await store.get("u"), "newer");
      }),
    );

    it(
      "deduplicates every event id, the empty one too",
      withStore(async ({ store }) => {
        await store.commit(await store.begin("u", { eventId: "" }), "one");
        assert.equal((await store.begin("u", { eventId: "" })).duplicate, true);
        const other = await store.begin("u", { eventId: ":" });
        assert.equal(other.duplicate ?? false, false);
        await store.commit(other, "two");
        assert.equal(
          (await store.begin("u", { eventId: ":" })).duplicate,
          true,
        );
        assert.equal(await store.get("u"), "two");
      }, { wait: 50 }),
    );

    it(
      "keeps a held lease alive on renew, and says when it was lost",
      withStore(async ({ store, expireLeases }) => {
        const lease = await store.begin("u");
        assert.equal(await store.renew(lease), true);
        await expireLeases();
        assert.equal(await store.renew(lease), false);
        const next = await store.begin("u");
        assert.equal(await store.renew(lease), false);
        assert.equal(await store.renew(next), true);
        await store.commit(next, "next");
        assert.equal(await store.renew(next), false);
        assert.ok(store.timing.leaseTtl > 0);
        assert.ok(store.timing.wait > 0);
        assert.equal(typeof store.timing.clock.now(), "number");
      }),
    );

    it(
      "lets the values kept aside and the event ids expire with the state",
      withStore(async ({ store, expireStates }) => {
        if (!expireStates) return;
        await store.commit(await store.begin("u", { eventId: "e1" }), "one", {
          aside: "raw",
        });
        assert.deepEqual(await store.aside("u"), ["raw"]);
        await expireStates();
        assert.equal(await store.get("u"), undefined);
        assert.deepEqual(await store.aside("u"), []);
        const again = await store.begin("u", { eventId: "e1" });
        assert.equal(again.duplicate ?? false, false);
        await store.release(again);
      }, { wait: 2_000, ttl: 60_000 }),
    );
    it(
      "never repeats a version: a stale commit is fenced after the state expired",
      withStore(async ({ store, expireLeases, expireStates }) => {
        if (!expireStates) return;
        await store.commit(await store.begin("u"), "one");
        const stale = await store.begin("u"); // read "one" and its version
        await expireLeases();
        await expireStates();
        assert.equal(await store.get("u"), undefined);
        // a new state's first version: never the one the stale lease read
        await store.commit(await store.begin("u"), "two");
        await assert.rejects(store.commit(stale, "stale"), LeaseLostError);
        assert.equal(await store.get("u"), "two");
      }, { wait: 2_000, ttl: 60_000 }),
    );
    it(
      "keeps a value aside in a commit that keeps its lease",
      withStore(async ({ store }) => {
        await store.commit(await store.begin("u"), "one");
        const lease = await store.begin("u");
        await store.commit(lease, "two", { aside: "raw", keep: true });
        await store.release(lease);
        assert.equal(await store.get("u"), "two");
        assert.deepEqual(await store.aside("u"), ["raw"]);
      }),
    );
    it(
      "commits a state whose idle ttl ran out while its lease was held",
      withStore(async ({ store, expireStates }) => {
        if (!expireStates) return;
        // with keep too: the commit of a timer replaced keeps its lease
        for (const keep of [false, true]) {
          await store.commit(await store.begin("u"), "one");
          const lease = await store.begin("u");
          await expireStates(); // shorter than the lease
          // a harness whose expireStates moves a clock past the lease too
          // cannot expire one without the other: nothing to check there
          if (!await store.renew(lease)) return;
          await store.commit(lease, `two ${keep}`, { keep });
          assert.equal(await store.get("u"), `two ${keep}`);
          if (keep) await store.release(lease);
        }
      }, { wait: 2_000, ttl: 1_000 }),
    );
    it(
      "fences a holder whose state a late commit replaced, after that state expired too",
      withStore(async ({ store, advance, expireLeases, expireStates }) => {
        if (!expireStates) return;
        const ttl = 60_000;
        const leaseTtl = store.timing.leaseTtl;
        // on a clock of its own, the holder renews its lease until the
        // state expired; leases and states that expire apart otherwise
        if (advance && (leaseTtl >= ttl || leaseTtl < 4)) return;
        await store.commit(await store.begin("u"), "one");
        const late = await store.begin("u");
        if (advance) await advance(leaseTtl + 1);
        else await expireLeases();
        // a harness whose expireLeases moves a clock past the idle TTL too
        // cannot expire one without the other: nothing to check there
        if (await store.get("u") !== "one") return;
        const holder = await store.begin("u"); // read "one"
        await store.commit(late, "late"); // accepted: nothing changed yet
        if (advance) {
          const step = Math.max(1, Math.floor(leaseTtl / 2));
          for (let passed = 0; passed <= ttl; passed += step) {
            await advance(step);
            assert.equal(await store.renew(holder), true);
          }
        } else await expireStates();
        assert.equal(await store.get("u"), undefined);
        // the holder read "one", which the late commit replaced: that the
        // late commit's state expired since does not make the read current
        await assert.rejects(store.commit(holder, "holder"), LeaseLostError);
        assert.equal(await store.get("u"), undefined);
      }, { wait: 2_000, ttl: 60_000 }),
    );
    it(
      "keeps an index of timers: due ones earliest first, entries removed one by one",
      withStore(async ({ store }) => {
        assert.deepEqual(await store.dueTimers(Infinity, 10), []);
        await store.schedule("b", 2_000);
        await store.schedule("a", 1_000);
        await store.schedule("a", 1_000); // idempotent
        await store.schedule("a", 3_000); // a second entry for the user
        await store.schedule("line\nbreak", 1_500);
        assert.deepEqual(await store.dueTimers(2_000, 10), [
          { userId: "a", due: 1_000 },
          { userId: "line\nbreak", due: 1_500 },
          { userId: "b", due: 2_000 },
        ]);
        assert.deepEqual(await store.dueTimers(Infinity, 1), [
          { userId: "a", due: 1_000 },
        ]);
        await store.unschedule("a", 1_000);
        await store.unschedule("a", 999); // not there: nothing happens
        assert.deepEqual(await store.dueTimers(5_000, 10), [
          { userId: "line\nbreak", due: 1_500 },
          { userId: "b", due: 2_000 },
          { userId: "a", due: 3_000 },
        ]);
        for (
          const [id, due] of [["line\nbreak", 1_500], ["b", 2_000], [
            "a",
            3_000,
          ]] as const
        ) {
          await store.unschedule(id, due);
        }
        assert.deepEqual(await store.dueTimers(Infinity, 10), []);
      }),
    );
    it(
      "keeps any user id and whole due time in the index as given",
      withStore(async ({ store }) => {
        const entries = [
          { userId: "", due: 0 },
          { userId: "~7\nx", due: 5 },
          { userId: "ü{%}", due: 2 ** 42 - 1 },
          { userId: "far", due: 2 ** 42 + 1 },
          { userId: "-1", due: -1 },
          // ids UTF-8 cannot carry, and ids that look escaped
          { userId: "\ud800", due: 7 },
          { userId: "a\udfff", due: 2 ** 42 + 3 },
          { userId: "%u0041", due: 8 },
          { userId: "%", due: 9 },
        ].sort((a, b) => a.due - b.due);
        for (const { userId, due } of entries) {
          await store.schedule(userId, due);
        }
        assert.deepEqual(await store.dueTimers(Infinity, 10), entries);
        for (const { userId, due } of entries) {
          await store.unschedule(userId, due);
        }
        assert.deepEqual(await store.dueTimers(Infinity, 10), []);
      }),
    );

    it(
      "claims due timers for one claimer at a time, until the claim ends",
      withStore(async ({ store, twin }) => {
        const other = twin ? twin() : store;
        assert.deepEqual(await store.claimTimers(5_000, 10, 1_000), {
          timers: [],
          next: undefined,
        });
        await store.schedule("a", 1_000);
        await store.schedule("line\nbreak", 1_500);
        await store.schedule("b", 2_000);
        await store.schedule("c", 3_000);
        const first = await store.claimTimers(2_000, 2, 10_000);
        assert.deepEqual(first, {
          timers: [{ userId: "a", due: 1_000 }, {
            userId: "line\nbreak",
            due: 1_500,
          }],
          next: 2_000,
        });
        // hidden from every claim until 12,000; the others are not
        assert.deepEqual(await other.claimTimers(2_500, 10, 10_000), {
          timers: [{ userId: "b", due: 2_000 }],
          next: 3_000,
        });
        assert.deepEqual(await other.claimTimers(11_999, 10, 10_000), {
          timers: [{ userId: "c", due: 3_000 }],
          next: 12_000,
        });
        // listed by when they are looked at next, with their due times
        assert.deepEqual(await store.dueTimers(Infinity, 10), [
          { userId: "a", due: 1_000 },
          { userId: "line\nbreak", due: 1_500 },
          { userId: "b", due: 2_000 },
          { userId: "c", due: 3_000 },
        ]);
        assert.deepEqual(await store.dueTimers(12_000, 10), [
          { userId: "a", due: 1_000 },
          { userId: "line\nbreak", due: 1_500 },
        ]);
        // the claim ends: a claimer that died leaves them to the next one
        assert.deepEqual(await other.claimTimers(12_000, 10, 10_000), {
          timers: [{ userId: "a", due: 1_000 }, {
            userId: "line\nbreak",
            due: 1_500,
          }],
          next: 12_500,
        });
        // removed once fired: never claimed again
        await store.unschedule("a", 1_000);
        await store.unschedule("line\nbreak", 1_500);
        assert.deepEqual(await store.claimTimers(50_000, 10, 10_000), {
          timers: [{ userId: "b", due: 2_000 }, { userId: "c", due: 3_000 }],
          next: 60_000,
        });
        await store.unschedule("b", 2_000);
        await store.unschedule("c", 3_000);
        assert.deepEqual(await store.claimTimers(Infinity, 10, 0), {
          timers: [],
          next: undefined,
        });
      }),
    );

    it(
      "makes a claimed entry due again when it is scheduled again",
      withStore(async ({ store }) => {
        await store.schedule("a", 1_000);
        assert.deepEqual(
          (await store.claimTimers(1_000, 10, 10_000)).timers,
          [{ userId: "a", due: 1_000 }],
        );
        // a timer armed again at the due time it fired from: due at once,
        // not when the claim ends
        await store.schedule("a", 1_000);
        assert.deepEqual(await store.claimTimers(1_000, 10, 10_000), {
          timers: [{ userId: "a", due: 1_000 }],
          next: 11_000,
        });
        await store.unschedule("a", 1_000);
      }),
    );

    it(
      "never gives an entry to two claimers at once",
      withStore(async ({ store, twin }) => {
        const stores = [store, twin ? twin() : store];
        const entries = Array.from({ length: 40 }, (_, i) => ({
          userId: `u${i}`,
          due: 1_000 + (i % 7),
        }));
        for (const { userId, due } of entries) {
          await store.schedule(userId, due);
        }
        const claims = await Promise.all(
          Array.from(
            { length: 10 },
            (_, i) => stores[i % 2]!.claimTimers(5_000, 5, 60_000),
          ),
        );
        const claimed = claims.flatMap((claim) =>
          claim.timers.map((t) => `${t.userId}@${t.due}`)
        );
        assert.equal(new Set(claimed).size, claimed.length, "claimed twice");
        assert.deepEqual(
          claimed.sort(),
          entries.map((t) => `${t.userId}@${t.due}`).sort(),
        );
        for (const { userId, due } of entries) {
          await store.unschedule(userId, due);
        }
      }),
    );

    it(
      "defers an entry, and never brings back one that was removed",
      withStore(async ({ store }) => {
        await store.schedule("a", 1_000);
        await store.deferTimer("a", 1_000, 5_000);
        assert.deepEqual(await store.dueTimers(4_999, 10), []);
        assert.deepEqual(await store.claimTimers(5_000, 10, 1_000), {
          timers: [{ userId: "a", due: 1_000 }],
          next: 6_000,
        });
        // a claimed entry is deferred too (a timer to try again sooner)
        await store.deferTimer("a", 1_000, 5_500);
        assert.deepEqual(await store.dueTimers(5_500, 10), [
          { userId: "a", due: 1_000 },
        ]);
        await store.unschedule("a", 1_000);
        await store.deferTimer("a", 1_000, 6_000);
        await store.deferTimer("never", 1_000, 6_000);
        assert.deepEqual(await store.dueTimers(Infinity, 10), []);
      }),
    );

    it(
      "changes the index for many users at once, each change as if alone",
      withStore(async ({ store }) => {
        const users = Array.from({ length: 300 }, (_, i) => `u${i}`);
        await Promise.all(users.map((id, i) => store.schedule(id, 1_000 + i)));
        assert.equal((await store.dueTimers(Infinity, 1_000)).length, 300);
        await Promise.all(
          users.map((id, i) =>
            i % 2
              ? store.unschedule(id, 1_000 + i)
              : store.deferTimer(id, 1_000 + i, 50_000)
          ),
        );
        assert.deepEqual(await store.dueTimers(49_999, 1_000), []);
        const left = await store.dueTimers(50_000, 1_000);
        assert.deepEqual(
          left.map((t) => t.userId).sort(),
          users.filter((_, i) => i % 2 === 0).sort(),
        );
        await Promise.all(left.map((t) => store.unschedule(t.userId, t.due)));
        assert.deepEqual(await store.dueTimers(Infinity, 1_000), []);
      }),
    );

    it(
      "tries once without waiting when asked to (wait: 0)",
      withStore(async ({ store }) => {
        const held = await store.begin("u");
        await assert.rejects(
          store.begin("u", { wait: 0 }),
          (error: unknown) =>
            error instanceof LeaseTimeoutError && error.userId === "u" &&
            error.waited < 60_000,
        );
        await store.release(held);
        const free = await store.begin("u", { wait: 0 });
        await store.commit(free, "taken at once");
        assert.equal(await store.get("u"), "taken at once");
      }, { wait: 60_000 }),
    );

    it(
      "scans every user with a state, page by page, and nothing else",
      withStore(async ({ store }) => {
        const ids = ["a", "", "x{y}", "%", "line\nbreak", "*", "[a]"];
        for (const id of ids) {
          await store.commit(await store.begin(id), `s:${id}`);
        }
        await store.commit(await store.begin("deleted"), "gone soon");
        await store.commit(await store.begin("deleted"), undefined);
        await store.release(await store.begin("released")); // never stored
        await store.schedule("a", 1_000); // the index of timers is no user
        const seen = new Map<string, string>();
        for await (const { userId, state } of store.scan({ count: 2 })) {
          seen.set(userId, state); // a user may come twice: same state
        }
        assert.deepEqual(
          [...seen].sort(([a], [b]) => a < b ? -1 : 1),
          ids.map((id) => [id, `s:${id}`]).sort(([a], [b]) => a! < b! ? -1 : 1),
        );
        await store.unschedule("a", 1_000);
      }),
    );

    it(
      "scans without taking or waiting for leases",
      withStore(async ({ store }) => {
        await store.commit(await store.begin("held"), "before");
        const lease = await store.begin("held");
        const seen: string[] = [];
        for await (const { userId, state } of store.scan()) {
          if (userId === "held") seen.push(state);
        }
        assert.deepEqual(seen, ["before"]);
        await store.commit(lease, "after"); // the lease is still this one's
        assert.equal(await store.get("held"), "after");
      }),
    );
  });
}
