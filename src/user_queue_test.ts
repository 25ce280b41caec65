import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LeaseTimeoutError } from "./errors.ts";
import type { BeginOptions, Lease, StateStore } from "./store.ts";
import { AsyncLocalStorage } from "node:async_hooks";
import { inHook, runHook, UserQueue } from "./user_queue.ts";
import { MemoryStore } from "../testing/memory_store.ts";
import { FakeClock } from "../testing/fake_clock.ts";
import { deferred } from "../test_support/shop_bot.ts";
import { delegate } from "../test_support/delegate.ts";

/** A queue on `store` whose warnings are kept (each call gives its logger). */
function queueOn(store: StateStore = new MemoryStore()) {
  const warnings: string[] = [];
  const logger = { warn: (message: string) => void warnings.push(message) };
  const queue = new class extends UserQueue {
    override run<T>(
      id: string,
      fn: (lease: Lease) => Promise<T>,
      eventId?: string,
      once?: boolean,
    ): Promise<T> {
      return super.run(id, fn, eventId, once, logger);
    }
  }(store);
  return { queue, store, warnings };
}

/** A first call for user "1" that holds the user until `gate` resolves. */
async function holding(queue: UserQueue) {
  const gate = deferred();
  const held = deferred();
  const first = queue.run("1", async () => {
    held.resolve();
    await gate.promise;
  });
  await held.promise;
  return { first, gate };
}

/** The items stored for a user as a JSON array, and a commit adding one. */
const items = (lease: Lease): string[] =>
  lease.state === undefined ? [] : JSON.parse(lease.state);
const append = (queue: UserQueue, lease: Lease, item: string) =>
  queue.commit(lease, JSON.stringify([...items(lease), item]));

/** A store that counts calls and can make renewals fail. */
function spied(
  store: StateStore,
  renew: (lease: Lease) => Promise<boolean> = (lease) => store.renew(lease),
) {
  const calls = { renew: 0, release: 0 };
  const waiting: { count: number; resolve: () => void }[] = [];
  const spy = delegate(store, {
    release: (lease) => {
      calls.release++;
      return store.release(lease);
    },
    renew: (lease) => {
      calls.renew++;
      for (const w of waiting) if (calls.renew >= w.count) w.resolve();
      return renew(lease);
    },
  });
  /** Resolves once renew was called `count` times. */
  const renewed = (count: number) => {
    const d = deferred();
    waiting.push({ count, resolve: d.resolve });
    return d.promise;
  };
  return { spy, renewed, calls };
}

describe("UserQueue.run", () => {
  it("runs one user's calls one at a time, in call order", async () => {
    const { queue, store } = queueOn();
    let running = 0;
    const sent = Array.from({ length: 200 }, (_, i) => `${i}`);
    await Promise.all(sent.map((item) =>
      queue.run("1", async (lease) => {
        assert.equal(++running, 1, "one at a time");
        await new Promise((resolve) => setTimeout(resolve, 0));
        await append(queue, lease, item);
        running--;
      })
    ));
    assert.deepEqual(JSON.parse((await store.get("1"))!), sent);
  });

  it("runs different users concurrently", async () => {
    const { queue } = queueOn();
    const gate = deferred();
    const log: string[] = [];
    const first = queue.run("1", async () => {
      log.push("1 starts");
      await gate.promise;
      log.push("1 ends");
    });
    await queue.run("2", () => Promise.resolve(log.push("2 runs")));
    assert.deepEqual(log, ["1 starts", "2 runs"]);
    gate.resolve();
    await first;
    assert.deepEqual(log, ["1 starts", "2 runs", "1 ends"]);
  });

  it("releases the lease when fn throws or does not commit, not after a commit", async () => {
    const { spy, calls } = spied(new MemoryStore({ wait: 50 }));
    const { queue } = queueOn(spy);
    const boom = new Error("boom");
    await assert.rejects(
      queue.run("1", () => Promise.reject(boom)),
      (e) => e === boom,
    );
    assert.equal(calls.release, 1);
    await queue.run("1", () => Promise.resolve());
    assert.equal(calls.release, 2);
    await queue.run("1", (lease) => append(queue, lease, "x"));
    assert.equal(calls.release, 2);
    // every lease is free again: the store hands it out at once
    const lease = await spy.begin("1");
    assert.deepEqual(items(lease), ["x"]);
  });

  it("passes a duplicate event's lease as is, and neither renews nor releases it", async () => {
    const { spy, calls } = spied(new MemoryStore());
    const { queue } = queueOn(spy);
    await queue.run("1", (lease) => append(queue, lease, "a"), "e1");
    const again = await queue.run("1", (lease) => Promise.resolve(lease), "e1");
    assert.equal(again.duplicate, true);
    assert.equal(calls.release, 0);
    assert.equal(calls.renew, 0);
  });
});

describe("runHook", () => {
  it("ends the mark of a hook that throws at once, for what it left to run later", async () => {
    const store = new MemoryStore();
    let later: Promise<boolean> | undefined;
    assert.throws(
      () =>
        runHook(store, "1", () => {
          assert.equal(inHook(store, "1"), true);
          // runs in the hook's async context, once the hook is over
          later = Promise.resolve().then(() => inHook(store, "1"));
          throw new Error("the hook failed");
        }),
      /the hook failed/,
    );
    assert.equal(await later, false);
  });
});

describe("waiting in one process", () => {
  it("runs a call that waited in line in its own caller's async context", async () => {
    const context = new AsyncLocalStorage<string>();
    const { queue } = queueOn();
    const { first, gate } = await holding(queue);
    const seen: (string | undefined)[] = [];
    const calls = ["B", "C"].map((name) =>
      context.run(
        name,
        () =>
          queue.run("1", () => Promise.resolve(seen.push(context.getStore()))),
      )
    );
    gate.resolve();
    await Promise.all([first, ...calls]);
    assert.deepEqual(seen, ["B", "C"]);
  });

  it("tells a call that waited in line behind one from another user's handler apart from that handler", async () => {
    const { queue } = queueOn(new MemoryStore({ wait: 1_000 }));
    const x1Runs = deferred();
    const x1Ends = deferred();
    const user2Ends = deferred();
    // user 2's handler waits for user 1 (x1), and goes on after it
    const user2 = queue.run("2", async () => {
      await queue.run("1", async () => {
        x1Runs.resolve();
        await x1Ends.promise;
      });
      await user2Ends.promise;
    });
    await x1Runs.promise;
    // called from outside any handler, it waits in line behind x1: not
    // inside user 2's handler, so it may wait for user 2
    const x2 = queue.run("1", async () => {
      const turn = queue.run("2", () => Promise.resolve("user 2 later"));
      user2Ends.resolve();
      return await turn;
    });
    x1Ends.resolve();
    assert.equal(await x2, "user 2 later");
    await user2;
  });

  it("still fails at once a call that would wait for the handler it runs in, after waiting in line", async () => {
    const { queue } = queueOn(new MemoryStore({ wait: 1_000 }));
    const { first, gate } = await holding(queue); // user 1, from outside
    const user2 = queue.run("2", () =>
      queue.run("1", () =>
        // inside user 2's handler (through the call for user 1)
        queue.run("2", () => Promise.resolve("never"))));
    gate.resolve();
    await first;
    await assert.rejects(user2, /from inside their own handler/);
  });

  it("holds on to nothing of a call that timed out behind a handler that never settles", async () => {
    // a full garbage collection (V8's: Deno and Node, which CI runs with
    // --expose-gc; Bun's collector scans the stack conservatively, so that
    // an object may outlive its last reference there)
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined || "Bun" in globalThis) return;
    const { queue } = queueOn(new MemoryStore({ wait: 5 }));
    const { first, gate } = await holding(queue); // never settles meanwhile
    try {
      const refs: WeakRef<object>[] = [];
      for (let i = 0; i < 3; i++) {
        const payload = { event: `event ${i}` };
        refs.push(new WeakRef(payload));
        await assert.rejects(
          queue.run("1", () => Promise.resolve(payload.event)),
          LeaseTimeoutError,
        );
      }
      // a WeakRef keeps its target until the job that made it is over
      await new Promise((resolve) => setTimeout(resolve, 0));
      gc();
      assert.deepEqual(refs.map((ref) => ref.deref()), [
        undefined,
        undefined,
        undefined,
      ]);
      // the line still holds: the next call runs once the handler is over
      const next = queue.run("1", () => Promise.resolve("ran"));
      gate.resolve();
      assert.equal(await next, "ran");
    } finally {
      gate.resolve();
      await first;
    }
  });

  it("counts the whole wait, here and for another process's lease, in a LeaseTimeoutError", async () => {
    const clock = new FakeClock(0);
    const memory = new MemoryStore({ clock, wait: 1_000 });
    let begins = 0;
    const store = delegate(memory, {
      begin: (id, options) =>
        ++begins === 1
          ? memory.begin(id, options)
          // another process holds the lease for what was left of the wait
          : Promise.reject(new LeaseTimeoutError(id, options?.wait ?? -1)),
    });
    const { queue } = queueOn(store);
    const { first, gate } = await holding(queue);
    const second = queue.run("1", () => Promise.resolve());
    clock.advance(700); // queued behind the first, in this process
    gate.resolve();
    await first;
    await assert.rejects(second, (error: unknown) => {
      assert.ok(error instanceof LeaseTimeoutError);
      assert.equal(error.waited, 1_000); // 700 here, 300 for the lease
      assert.match(
        error.message,
        /still held by another handler after 1000 ms/,
      );
      return true;
    });
  });

  it(
    "fails a call queued behind a slow one after the store's wait, never runs it, and keeps the order of the rest",
    { timeout: 20_000 },
    async () => {
      const { queue } = queueOn(new MemoryStore({ wait: 50 }));
      const log: string[] = [];
      const gate = deferred();
      const held = deferred();
      const slow = queue.run("1", async () => {
        log.push("slow runs");
        held.resolve();
        await gate.promise;
      });
      await held.promise;
      await assert.rejects(
        queue.run("1", () => Promise.resolve(log.push("late runs"))),
        (error: unknown) => {
          assert.ok(error instanceof LeaseTimeoutError);
          assert.equal(error.userId, "1");
          assert.equal(error.waited, 50);
          // not "held by another handler": it waited in this process
          assert.match(
            error.message,
            /an earlier call for this user in this process was still running/,
          );
          return true;
        },
      );
      // queued behind the slow one
      const next = queue.run("1", () => Promise.resolve(log.push("next runs")));
      gate.resolve();
      await Promise.all([slow, next]);
      assert.deepEqual(log, ["slow runs", "next runs"]);
    },
  );
});

describe("the store's wait bounds the whole wait", () => {
  it("a call queued here begins with what is left of the wait, not all of it", async () => {
    const clock = new FakeClock();
    const waits: (number | undefined)[] = [];
    const store = new class extends MemoryStore {
      override begin(id: string, options?: BeginOptions) {
        waits.push(options?.wait);
        return super.begin(id, options);
      }
    }({ wait: 10_000, clock });
    const { queue } = queueOn(store);
    const { first, gate } = await holding(queue);
    const second = queue.run("1", () => Promise.resolve("ran"));
    clock.advance(7_000); // spent waiting behind the first call
    gate.resolve();
    await first;
    assert.equal(await second, "ran");
    // the first begins with the store's own wait; the second with 3 s left
    assert.deepEqual(waits, [undefined, 3_000]);
  });
});

describe("calls for a user from inside their own function", () => {
  it("fail at once when they close a cycle of waits through other users", async () => {
    const { queue } = queueOn();
    const all = deferred();
    let holding = 0;
    const results: string[] = [];
    // 1 waits for 2, 2 for 3, 3 for 1: the last to ask closes the cycle
    const calls = ["1", "2", "3"].map((user, i) =>
      queue.run(user, async () => {
        if (++holding === 3) all.resolve();
        await all.promise;
        const next = ["2", "3", "1"][i]!;
        await queue.run(next, () => Promise.resolve()).then(
          () => results.push(`${user} -> ${next}`),
          (error: Error) => results.push(`${user}: ${error.message}`),
        );
      })
    );
    await Promise.all(calls);
    assert.equal(results.length, 3);
    assert.match(
      results[0]!,
      /^3: Cannot wait for user "1" from inside the handler of user "3": the handler of user "1" waits for user "3" \(directly or through other users\)/,
    );
    // once 3 is over, 2 goes on, then 1
    assert.deepEqual(results.slice(1), ["2 -> 3", "1 -> 2"]);
  });

  const refused =
    /^Cannot wait for user "1" from inside their own handler: it would wait for itself forever/;

  it("fail at once instead of waiting for themselves forever", {
    timeout: 20_000,
  }, async () => {
    const { queue } = queueOn();
    const errors: unknown[] = [];
    await queue.run("1", async () => {
      await queue.run("1", () => Promise.resolve()).catch((error) =>
        errors.push(error)
      );
      // also from inside another user's call inside it
      await queue.run(
        "2",
        () =>
          queue.run("1", () => Promise.resolve()).catch((error) =>
            errors.push(error)
          ),
      );
    });
    assert.equal(errors.length, 2);
    for (const error of errors) {
      assert.ok(error instanceof Error);
      assert.match(error.message, refused);
    }
  });

  it("still run for other users, on other queues, and once the call is over", async () => {
    const store = new MemoryStore();
    const { queue } = queueOn(store);
    const other = queueOn(store).queue;
    const log: string[] = [];
    let later: Promise<unknown> | undefined;
    const over = deferred();
    await queue.run("1", async () => {
      await queue.run("2", () => Promise.resolve(log.push("2 runs")));
      // another queue's user "1" is another lease holder: it waits for
      // the store's lease, so it is started, not awaited, here
      later = over.promise.then(() =>
        Promise.all([
          queue.run("1", () => Promise.resolve(log.push("1 runs after"))),
          other.run("1", () => Promise.resolve(log.push("other runs"))),
        ])
      );
      log.push("1 done");
    });
    over.resolve();
    await later;
    assert.deepEqual(log.slice(0, 2), ["2 runs", "1 done"]);
    assert.deepEqual(log.slice(2).sort(), ["1 runs after", "other runs"]);
  });
});

describe("a call slower than the lease", () => {
  it(
    "keeps the lease while it runs 3x longer: a second queue waits, then runs on its state",
    { timeout: 30_000 },
    async () => {
      const store = new MemoryStore({ leaseTtl: 300, wait: 20_000 });
      const { spy, renewed, calls } = spied(store);
      const a = queueOn(spy).queue;
      const b = queueOn(store).queue;
      const order: string[] = [];
      const aRunning = deferred();
      const bRunning = deferred();
      // 9 renewals, one every 100 ms: the call runs 3 lease times
      const threeLeases = renewed(9);
      const first = a.run("1", async (lease) => {
        order.push("a runs");
        aRunning.resolve();
        await Promise.race([threeLeases, bRunning.promise]);
        order.push("a done");
        await append(a, lease, "a");
      });
      await aRunning.promise;
      const second = b.run("1", async (lease) => {
        order.push("b runs");
        bRunning.resolve();
        await append(b, lease, "b");
      });
      await first; // committed: the lease was never lost
      await second;
      assert.deepEqual(order, ["a runs", "a done", "b runs"]);
      assert.ok(calls.renew >= 9);
      assert.deepEqual(JSON.parse((await store.get("1"))!), ["a", "b"]);
    },
  );

  for (const failure of ["returns false", "throws"]) {
    it(`reports a renewal that ${failure} once, and goes on to commit`, {
      timeout: 30_000,
    }, async () => {
      const store = new MemoryStore({ leaseTtl: 30 });
      const { spy, renewed } = spied(
        store,
        () =>
          failure === "throws"
            ? Promise.reject(new Error("store down"))
            : Promise.resolve(false),
      );
      const { queue, warnings } = queueOn(spy);
      await queue.run("1", async (lease) => {
        await renewed(3);
        await append(queue, lease, "tea");
      });
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(
        warnings[0]!,
        failure === "throws"
          ? /^Cannot keep the lease of user "1": the store failed/
          : /^Cannot keep the lease of user "1": it was lost/,
      );
      assert.deepEqual(JSON.parse((await store.get("1"))!), ["tea"]);
    });
  }

  it("keeps renewing a held lease when only the queue reaches what its function awaits", async () => {
    // a full garbage collection (V8's; see above): the renewal timer holds
    // an idle queue weakly, and must not let a busy one go
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined || "Bun" in globalThis) return;
    let finished = false;
    const ran = (async () => {
      // nothing outside the queue reaches this function's chain: the
      // renewal (through the store) is what resolves what it awaits
      const { spy, renewed } = spied(new MemoryStore({ leaseTtl: 30 }));
      await queueOn(spy).queue.run("1", () => renewed(3));
      finished = true;
    })();
    for (let i = 0; i < 20 && !finished; i++) {
      // a WeakRef keeps its target until the job that read it is over
      await new Promise((resolve) => setTimeout(resolve, 2));
      gc();
    }
    // without the queue held, its timer stopped and the function never ends
    let guard: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      ran,
      new Promise((_, reject) => {
        guard = setTimeout(
          () => reject(new Error("the lease was no longer renewed")),
          5_000,
        );
      }),
    ]).finally(() => clearTimeout(guard));
    assert.ok(finished);
  });

  it("reports no lost lease when a renewal finds it released by the commit", async () => {
    const store = new MemoryStore({ leaseTtl: 30 });
    // each renewal is answered when the test says so
    const answers: (() => Promise<void>)[] = [];
    const { spy, renewed } = spied(
      store,
      (lease) =>
        new Promise<boolean>((resolve) => {
          answers.push(() => store.renew(lease).then(resolve));
        }),
    );
    const { queue, warnings } = queueOn(spy);
    let answered = 0;
    await queue.run("1", async (lease) => {
      await renewed(1); // a renewal is on its way...
      await append(queue, lease, "tea"); // ...the commit releases the lease...
      // ...and then the renewal is answered (false: no lease), while the
      // handler still runs (a listener, the rest of onEnter's work)
      for (const answer of answers.splice(0)) await answer(), answered++;
    });
    assert.equal(answered, 1);
    assert.deepEqual(warnings, []);
    assert.deepEqual(JSON.parse((await store.get("1"))!), ["tea"]);
  });

  it("makes one renewal timer for events that follow each other, and stops it once idle", async () => {
    const real = {
      set: globalThis.setInterval,
      clear: globalThis.clearInterval,
    };
    const made: unknown[] = [];
    const cleared = deferred();
    let clears = 0;
    const g = globalThis as unknown as Record<string, unknown>;
    g.setInterval = (...args: Parameters<typeof setInterval>) => {
      const timer = real.set(...args);
      made.push(timer);
      return timer;
    };
    g.clearInterval = (timer: Parameters<typeof clearInterval>[0]) => {
      real.clear(timer);
      if (made.includes(timer)) clears++, cleared.resolve();
    };
    try {
      const { spy, calls } = spied(new MemoryStore({ leaseTtl: 30 }));
      const { queue } = queueOn(spy);
      for (const item of ["a", "b", "c", "d"]) {
        await queue.run("1", (lease) => append(queue, lease, item));
      }
      assert.equal(made.length, 1, "one timer for the 4 events");
      assert.equal(clears, 0, "kept between events");
      // its next tick finds no lease held; the timer no longer keeps the
      // process alive, so this test does while it waits (and fails if the
      // tick never comes)
      let guard: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        cleared.promise,
        new Promise((_, reject) => {
          guard = setTimeout(() => reject(new Error("never stopped")), 5_000);
        }),
      ]).finally(() => clearTimeout(guard));
      assert.equal(clears, 1);
      assert.equal(calls.renew, 0, "nothing held, nothing renewed");
      await queue.run("1", (lease) => append(queue, lease, "e"));
      assert.equal(made.length, 2, "made again for the next event");
      assert.deepEqual(JSON.parse((await spy.get("1"))!), [
        "a",
        "b",
        "c",
        "d",
        "e",
      ]);
    } finally {
      g.setInterval = real.set;
      g.clearInterval = real.clear;
    }
  });

  it("renews nothing once no lease is held", async () => {
    const { spy, calls } = spied(new MemoryStore({ leaseTtl: 30 }));
    const { queue } = queueOn(spy);
    await queue.run("1", () => Promise.resolve());
    const before = calls.renew;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(calls.renew, before);
  });
});
