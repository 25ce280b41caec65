import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { storeContract } from "../store/mod.ts";
import { FakeClock, MemoryStore } from "./mod.ts";

storeContract("MemoryStore", ({ wait, ttl }) => {
  const clock = new FakeClock();
  const leaseTtl = 10_000;
  const store = new MemoryStore({ clock, wait, ttl, leaseTtl });
  return Promise.resolve({
    store,
    expireLeases: () => Promise.resolve(clock.advance(leaseTtl)),
    expireStates: () => Promise.resolve(clock.advance(ttl ?? 0)),
    close: () => Promise.resolve(),
  });
}, { describe, it });

describe("MemoryStore", () => {
  it("lets a waiter in exactly when a crashed holder's lease expires", async () => {
    const clock = new FakeClock(1_000);
    const store = new MemoryStore({ clock, leaseTtl: 5_000, wait: 60_000 });
    await store.begin("u"); // never released
    const waiting = store.begin("u");
    clock.advance(4_999);
    await Promise.resolve();
    clock.advance(1);
    const lease = await waiting;
    assert.equal(clock.now(), 6_000);
    await store.release(lease);
  });

  it("counts users with live state", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock, ttl: 100 });
    await store.commit(await store.begin("a"), "1");
    clock.advance(50);
    await store.commit(await store.begin("b"), "2");
    assert.equal(store.size, 2);
    clock.advance(50);
    assert.equal(store.size, 1);
  });

  it("rejects options that are not positive times", () => {
    assert.throws(() => new MemoryStore({ leaseTtl: 0 }), RangeError);
    assert.throws(() => new MemoryStore({ wait: -1 }), RangeError);
    assert.throws(() => new MemoryStore({ ttl: Number.NaN }), RangeError);
  });
});

describe("FakeClock", () => {
  it("moves only when told and on sleep", async () => {
    const clock = new FakeClock(10);
    assert.equal(clock.now(), 10);
    await clock.sleep(5);
    clock.advance(1);
    assert.equal(clock.now(), 16);
    assert.throws(() => clock.advance(-1), RangeError);
  });
});
