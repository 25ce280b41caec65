import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Node, Nodes } from "../mod.ts";
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
    advance: (ms) => Promise.resolve(clock.advance(ms)),
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
    // the last sleep (at most one backoff) may end by its real timer
    assert.ok(clock.now() >= 6_000, `took it at ${clock.now()}`);
    assert.ok(clock.now() <= 6_000 + 50, `took it at ${clock.now()}`);
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

class Tally
  extends Node<{ gate: Promise<void> }, string, string, { n: number }> {
  async onEvent(
    _user: string,
    event: string,
    shared: { gate: Promise<void> },
  ): Promise<Tally> {
    if (event === "slow") await shared.gate;
    return new Tally({ n: this.data.n + 1 });
  }
}

describe("FakeClock (issue 15, point 16)", () => {
  it("lets a waiter wait for a live holder as in real time, never taking its lease", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock, leaseTtl: 1_000, wait: 60_000 });
    let open!: () => void;
    const shared = { gate: new Promise<void>((resolve) => (open = resolve)) };
    const options = {
      store,
      nodes: { tally: Tally },
      start: () => new Tally({ n: 0 }),
      shared,
      userId: () => "u",
    };
    // two processes sharing one store
    const first = new Nodes<typeof shared, string, string>(options);
    const second = new Nodes<typeof shared, string, string>(options);
    await first.route("hi");
    const slow = first.route("slow"); // holds the lease until the gate opens
    const waiting = second.route("next"); // waits for the lease
    // the turns a spinning waiter would take to jump past the lease's expiry
    for (let i = 0; i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    open();
    const [slowResult, waitingResult] = await Promise.allSettled([
      slow,
      waiting,
    ]);
    assert.equal(
      slowResult.status,
      "fulfilled",
      String((slowResult as PromiseRejectedResult).reason),
    );
    assert.equal(waitingResult.status, "fulfilled");
    assert.deepEqual((await first.user("u").node())?.data, { n: 2 });
    assert.ok(clock.now() < 1_000, `fake time jumped to ${clock.now()}`);
  });
});

describe("outside attacker j: memory a long-running process gives back", () => {
  // a full garbage collection: V8's (Deno and Node, which CI runs with
  // --expose-gc); Bun's collector scans the stack conservatively
  const gc = (globalThis as { gc?: () => void }).gc;
  const measured = gc !== undefined && !("Bun" in globalThis);
  const heap = () => (gc!(), process.memoryUsage().heapUsed);

  it("frees the event ids and values kept aside of states whose idle TTL passed", async () => {
    if (!measured) return;
    const clock = new FakeClock();
    const store = new MemoryStore({ clock, ttl: 60_000 });
    const base = heap();
    for (let i = 0; i < 20_000; i++) {
      const lease = await store.begin(`user ${i}`, { eventId: `event ${i}` });
      await store.commit(lease, `state ${i}`, { aside: `raw ${i}` });
    }
    const stored = heap() - base;
    clock.advance(60_000);
    assert.equal(store.size, 0); // walks every entry, dropping the expired
    const left = heap() - base;
    assert.ok(
      left < stored / 10,
      `${left} bytes still held of ${stored} stored`,
    );
  });

  it("lets an idle Nodes and its store go, though its lease-renewal timer waits for its next tick", async () => {
    if (!measured) return;
    const made = async () => {
      const store = new MemoryStore(); // leaseTtl 30 s: a tick every 10 s
      const nodes = new Nodes<null, { from: number }, number>({
        store,
        nodes: { idle: Idle },
        start: () => new Idle(null),
        shared: null,
        userId: (event) => event.from,
      });
      await nodes.route({ from: 1 });
      return [new WeakRef(nodes), new WeakRef(store)];
    };
    const refs = await made();
    // a WeakRef keeps its target until the job that made it is over
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc!();
    assert.deepEqual(refs.map((ref) => ref.deref()), [undefined, undefined]);
  });
});

class Idle extends Node<null, { from: number }, number, null> {
  onEvent(): Idle {
    return new Idle(null);
  }
}
