/**
 * Test helpers for bots built with botnodes: an in-memory store and a fake
 * clock.
 *
 * Nothing here imports a test runner or grammY, so it works under
 * `deno test`, `bun test`, `node --test` and vitest alike.
 *
 * @example A store whose time a test controls
 * ```ts
 * import { FakeClock, MemoryStore } from "@botnodes/core/testing";
 *
 * const clock = new FakeClock();
 * const store = new MemoryStore({ clock, ttl: 1_000 });
 * const lease = await store.begin("1");
 * await store.commit(lease, "state");
 * clock.advance(1_000);
 * await store.get("1"); // undefined
 * ```
 *
 * @module
 */

export { FakeClock } from "./fake_clock.ts";
export { MemoryStore } from "./memory_store.ts";
