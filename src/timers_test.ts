// Durable timeouts: a node's timer fires once per arming, under the user's
// lease, from runDue or the runTimers loop; answering, moving or resetting
// the user replaces or removes it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { Node, type NodeClass } from "./node.ts";
import { Nodes } from "./nodes.ts";
import { FakeClock, MemoryStore } from "../testing/mod.ts";
import type { StateStore } from "./store.ts";
import { delegate } from "../test_support/delegate.ts";

type Event = { from: number; text: string };
type Shared = { said: string[]; failNext: number };

/** Waits for an answer; reminds once after a minute, then gives up. */
class Asking extends Node<Shared, Event, number, { reminded: boolean }> {
  static override schema = z.object({ reminded: z.boolean() });
  override timeout() {
    return this.data.reminded ? 600_000 : 60_000;
  }
  override onTimeout(user: number, shared: Shared): Asking | Gone {
    if (shared.failNext > 0) {
      shared.failNext--;
      throw new Error("the reminder could not be sent");
    }
    shared.said.push(
      this.data.reminded ? `${user} gone` : `${user} still there?`,
    );
    return this.data.reminded ? new Gone() : new Asking({ reminded: true });
  }
  onEvent(user: number, event: Event, shared: Shared): Asking | Gone {
    shared.said.push(`${user}: ${event.text}`);
    return event.text === "bye" ? new Gone() : new Asking({ reminded: false });
  }
}

class Gone extends Node<Shared, Event, number, null> {
  constructor() {
    super(null);
  }
  onEvent(): Asking {
    return new Asking({ reminded: false });
  }
}

/** The bot of these tests; `asking` may be another class for that key. */
function bot(
  store: StateStore = new MemoryStore({ clock: new FakeClock() }),
  asking:
    & NodeClass<Shared, Event, number>
    & (new (data: { reminded: boolean }) => Node<Shared, Event, number>) =
      Asking,
) {
  const shared: Shared = { said: [], failNext: 0 };
  const warnings: string[] = [];
  const nodes = new Nodes<Shared, Event, number>({
    store,
    nodes: { asking, gone: Gone },
    start: () => new asking({ reminded: false }),
    shared,
    userId: (event) => event.from,
    logger: { warn: (message) => void warnings.push(message) },
  });
  const clock = store.timing.clock as FakeClock;
  return { nodes, store, shared, clock, warnings };
}

const keyOf = async (nodes: Nodes<Shared, Event, number>, user: number) => {
  const node = await nodes.user(user).node();
  return node && nodes.keyOf(node);
};

describe("timeouts", () => {
  it("fire once per arming, after the due time, escalating from the data", async () => {
    const { nodes, shared, clock, store } = bot();
    await nodes.route({ from: 1, text: "hi" });
    clock.advance(59_999);
    assert.deepEqual(await nodes.runDue(), []);
    clock.advance(1);
    const fired = await nodes.runDue();
    assert.deepEqual(fired.map((f) => [f.userId, f.key]), [[1, "asking"]]);
    assert.deepEqual(await nodes.runDue(), [], "once per arming");
    clock.advance(600_000);
    assert.deepEqual((await nodes.runDue()).map((f) => f.key), ["gone"]);
    assert.deepEqual(shared.said, ["1 still there?", "1 gone"]);
    assert.equal(await keyOf(nodes, 1), "gone");
    assert.deepEqual(await store.dueTimers(Infinity, 10), [], "no timer left");
  });

  it("count from a deadline in the data: timeout() gets the store clock's now, so staying does not push it back", async () => {
    const clock = new FakeClock();
    type Quiz = { deadline: number; tries: number };
    const said: string[] = [];
    class Question extends Node<null, Event, number, Quiz> {
      override timeout(now: number): number {
        return Math.max(0, this.data.deadline - now);
      }
      override onTimeout(): Done {
        said.push(`time is up after ${this.data.tries} tries`);
        return new Done(null);
      }
      onEvent(_user: number, event: Event): Question | Done {
        return event.text === "42"
          ? new Done(null)
          : new Question({ ...this.data, tries: this.data.tries + 1 });
      }
    }
    class Done extends Node<null, Event, number, null> {
      onEvent(): Question {
        return new Question({ deadline: clock.now() + 30_000, tries: 0 });
      }
    }
    const nodes = new Nodes<null, Event, number>({
      store: new MemoryStore({ clock }),
      nodes: { question: Question, done: Done },
      start: () => new Done(null),
      shared: null,
      userId: (event) => event.from,
    });
    await nodes.route({ from: 1, text: "hi" });
    await nodes.route({ from: 1, text: "quiz" }); // asked: open for 30 s
    for (const answer of ["1", "2", "3"]) {
      clock.advance(9_000);
      await nodes.route({ from: 1, text: answer }); // wrong: stays
    }
    clock.advance(2_999);
    assert.deepEqual(await nodes.runDue(), []);
    clock.advance(1);
    assert.deepEqual((await nodes.runDue()).map((f) => f.key), ["done"]);
    assert.deepEqual(said, ["time is up after 3 tries"]);
  });

  it("never fire a timer the user answered before", async () => {
    const { nodes, shared, clock, store } = bot();
    await nodes.route({ from: 1, text: "hi" });
    clock.advance(30_000);
    await nodes.route({ from: 1, text: "bye" });
    assert.deepEqual(await store.dueTimers(Infinity, 10), []);
    // an index entry left behind (a crash between commit and cleanup)
    await store.schedule("1", 60_000);
    clock.advance(60_000);
    assert.deepEqual(await nodes.runDue(), []);
    assert.deepEqual(shared.said, ["1: bye"]);
    assert.deepEqual(await store.dueTimers(Infinity, 10), []);
  });

  it("are replaced by entering any node and removed by reset", async () => {
    const { nodes, clock, store } = bot();
    await nodes.route({ from: 1, text: "hi" }); // due at 60,000
    clock.advance(10_000);
    await nodes.route({ from: 1, text: "again" }); // due at 70,000
    assert.deepEqual(await store.dueTimers(Infinity, 10), [
      { userId: "1", due: 70_000 },
    ]);
    await nodes.user(1).to(new Asking({ reminded: true })); // 610,000
    assert.deepEqual(await store.dueTimers(Infinity, 10), [
      { userId: "1", due: 610_000 },
    ]);
    await nodes.user(1).reset();
    assert.deepEqual(await store.dueTimers(Infinity, 10), []);
    clock.advance(1_000_000);
    assert.deepEqual(await nodes.runDue(), []);
  });

  it("write nothing when onTimeout throws, and try again later, backing off", async () => {
    const { nodes, shared, clock, warnings } = bot();
    await nodes.route({ from: 1, text: "hi" });
    shared.failNext = 2;
    clock.advance(60_000);
    assert.deepEqual(await nodes.runDue(), []);
    assert.equal(await keyOf(nodes, 1), "asking");
    assert.match(warnings.join("\n"), /trying again in 1000 ms/);
    clock.advance(999);
    assert.deepEqual(await nodes.runDue(), [], "not before the backoff");
    clock.advance(1);
    assert.deepEqual(await nodes.runDue(), []);
    assert.match(warnings.join("\n"), /trying again in 2000 ms/);
    clock.advance(2_000);
    assert.deepEqual((await nodes.runDue()).map((f) => f.userId), [1]);
    assert.deepEqual(shared.said, ["1 still there?"]);
  });

  it("run one after the other with an event of the same user, never both on one state", async () => {
    const { nodes, shared, clock } = bot();
    await nodes.route({ from: 1, text: "hi" });
    clock.advance(60_000);
    const [fired] = await Promise.all([
      nodes.runDue(),
      nodes.route({ from: 1, text: "here" }),
    ]);
    // either the timer fired first and the event found the reminder node, or
    // the event came first and the timer was dropped
    if (fired.length === 1) {
      assert.deepEqual(shared.said, ["1 still there?", "1: here"]);
    } else assert.deepEqual(shared.said, ["1: here"]);
    assert.deepEqual(
      (await nodes.user(1).node())?.data,
      { reminded: false },
    );
  });

  it("share the work between processes: each round claims timers of its own", async () => {
    const store = new MemoryStore({ clock: new FakeClock() });
    const one = bot(store);
    const two = bot(delegate(store)); // another process: a store object of its own
    for (let user = 1; user <= 10; user++) {
      await one.nodes.route({ from: user, text: "hi" });
    }
    one.clock.advance(60_000);
    const [a, b] = await Promise.all([
      one.nodes.runDue({ limit: 5 }),
      two.nodes.runDue({ limit: 5 }),
    ]);
    const users = (fired: typeof a) => fired.map((f) => f.userId);
    assert.equal(a.length, 5);
    assert.equal(b.length, 5);
    assert.deepEqual(
      [...users(a), ...users(b)].sort((x, y) => x - y),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.deepEqual([...one.warnings, ...two.warnings], []);
  });

  it("do not hold up a round for a busy user, whose timer is looked at again a second later", async () => {
    const { nodes, shared, clock, store, warnings } = bot();
    await nodes.route({ from: 1, text: "hi" });
    await nodes.route({ from: 2, text: "hi" });
    clock.advance(60_000);
    const busy = await store.begin("1"); // an event elsewhere holds user 1
    const fired = await nodes.runDue();
    assert.deepEqual(fired.map((f) => f.userId), [2]);
    assert.equal(clock.now(), 60_000, "no wait for the lease");
    assert.deepEqual(warnings, [], "a busy user is no failure");
    assert.deepEqual(await store.dueTimers(60_999, 10), []);
    assert.deepEqual(await store.dueTimers(61_000, 10), [
      { userId: "1", due: 60_000 },
    ]);
    await store.release(busy);
    clock.advance(1_000);
    assert.deepEqual((await nodes.runDue()).map((f) => f.userId), [1]);
    assert.deepEqual(shared.said, ["2 still there?", "1 still there?"]);
  });

  it("come back when the claim of a process that died ends (after leaseTtl)", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore({ clock, leaseTtl: 10_000 });
    const { nodes } = bot(store);
    await nodes.route({ from: 1, text: "hi" });
    clock.advance(60_000);
    // a process claims it, then dies before firing it
    const { timers } = await store.claimTimers(clock.now(), 100, 10_000);
    assert.deepEqual(timers, [{ userId: "1", due: 60_000 }]);
    assert.deepEqual(await nodes.runDue(), []);
    clock.advance(9_999);
    assert.deepEqual(await nodes.runDue(), []);
    clock.advance(1);
    assert.deepEqual((await nodes.runDue()).map((f) => f.userId), [1]);
    assert.deepEqual(await nodes.runDue(), [], "once per arming");
  });

  it("refuse a class with timeout() but no onTimeout()", () => {
    class Broken extends Node<Shared, Event, number, null> {
      constructor() {
        super(null);
      }
      override timeout() {
        return 1_000;
      }
      onEvent(): Broken {
        return new Broken();
      }
    }
    assert.throws(
      () =>
        new Nodes<Shared, Event, number>({
          store: new MemoryStore(),
          nodes: { broken: Broken },
          start: () => new Broken(),
          shared: { said: [], failNext: 0 },
          userId: (event) => event.from,
        }),
      (error: unknown) =>
        error instanceof TypeError &&
        /"broken": it has a timeout\(\) but no onTimeout\(\)/.test(
          error.message,
        ),
    );
  });

  it("refuse a timeout that is negative, not a number or absurd, writing nothing", async () => {
    for (const bad of [-1, NaN, Infinity, 1e15, "60000"]) {
      class Odd extends Node<Shared, Event, number, null> {
        constructor() {
          super(null);
        }
        override timeout() {
          return bad as number;
        }
        override onTimeout() {
          return new Odd();
        }
        onEvent(): Odd {
          return new Odd();
        }
      }
      const store = new MemoryStore();
      const nodes = new Nodes<Shared, Event, number>({
        store,
        nodes: { odd: Odd },
        start: () => new Odd(),
        shared: { said: [], failNext: 0 },
        userId: (event) => event.from,
      });
      await assert.rejects(
        nodes.route({ from: 1, text: "hi" }),
        (error: unknown) =>
          error instanceof RangeError &&
          // a string shown quoted, not as the number it reads like
          error.message.includes(
            `timeout() returned ${
              typeof bad === "string" ? `"${bad}"` : String(bad)
            }, not`,
          ),
        String(bad),
      );
      assert.equal(await store.get("1"), undefined);
      assert.deepEqual(await store.dueTimers(Infinity, 10), []);
    }
  });

  it("keep number ids numbers in onTimeout", async () => {
    const { nodes, clock } = bot();
    await nodes.route({ from: 42, text: "hi" });
    clock.advance(60_000);
    const [fired] = await nodes.runDue();
    assert.equal(fired?.userId, 42);
  });

  it("fire from the loop, which stops when aborted", async () => {
    let fired!: () => void;
    const done = new Promise<void>((resolve) => fired = resolve);
    class Quick extends Node<Shared, Event, number, null> {
      constructor() {
        super(null);
      }
      override timeout() {
        return 0;
      }
      override onTimeout() {
        fired();
        return new Gone();
      }
      onEvent(): Quick {
        return new Quick();
      }
    }
    const store = new MemoryStore();
    const nodes = new Nodes<Shared, Event, number>({
      store,
      nodes: { quick: Quick, gone: Gone },
      start: () => new Quick(),
      shared: { said: [], failNext: 0 },
      userId: (event) => event.from,
    });
    const stop = new AbortController();
    const loop = nodes.runTimers({ signal: stop.signal, interval: 5 });
    await nodes.route({ from: 1, text: "hi" });
    await done;
    stop.abort();
    await loop;
    const node = await nodes.user(1).node();
    assert.equal(node && nodes.keyOf(node), "gone");
  });
});

/** Due at a fixed moment whatever the time of entering ("remind at 17:50"). */
const DEADLINE = 100_000;
class Deadline extends Node<Shared, Event, number, null> {
  constructor() {
    super(null);
  }
  static clock: FakeClock;
  override timeout() {
    return Math.max(0, DEADLINE - Deadline.clock.now());
  }
  override onTimeout(user: number, shared: Shared): Idle {
    shared.said.push(`${user} deadline`);
    return new Idle();
  }
  onEvent(): Idle {
    return new Idle();
  }
}
class Idle extends Node<Shared, Event, number, null> {
  constructor() {
    super(null);
  }
  onEvent(): Deadline {
    return new Deadline();
  }
}

/** Times out at once, again and again: `count` in its data. */
class Ticking extends Node<Shared, Event, number, { count: number }> {
  static override schema = z.object({ count: z.number() });
  override timeout() {
    return this.data.count < 3 ? 0 : undefined;
  }
  override onTimeout(user: number, shared: Shared): Ticking {
    shared.said.push(`${user} tick ${this.data.count}`);
    return new Ticking({ count: this.data.count + 1 });
  }
  onEvent(): Ticking {
    return new Ticking({ count: 0 });
  }
}

describe("timers and the index", () => {
  it("a timer replaced while another process arms the same one again is not lost", async () => {
    // A moves the user off Deadline; its removal of the old index entry is
    // slow. B puts the user back on Deadline: the same user and due time, so
    // the same index entry. The removal must happen before B can arm it.
    let sleeping!: () => void;
    const slept = new Promise<void>((resolve) => sleeping = resolve);
    const clock = new class extends FakeClock {
      override sleep(ms: number) {
        sleeping(); // someone waits for a lease
        return super.sleep(ms);
      }
    }();
    Deadline.clock = clock;
    let removing!: () => void;
    const removal = new Promise<void>((resolve) => removing = resolve);
    let gate!: () => void;
    const opened = new Promise<void>((resolve) => gate = resolve);
    const store = new MemoryStore({ clock });
    // A's view of the shared store: its unschedule is slow
    const a = delegate(store, {
      unschedule: async (userId, due) => {
        removing();
        await opened;
        return store.unschedule(userId, due);
      },
    });
    const make = (s: StateStore) =>
      new Nodes<Shared, Event, number>({
        store: s,
        nodes: { deadline: Deadline, idle: Idle },
        start: () => new Deadline(),
        shared: { said: [], failNext: 0 },
        userId: (event) => event.from,
      });
    const [nodesA, nodesB] = [make(a), make(store)];
    await nodesB.route({ from: 1, text: "hi" }); // on Deadline, armed
    const moving = nodesA.route({ from: 1, text: "off" }); // to Idle
    await removal; // A commits, then takes the old entry out, slowly
    const back = nodesB.route({ from: 1, text: "back" }); // to Deadline
    await Promise.race([back, slept]); // B done, or B waiting for A's lease
    gate();
    await Promise.all([moving, back]);
    clock.advance(DEADLINE);
    const fired = await nodesB.runDue();
    assert.deepEqual(fired.map((f) => f.key), ["idle"], "the timer fired");
  });

  it("a timer armed again at the due time it fired from fires on time", async () => {
    const shared: Shared = { said: [], failNext: 0 };
    const ticking = new Nodes<Shared, Event, number>({
      store: new MemoryStore({ clock: new FakeClock() }), // time stands still
      nodes: { ticking: Ticking },
      start: () => new Ticking({ count: 0 }),
      shared,
      userId: (event) => event.from,
    });
    await ticking.route({ from: 1, text: "go" });
    // each round fires the tick armed by the one before, at the same ms
    for (let round = 0; round < 3; round++) await ticking.runDue();
    assert.deepEqual(shared.said, ["1 tick 0", "1 tick 1", "1 tick 2"]);
  });
});

describe("timers fired from inside a handler", () => {
  it("put off the handler's own user's timer as busy, on this Nodes or another on the store", async () => {
    const { nodes, store, clock, shared, warnings } = bot();
    const other = bot(store).nodes;
    await nodes.route({ from: 1, text: "hi" });
    await nodes.route({ from: 2, text: "hi" });
    clock.advance(60_000);
    const fired: number[][] = [];
    /** Fires the due timers from inside its handler, on both Nodes. */
    class Firing extends Node<Shared, Event, number, { reminded: boolean }> {
      static override schema = Asking.schema;
      async onEvent(): Promise<Firing> {
        for (const from of [nodes, other]) {
          fired.push((await from.runDue()).map((f) => f.userId));
        }
        return new Firing({ reminded: false });
      }
    }
    const firing = bot(store, Firing);
    await firing.nodes.route({ from: 1, text: "fire" });
    // user 2's timer fires; user 1's waits for the handler that holds it
    assert.deepEqual(fired, [[2], []]);
    assert.deepEqual([...warnings, ...firing.warnings], []);
    assert.equal(shared.said.filter((s) => s === "1 still there?").length, 0);
  });
});

describe("timer loop options", () => {
  it("refuse a limit or interval that cannot be meant, on every store alike", async () => {
    const { nodes } = bot();
    for (const limit of [0, -1, 1.5, NaN, Infinity, 1e21]) {
      await assert.rejects(
        nodes.runDue({ limit }),
        (error: unknown) =>
          error instanceof RangeError &&
          /runDue: limit must be a whole number from 1 to 100,000/.test(
            error.message,
          ),
        `limit ${limit}`,
      );
      await assert.rejects(nodes.runTimers({ limit }), RangeError);
    }
    await assert.rejects(
      nodes.runDue({ limit: "10" as unknown as number }),
      TypeError,
    );
    for (const signal of ["x", {}, null, { aborted: false }]) {
      await assert.rejects(
        nodes.runTimers({ signal: signal as unknown as AbortSignal }),
        (error: unknown) =>
          error instanceof TypeError &&
          /^runTimers: signal must be an AbortSignal, got /.test(
            error.message,
          ),
        `signal ${JSON.stringify(signal)}`,
      );
    }
    for (const interval of [0, -1, NaN, Infinity, 2 ** 31]) {
      await assert.rejects(
        nodes.runTimers({ interval }),
        (error: unknown) =>
          error instanceof RangeError &&
          // a fraction of a ms is accepted: the message says "number"
          /runTimers: interval must be a number from 1 to 2,147,483,647/
            .test(error.message),
        `interval ${interval}`,
      );
    }
  });
});

describe("runTimers and a store that answers at once", () => {
  it("gives the event loop a turn, so a signal aborted from a timer stops a timer due again at once", async () => {
    const stop = new AbortController();
    // the backstop: aborted from inside, where it is seen without the event
    // loop, should the loop never give the event loop a turn
    const most = 100_000;
    let fired = 0;
    class Again extends Node<null, Event, number, null> {
      override timeout() {
        return 0;
      }
      override onTimeout(): Again {
        if (++fired === most) stop.abort("backstop");
        return new Again(null);
      }
      onEvent(): Again {
        return new Again(null);
      }
    }
    const nodes = new Nodes<null, Event, number>({
      store: new MemoryStore({ clock: new FakeClock() }),
      nodes: { again: Again },
      start: () => new Again(null),
      shared: null,
      userId: (event) => event.from,
    });
    await nodes.route({ from: 1, text: "hi" });
    setTimeout(() => stop.abort("timer"), 0);
    await nodes.runTimers({ signal: stop.signal, limit: 1 });
    assert.equal(stop.signal.reason, "timer");
    assert.ok(fired >= 1 && fired < most, `fired ${fired} times`);
  });
});

describe("outside attacker d: a timer belongs to the user whose key holds it", () => {
  it("fires for the user whose id is stored with it: a state copied to another key keeps its node, not the timer", async () => {
    const { nodes, store, shared, clock } = bot();
    await nodes.route({ from: 1, text: "hi" }); // armed for user 1
    const raw = (await store.get("1"))!;
    assert.match(raw, /"user":1\b/);
    const { due } = JSON.parse(raw) as { due: number };
    // the state copied to users 2 and 3 (a merge, a restore), one with an id
    // no user may have, each with an index entry
    const copies: [string, string][] = [
      ["2", raw],
      ["3", raw.replace('"user":1', '"user":1.5')],
    ];
    for (const [user, state] of copies) {
      const lease = await store.begin(user);
      await store.commit(lease, state);
      await store.schedule(user, due);
    }
    clock.advance(60_000);
    const fired = await nodes.runDue();
    assert.deepEqual(fired.map((timer) => timer.userId), [1]);
    assert.deepEqual(shared.said, ["1 still there?"]);
    // the copies keep their node and data, without the foreign timer
    for (const user of [2, 3]) {
      assert.equal(await keyOf(nodes, user), "asking");
    }
    clock.advance(600_000);
    assert.deepEqual((await nodes.runDue()).map((timer) => timer.userId), [1]);
  });
});

describe("outside attacker d: backoff per timer", () => {
  it("starts a new timer's backoff afresh once the user answered the one that kept failing", async () => {
    const { nodes, shared, clock, warnings } = bot();
    await nodes.route({ from: 1, text: "hi" }); // armed: a minute
    shared.failNext = 3;
    clock.advance(60_000);
    for (let i = 0; i < 3; i++) {
      await nodes.runDue();
      clock.advance(2 ** i * 1_000);
    }
    assert.deepEqual(
      warnings.map((warning) => warning.match(/trying again in (\d+) ms/)?.[1]),
      ["1000", "2000", "4000"],
    );
    // the user answers: the failing timer is replaced by a new one
    await nodes.route({ from: 1, text: "here" });
    shared.failNext = 1;
    clock.advance(60_000);
    await nodes.runDue();
    assert.match(
      warnings.at(-1)!,
      /\(0 ms overdue\); trying again in 1000 ms/,
    );
    clock.advance(1_000);
    await nodes.runDue();
    assert.deepEqual(shared.said.slice(-1), ["1 still there?"]);
  });
});

describe("outside attacker g: backoff across processes", () => {
  it("backs off the same whichever process claims the failing timer", async () => {
    // two Nodes on one store (two processes): each failure puts the timer
    // off by as long as it is overdue plus a second, whoever fired it
    const store = new MemoryStore({ clock: new FakeClock() });
    const first = bot(store);
    const second = bot(delegate(store));
    const clock = store.timing.clock as FakeClock;
    await first.nodes.route({ from: 1, text: "hi" });
    // each fails the two firings it makes, taking turns
    first.shared.failNext = 2;
    second.shared.failNext = 2;
    clock.advance(60_000);
    const delays: number[] = [];
    for (const nodes of [first, second, first, second]) {
      await nodes.nodes.runDue();
      const warning = nodes.warnings.at(-1)!; // the process that fired it
      delays.push(Number(warning.match(/trying again in (\d+) ms/)![1]));
      clock.advance(delays.at(-1)!);
    }
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000]);
    assert.deepEqual((await second.nodes.runDue()).map((f) => f.userId), [1]);
  });
});

describe("outside attacker e: an index that lost a timer's entry", () => {
  it("gets it back when the node is entered again at the same due time", async () => {
    const { nodes, store, shared, clock } = bot();
    await nodes.route({ from: 1, text: "hi" }); // armed for a minute on
    const { due } = JSON.parse((await store.get("1"))!) as { due: number };
    await store.unschedule("1", due); // the index lost it (eviction, a hand)
    await nodes.route({ from: 1, text: "still here" }); // same ms: same due
    clock.advance(60_000);
    assert.deepEqual((await nodes.runDue()).map((timer) => timer.userId), [1]);
    assert.deepEqual(shared.said, ["1: still here", "1 still there?"]);
  });
});

describe("outside attacker h: a timer during a deploy", () => {
  /** The old version of the bot: `asking` is another class, without timers. */
  class OldAsking extends Node<Shared, Event, number, { reminded: boolean }> {
    static override schema = z.object({ reminded: z.boolean() });
    onEvent(): OldAsking {
      return new OldAsking({ reminded: false });
    }
  }
  /** A version whose `asking` data is of another shape. */
  class OtherAsking extends Asking {
    static override schema = z.object({ reminded: z.string() }) as never;
  }
  /** The old version without the node at all. */
  function old(store: StateStore, variant: "no timer" | "no node" | "schema") {
    const warnings: string[] = [];
    const nodes = new Nodes<Shared, Event, number>({
      store,
      nodes: variant === "no node" ? { gone: Gone } : {
        asking: variant === "schema" ? OtherAsking : OldAsking,
        gone: Gone,
      },
      start: () => new Gone(),
      shared: { said: [], failNext: 0 },
      userId: (event) => event.from,
      logger: { warn: (message) => void warnings.push(message) },
    });
    return { nodes, warnings };
  }

  for (const variant of ["no timer", "no node", "schema"] as const) {
    it(`is put off, not dropped, by a process that cannot fire it (${variant}), and fires in one that can`, async () => {
      const current = bot();
      const { store, clock, shared } = current;
      const before = old(store, variant);
      await current.nodes.route({ from: 1, text: "hi" }); // armed: 1 min
      clock.advance(60_000);
      assert.deepEqual(await before.nodes.runDue(), []);
      assert.match(
        before.warnings.join("\n"),
        /timer of user "1".*again in 1000 ms/,
      );
      assert.deepEqual(shared.said, []);
      // still in the index: the version that armed it fires it
      clock.advance(1_000);
      const fired = await current.nodes.runDue();
      assert.deepEqual(fired.map((timer) => timer.key), ["asking"]);
      assert.deepEqual(shared.said, ["1 still there?"]);
      assert.deepEqual(await store.dueTimers(clock.now(), 10), []);
    });
  }

  it("is put off past an outage of hours, reported while its wait grows, then quietly", async () => {
    const current = bot();
    const { store, clock, shared } = current;
    const before = old(store, "no node");
    await current.nodes.route({ from: 1, text: "hi" });
    clock.advance(60_000 + 7_200_000); // two hours overdue: an outage
    assert.deepEqual(await before.nodes.runDue(), []);
    assert.deepEqual(before.warnings, [], "at the longest wait: quietly");
    assert.equal((await store.dueTimers(Infinity, 10)).length, 1, "put off");
    clock.advance(300_000);
    assert.deepEqual(
      (await current.nodes.runDue()).map((timer) => timer.key),
      ["asking"],
    );
    assert.deepEqual(shared.said, ["1 still there?"]);
  });

  it("is dropped, with a warning, a day after it was due when no process fired it", async () => {
    const current = bot();
    const { store, clock, shared } = current;
    const before = old(store, "no node");
    await current.nodes.route({ from: 1, text: "hi" });
    clock.advance(60_000);
    // reported while the wait grows (1 s, 2 s, 4 s ... up to 5 min)
    let waits = 0;
    for (; clock.now() < 60_000 + 86_400_000; waits++) {
      assert.deepEqual(await before.nodes.runDue(), []);
      const [timer] = await store.dueTimers(Infinity, 10);
      assert.ok(timer, "put off, not dropped");
      clock.advance(Math.min(clock.now() - 60_000 + 1_000, 300_000));
    }
    const reported = before.warnings.filter((w) => /trying again/.test(w));
    assert.ok(
      reported.length >= 8 && reported.length <= 10,
      `${reported.length}`,
    );
    assert.ok(waits > 280, `${waits}`);
    assert.doesNotMatch(before.warnings.join("\n"), /Dropped/);
    assert.deepEqual(await before.nodes.runDue(), []);
    assert.match(
      before.warnings.at(-1)!,
      /Dropped the timer of user "1".*within a day/,
    );
    assert.deepEqual(await store.dueTimers(Infinity, 10), []);
    assert.deepEqual(await current.nodes.runDue(), []);
    assert.deepEqual(shared.said, []);
    // the user's state is as it was: the next event goes on from it
    assert.equal(await keyOf(current.nodes, 1), "asking");
  });

  it("reads a hand-written state's timer as the version that can fire it does: any finite due, its own user only", async () => {
    const current = bot();
    const { store, clock, shared } = current;
    const before = old(store, "no node");
    const write = async (user: string, due: number, owner: unknown) => {
      const state = {
        v: 1,
        node: "asking",
        data: { reminded: false },
        due,
        user: owner,
      };
      await store.commit(await store.begin(user), JSON.stringify(state));
      await store.schedule(user, due);
    };
    await write("1", 1_000.5, 1); // not a whole ms, but finite
    await write("2", 1_000, 1); // copied from user 1: not user 2's timer
    clock.advance(1_001);
    assert.deepEqual(await before.nodes.runDue(), []);
    assert.deepEqual(await store.dueTimers(Infinity, 10), [{
      userId: "1",
      due: 1_000.5,
    }]);
    clock.advance(1_001); // put off by as long as it was overdue, plus 1 s
    const fired = await current.nodes.runDue();
    assert.deepEqual(fired.map((timer) => timer.userId), [1]);
    assert.deepEqual(shared.said, ["1 still there?"]);
  });

  it("still drops an entry whose state it cannot read and that holds no timer", async () => {
    const current = bot();
    const { store, clock } = current;
    const before = old(store, "no node");
    // a state of a node the old version does not know, with no timer
    await store.commit(
      await store.begin("1"),
      JSON.stringify({ v: 1, node: "asking", data: { reminded: false } }),
    );
    await store.schedule("1", 1_000); // an entry the state does not hold
    clock.advance(1_000);
    assert.deepEqual(await before.nodes.runDue(), []);
    assert.deepEqual(await store.dueTimers(Infinity, 10), []);
    assert.deepEqual(before.warnings, []);
  });
});
