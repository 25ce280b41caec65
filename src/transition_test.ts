// Transition listeners: the exact transitions of a small bot, and listeners
// that throw.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Node, Nodes, type StateStore, type Transition } from "../mod.ts";
import { FakeClock, MemoryStore } from "../testing/mod.ts";
import {
  type Event,
  observedBot,
  script,
  walked,
} from "../test_support/observed_bot.ts";
import { delegate } from "../test_support/delegate.ts";

describe("nodes.observe", () => {
  it("reports every outcome with node keys and times", async () => {
    const bot = observedBot();
    const seen: Transition<Event, number>[] = [];
    bot.nodes.observe((t) => void seen.push(t));
    await script(bot);
    const boom = seen[3]?.error;
    assert.ok(boom instanceof Error);
    assert.equal(boom.message, "the kitchen is on fire");
    assert.deepEqual(
      seen,
      walked.map((t) => t.outcome === "failed" ? { ...t, error: boom } : t),
    );
    // the only warning is the unreadable state's, not a listener's
    assert.equal(bot.warnings.length, 1);
    assert.match(String(bot.warnings[0]?.[0]), /Cannot restore the state/);
  });

  it("never lets a throwing listener break a transition: the logger hears it", async () => {
    const bot = observedBot();
    const thrown = new Error("listener bug");
    const rejected = new Error("async listener bug");
    const seen: string[] = [];
    bot.nodes.observe(() => {
      throw thrown;
    });
    bot.nodes.observe(() => Promise.reject(rejected));
    bot.nodes.observe((t) => void seen.push(`${t.to}: ${t.outcome}`));
    const result = await bot.nodes.route({ from: 1, id: 1, text: "hi" });
    assert.ok(result.handled && result.key === "menu");
    // the rejected promise is reported a few microtasks later
    for (let turn = 0; turn < 100 && bot.warnings.length < 2; turn++) {
      await Promise.resolve();
    }
    assert.deepEqual(seen, ["menu: committed"]);
    assert.deepEqual(bot.warnings, [
      ["A transition listener threw; the transition is not affected", thrown],
      [
        "A transition listener threw; the transition is not affected",
        rejected,
      ],
    ]);
    assert.equal(await bot.store.get("1"), '{"v":1,"node":"menu","data":null}');
  });

  it("stops a listener, and reports a failure with the id it refused", async () => {
    const bot = observedBot();
    const seen: string[] = [];
    const stop = bot.nodes.observe((t) =>
      void seen.push(`${t.outcome} ${String(t.userId)}`)
    );
    await assert.rejects(
      bot.nodes.route({ from: 1.5, id: 1, text: "hi" }),
      TypeError,
    );
    stop();
    stop(); // twice: nothing more
    await bot.nodes.route({ from: 1, id: 2, text: "hi" });
    assert.deepEqual(seen, ["failed 1.5"]);
  });
});

// "Zero cost when nobody listens": every step of observation (reading the
// clock, building the trace and the Transition, calling listeners) hangs on
// the trace that Nodes' one gate returns, and the trace starts and ends with
// a clock read. So a transition that reads no clock built nothing either.
describe("without listeners", () => {
  type Plain = { from?: number; id: number; text: string };
  /** Each clock read, and each read the timer code makes by design. */
  const reads = { clock: 0, timers: 0 };
  /** The timeout of Waiting, in ms. */
  let delay = 1_000;

  class Idle extends Node<null, Plain, number, null> {
    constructor() {
      super(null);
    }
    onEvent(_user: number, event: Plain): Idle | Waiting {
      if (event.text === "boom") throw new Error("boom");
      return event.text === "wait" ? new Waiting() : new Idle();
    }
  }
  class Waiting extends Idle {
    override timeout(): number {
      reads.timers++; // arming reads the clock once, for the due time
      return delay;
    }
    override onTimeout(): Idle {
      return new Idle();
    }
  }

  let walks = 0;
  /** Every kind and outcome of transition, on the bot given, new users. */
  async function walk(nodes: Nodes<null, Plain, number>, clock?: FakeClock) {
    const [a, b] = [2 * ++walks, 2 * walks + 1];
    await nodes.route({ from: a, id: a, text: "hi" }); // new user
    await nodes.route({ from: a, id: -a, text: "wait" }); // armed
    await nodes.route({ from: a, id: -a, text: "wait" }); // duplicate
    await nodes.route({ from: a, id: b, text: "boom" }).catch(() => {});
    await nodes.route({ id: a, text: "channel" }); // not ours
    await nodes.route({ from: 1.5, id: a, text: "hi" }).catch(() => {});
    clock?.advance(delay);
    reads.timers++; // runDue reads the clock once, for "now"
    assert.equal((await nodes.runDue()).length, 1); // timeout
    await nodes.user(b).to(new Idle());
    await nodes.user(b).reset();
  }

  function bot(store: StateStore) {
    return new Nodes<null, Plain, number>({
      store,
      nodes: { idle: Idle, waiting: Waiting },
      start: () => new Idle(),
      shared: null,
      userId: (event) => event.from,
      eventId: (event) => event.id,
      logger: { warn: () => {} },
    });
  }

  it("reads the injected clock only for timers", async () => {
    const clock = new FakeClock(0);
    const memory = new MemoryStore({ clock });
    const counting = {
      now: () => (reads.clock++, clock.now()),
      sleep: (ms: number) => clock.sleep(ms),
    };
    // Nodes times transitions on the store's clock; the store itself keeps
    // the uncounted one
    const nodes = bot(delegate(memory, {
      timing: { ...memory.timing, clock: counting },
    }));
    reads.clock = reads.timers = 0;
    await walk(nodes, clock);
    assert.equal(reads.timers, 2);
    assert.equal(reads.clock, reads.timers);

    // the same walk with a listener reads it around each transition: the
    // count above would see observation work
    const seen: string[] = [];
    const stop = nodes.observe((t) => void seen.push(t.outcome));
    reads.clock = reads.timers = 0;
    await walk(nodes, clock);
    assert.equal(seen.length, 9);
    assert.ok(reads.clock >= reads.timers + 2 * seen.length);

    stop();
    reads.clock = reads.timers = 0;
    await walk(nodes, clock);
    assert.equal(reads.clock, reads.timers);
    assert.equal(seen.length, 9);
  });

  it("never calls performance.now() on the system clock", async () => {
    // MemoryStore on the system clock reads Date.now(); Nodes times
    // transitions with performance.now(), and only for listeners
    const own = Object.getOwnPropertyDescriptor(performance, "now");
    const real = performance.now;
    let calls = 0;
    Object.defineProperty(performance, "now", {
      configurable: true,
      writable: true,
      value: () => (calls++, real.call(performance)),
    });
    try {
      const nodes = bot(new MemoryStore());
      delay = 0; // due at once on the system clock
      await walk(nodes);
      const without = calls;
      nodes.observe(() => {});
      await nodes.route({ from: 0, id: 0, text: "hi" });
      assert.equal(without, 0);
      assert.ok(calls - without >= 2, `${calls - without} calls`);
    } finally {
      if (own) Object.defineProperty(performance, "now", own);
      else delete (performance as { now?: unknown }).now;
      delay = 1_000;
    }
  });
});
