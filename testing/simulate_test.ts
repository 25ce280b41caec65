import { describe, it } from "node:test";
import assert, { AssertionError } from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { z } from "zod";
import { Node, Nodes } from "../mod.ts";
import {
  ConversationMap,
  createSimulator,
  FakeClock,
  MemoryStore,
  Outbox,
  Transcript,
} from "./mod.ts";
import { plainEqual } from "./simulate.ts";

type Event = { from: number; text: string };
type Shared = { outbox: Outbox; say(to: number, text: string): void };
type Any = Node<Shared, Event, number>;

class Lobby extends Node<Shared, Event, number, { seen: number }> {
  static override schema = z.object({ seen: z.number() });
  override onEnter(user: number, shared: Shared) {
    shared.say(user, `Lobby (${this.data.seen})`);
  }
  onEvent(user: number, event: Event, shared: Shared): Any {
    if (event.text === "boom") throw new RangeError("boom");
    if (event.text === "play") return new Game({ moves: [] });
    shared.say(user, "Say play");
    return new Lobby({ seen: this.data.seen + 1 });
  }
}

class Game extends Node<Shared, Event, number, { moves: string[] }> {
  static override schema = z.object({ moves: z.array(z.string()) });
  override onEnter(user: number, shared: Shared) {
    shared.say(user, `Moves: ${this.data.moves.join(" ") || "none"}`);
  }
  onEvent(_user: number, event: Event): Any {
    if (event.text === "quit") return new Lobby({ seen: 0 });
    return new Game({ moves: [...this.data.moves, event.text] });
  }
}

function setup() {
  const outbox = new Outbox();
  const nodes = new Nodes<Shared, Event, number>({
    store: new MemoryStore(),
    nodes: { lobby: Lobby, game: Game },
    start: () => new Lobby({ seen: 0 }),
    shared: { outbox, say: (to, text) => outbox.send({ to, text }) },
    userId: (event) => event.from,
  });
  const sim = createSimulator({
    nodes,
    outbox,
    event: (from: number, text: string): Event => ({ from, text }),
  });
  return { sim, nodes, outbox };
}

const failure = (pattern: RegExp) => (error: unknown) => {
  assert.ok(error instanceof AssertionError, `not an AssertionError: ${error}`);
  assert.match(error.message, pattern);
  return true;
};

describe("createSimulator", () => {
  it("checks nodes, replies and data step by step and returns the transcript", async () => {
    const { sim } = setup();
    const transcript = await sim.simulate(1, [
      { event: "hi", node: "lobby", replies: ["Lobby (0)"], data: { seen: 0 } },
      { event: "?", node: "lobby", replies: ["Say play", "Lobby (1)"] },
      {
        event: "play",
        node: "game",
        replies: [{ to: 1, text: "Moves: none" }],
      },
      "e4",
      { event: "d4", data: { moves: ["e4", "d4"] } },
    ]);
    assert.deepEqual(transcript.nodes, [
      "lobby",
      "lobby",
      "game",
      "game",
      "game",
    ]);
    assert.deepEqual(transcript.steps[3]!.replies, [{
      to: 1,
      text: "Moves: e4",
    }]);
    assert.deepEqual(transcript.steps[4]!.data, { moves: ["e4", "d4"] });
  });

  it("names the step, the event and both nodes when the node is wrong", async () => {
    const { sim } = setup();
    await assert.rejects(
      sim.simulate(1, [
        { event: "hi", node: "lobby" },
        { event: "chess?", node: "game" },
      ]),
      failure(
        /Step 2 \(user 1, event "chess\?"\) failed\nnode: expected "game", got "lobby"/,
      ),
    );
  });

  it("shows a diff of the replies when they differ", async () => {
    const { sim } = setup();
    await assert.rejects(
      sim.simulate(1, [{ event: "hi", replies: ["Lobby (1)"] }]),
      (error: unknown) => {
        assert.ok(error instanceof AssertionError);
        assert.match(error.message, /^Step 1 \(user 1, event "hi"\) failed/);
        assert.match(error.message, /Lobby \(0\)/);
        assert.match(error.message, /Lobby \(1\)/);
        assert.deepEqual(error.expected, { replies: ["Lobby (1)"] });
        assert.deepEqual(error.actual, { replies: ["Lobby (0)"] });
        return true;
      },
    );
  });

  it("fails on data that differs", async () => {
    const { sim } = setup();
    await assert.rejects(
      sim.simulate(1, ["hi", { event: "play", data: { moves: ["x"] } }]),
      failure(/Step 2 \(user 1, event "play"\) failed/),
    );
  });

  it("checks expected throws, and names a step that throws unexpectedly", async () => {
    const { sim } = setup();
    const transcript = await sim.simulate(1, [
      "hi",
      { event: "boom", throws: RangeError, node: "lobby", replies: [] },
      { event: "boom", throws: /boom/ },
    ]);
    assert.ok(transcript.steps[1]!.error instanceof RangeError);
    await assert.rejects(
      sim.simulate(1, ["boom"]),
      failure(/Step 1 \(user 1, event "boom"\) threw RangeError: boom/),
    );
    await assert.rejects(
      sim.simulate(1, [{ event: "fine", throws: Error }]),
      failure(/expected it to throw/),
    );
  });

  it("matches throws inside a framework's wrapper with unwrapError", async () => {
    class Wrapped extends Error {
      constructor(readonly inner: unknown) {
        super("wrapped");
      }
    }
    const { nodes, outbox } = setup();
    const sim = createSimulator({
      nodes,
      outbox,
      event: (from: number, text: string): Event => ({ from, text }),
      dispatch: async (event: Event) => {
        try {
          await nodes.route(event);
        } catch (error) {
          throw new Wrapped(error);
        }
      },
      unwrapError: (error) => error instanceof Wrapped ? error.inner : error,
    });
    await sim.simulate(1, [
      "hi",
      { event: "boom", throws: RangeError, node: "lobby" },
      { event: "boom", throws: Wrapped },
      { event: "boom", throws: (e) => e instanceof RangeError },
    ]);
    await assert.rejects(
      sim.simulate(1, [{ event: "boom", throws: TypeError }]),
      failure(/threw Error: wrapped around RangeError: boom, which is not/),
    );
  });

  it("interleaves several users", async () => {
    const { sim } = setup();
    const transcript = await sim.simulate(1, [
      { event: "hi", node: "lobby" },
      {
        user: 2,
        event: "hi",
        node: "lobby",
        replies: [{ to: 2, text: "Lobby (0)" }],
      },
      { event: "play", node: "game" },
      { user: 2, event: "nope", node: "lobby" },
    ]);
    assert.deepEqual(transcript.steps.map((s) => s.user), [1, 2, 1, 2]);
  });

  it("renders a transcript as text and checks a whole expected transcript", async () => {
    const { sim } = setup();
    const golden = [
      "1. 5 > hi",
      "   < Lobby (0)",
      '   = lobby {"seen":0}',
      "2. 5 > play",
      "   < Moves: none",
      '   = game {"moves":[]}',
      "",
    ].join("\n");
    const transcript = await sim.simulate(5, ["hi", "play"], {
      transcript: golden,
    });
    assert.equal(transcript.text(), golden);
    const { sim: fresh } = setup();
    await assert.rejects(
      fresh.simulate(5, ["hi", "quit"], { transcript: golden }),
      failure(
        /Step 2 \(user 5, event "quit"\) differs from the expected transcript/,
      ),
    );
  });
});

// Issue 15: a harness that never lies. Each test failed on the harness
// before it.

type Said = { outbox: Outbox };

class Talk extends Node<Said, Event, number, null> {
  constructor() {
    super(null);
  }
  onEvent(user: number, event: Event, shared: Said): Talk {
    const { outbox } = shared;
    if (event.text === "later") {
      void Promise.resolve().then(() =>
        Promise.resolve().then(() =>
          outbox.send({ to: user, text: "from a chain" })
        )
      );
    }
    if (event.text === "elsewhere") outbox.send({ to: 99, text: "Hello" });
    if (event.text === "edit") {
      outbox.send({ to: user, text: "Hello", method: "editMessageText" });
    }
    if (event.text === "keyboard") {
      const keyboard = { buttons: ["yes"] };
      outbox.send({ to: user, text: "menu", payload: keyboard });
      keyboard.buttons.push("no"); // changed after sending
    }
    if (event.text === "map") {
      outbox.send({ to: user, text: "map", payload: new Map([["a", 1]]) });
    }
    if (event.text === "null") {
      (null as unknown as { x: number }).x;
    }
    if (event.text.startsWith("throw ")) throw new Error(event.text.slice(6));
    if (event.text.startsWith("say ")) {
      outbox.send({ to: user, text: event.text.slice(4) });
    }
    return new Talk();
  }
}

function talk(options: { outbox?: boolean } = {}) {
  const outbox = new Outbox();
  const store = new MemoryStore();
  const nodes = new Nodes<Said, Event, number>({
    store,
    nodes: { talk: Talk },
    start: () => new Talk(),
    shared: { outbox },
    userId: (event) => event.text === "ignored" ? undefined : event.from,
    onInvalidState: () => {
      outbox.send({ to: 1, text: "Sorry, starting over" });
      return new Talk();
    },
    logger: { warn: () => {} },
  });
  const sim = createSimulator({
    nodes,
    ...(options.outbox === false ? {} : { outbox }),
    event: (from: number, text: string): Event => ({ from, text }),
  });
  return { sim, nodes, outbox, store };
}

describe("issue 15: the harness never lies", () => {
  it("1. waits for an event's unawaited promise chains: their replies are the step's", async () => {
    const { sim } = talk();
    // (a zero-delay timer is not waited for by a step, only by the end of a
    // run: "2. a reply sent after the last step had settled fails the run")
    await sim.simulate(1, [
      "hi",
      { event: "later", replies: ["from a chain"] },
      { event: "say x", replies: ["x"] },
    ]);
  });

  it("1. fails on a reply sent between steps, naming it and the step it followed", async () => {
    const { sim, outbox } = talk();
    await sim.simulate(1, ["hi", { event: "say one", replies: ["one"] }]);
    outbox.send({ to: 1, text: "stray" }); // e.g. a timer that fired late
    await assert.rejects(
      sim.simulate(1, [{ event: "say two", replies: ["two"] }]),
      failure(
        /^After Step 2 \(user 1, event "say one"\) had settled, outside any step, the bot sent: reply "stray"/,
      ),
    );
  });

  it("2. a string reply is a plain message to the step's user: other users and methods must be expected", async () => {
    const { sim } = talk();
    await sim.simulate(1, ["hi"]);
    await assert.rejects(
      sim.simulate(1, [{ event: "elsewhere", replies: ["Hello"] }]),
      failure(/Step 1 \(user 1, event "elsewhere"\) failed/),
    );
    await assert.rejects(
      sim.simulate(1, [{ event: "edit", replies: ["Hello"] }]),
      failure(/Step 1 \(user 1, event "edit"\) failed/),
    );
    const transcript = await sim.simulate(1, [
      { event: "elsewhere", replies: [{ to: 99, text: "Hello" }] },
      {
        event: "edit",
        replies: [{ method: "editMessageText", text: "Hello" }],
      },
    ]);
    assert.match(transcript.text(), /^ {3}< \(to 99\) Hello$/m);
    assert.match(transcript.text(), /^ {3}< \(editMessageText\) Hello$/m);
  });

  it("3. refuses two concurrent simulations on one outbox", async () => {
    const { sim } = talk();
    const results = await Promise.allSettled([
      sim.simulate(1, ["hi", { event: "say A", replies: ["A"] }]),
      sim.simulate(2, ["hi", { event: "say A", replies: ["A"] }]),
    ]);
    const rejected = results.filter((r) => r.status === "rejected");
    assert.equal(rejected.length, 1);
    assert.match(
      String((rejected[0] as PromiseRejectedResult).reason),
      /another simulation is running on the same outbox/,
    );
  });

  it("5. expecting replies without an outbox is an error", async () => {
    const { sim } = talk({ outbox: false });
    await assert.rejects(
      sim.simulate(1, [{ event: "say x", replies: [] }]),
      /expects replies, but the simulator was made without an outbox/,
    );
  });

  it("6. records payloads as sent over the wire: a JSON copy", async () => {
    const { sim } = talk();
    const transcript = await sim.simulate(1, [
      "hi",
      {
        event: "keyboard",
        replies: [{ text: "menu", payload: { buttons: ["yes"] } }],
      },
      { event: "map", replies: [{ text: "map", payload: {} }] },
    ]);
    assert.deepEqual(transcript.steps[1]!.replies[0]!.payload, {
      buttons: ["yes"],
    });
  });

  it("8. observes the user without running onInvalidState", async () => {
    const { sim, store } = talk();
    await sim.simulate(1, ["hi"]);
    await store.commit(await store.begin("1"), "not a state");
    const transcript = await sim.simulate(1, [
      { event: "ignored", replies: [], node: "(invalid: unparseable)" },
    ]);
    assert.equal(transcript.steps[0]!.node, null);
    assert.match(transcript.text(), /^ {3}= \(invalid: unparseable\)$/m);
  });

  it("9. renders engine errors by their class only, the same on every engine", async () => {
    const { sim } = talk();
    const transcript = await sim.simulate(1, [
      "hi",
      { event: "null", throws: TypeError },
    ]);
    assert.equal(
      transcript.text().split("\n").slice(3).join("\n"),
      "   ! TypeError\n   = talk null\n",
    );
  });

  it("10. renders any content so that it round-trips, and refuses text before the first step", async () => {
    const steps = [
      "hi",
      "say a\n1. pizza",
      { event: "throw first\n\nsecond", throws: /second/ },
      "say   padded  ",
      'say "quoted"',
      "say (to 99) not really",
    ];
    const first = await talk().sim.simulate(1, steps);
    const golden = first.text();
    assert.equal(golden.split("\n")[0], "1. 1 > hi");
    await talk().sim.simulate(1, steps, { transcript: golden });
    await assert.rejects(
      talk().sim.simulate(1, steps, { transcript: `preamble\n${golden}` }),
      failure(/text before its first step/),
    );
    const changed = golden.replace('"say a\\n1. pizza"', '"say a\\n2. pizza"');
    await assert.rejects(
      talk().sim.simulate(1, steps, { transcript: changed }),
      failure(/Step 2 .* differs from the expected transcript/),
    );
  });

  it("11. a /g pattern matches every time; a wrong class names both; a throwing predicate names the step", async () => {
    const { sim } = talk();
    const pattern = /boom/g;
    await sim.simulate(1, [
      "hi",
      { event: "throw boom", throws: pattern },
      { event: "throw boom", throws: pattern },
    ]);
    await assert.rejects(
      sim.simulate(1, [{ event: "throw boom", throws: TypeError }]),
      failure(
        /^Step 1 \(user 1, event "throw boom"\) failed\nthrew Error: boom, which is not the expected error: expected a TypeError\nactual error: Error: boom/,
      ),
    );
    await assert.rejects(
      sim.simulate(1, [{
        event: "throw boom",
        throws: (error) => (error as { nope: { x: 1 } }).nope.x === 1,
      }]),
      failure(
        /^Step 1 \(user 1, event "throw boom"\) failed\nthe throws predicate itself threw TypeError/,
      ),
    );
  });
});

describe("wait steps", () => {
  class Idle extends Node<Shared, Event, number, { reminded: boolean }> {
    static override schema = z.object({ reminded: z.boolean() });
    override timeout() {
      return this.data.reminded ? undefined : 600_000;
    }
    override onTimeout(user: number, shared: Shared): Any {
      shared.say(user, "Are you still there?");
      return new Idle({ reminded: true });
    }
    onEvent(): Any {
      return new Idle({ reminded: false });
    }
  }

  function waiting() {
    const outbox = new Outbox();
    const clock = new FakeClock();
    const nodes = new Nodes<Shared, Event, number>({
      store: new MemoryStore({ clock }),
      nodes: { idle: Idle },
      start: () => new Idle({ reminded: false }),
      shared: { outbox, say: (to, text) => outbox.send({ to, text }) },
      userId: (event) => event.from,
    });
    const sim = createSimulator({
      nodes,
      outbox,
      clock,
      event: (from: number, text: string): Event => ({ from, text }),
    });
    return { sim, clock };
  }

  it("let time pass, fire what is due and check it like any step", async () => {
    const { sim } = waiting();
    const transcript = await sim.simulate(1, [
      { event: "hi", node: "idle", replies: [] },
      { wait: 599_999, replies: [], data: { reminded: false } },
      { wait: 1, replies: ["Are you still there?"], data: { reminded: true } },
      { wait: 3_600_000, replies: [] },
    ]);
    assert.match(transcript.text(), /\(wait 1 ms\)/);
  });

  it("refuse a wait that is no number of ms, saying what it is", async () => {
    const { sim } = waiting();
    await assert.rejects(
      sim.simulate(1, ["hi", { wait: "1000" as unknown as number }]),
      /step 2: wait must be a number of ms, got the string "1000"/,
    );
    await assert.rejects(
      sim.simulate(1, ["hi", { wait: -1 }]),
      /step 2: wait must be a number of ms, got -1/,
    );
  });

  it("fail a wait step whose expectation is wrong, naming it", async () => {
    const { sim } = waiting();
    await assert.rejects(
      sim.simulate(1, ["hi", { wait: 600_000, replies: [] }]),
      failure(/Step 2 .*wait 600000 ms/),
    );
  });

  it("fail with the error of a timer whose onTimeout threw, which throws can expect", async () => {
    class Fragile extends Node<Shared, Event, number, null> {
      override timeout() {
        return 1_000;
      }
      override onTimeout(): Any {
        throw new Error("the reminder exploded");
      }
      onEvent(): Any {
        return new Fragile(null);
      }
    }
    const outbox = new Outbox();
    const clock = new FakeClock();
    const nodes = new Nodes<Shared, Event, number>({
      store: new MemoryStore({ clock }),
      nodes: { fragile: Fragile },
      start: () => new Fragile(null),
      shared: { outbox, say: (to, text) => outbox.send({ to, text }) },
      userId: (event) => event.from,
      logger: { warn: () => {} },
    });
    const sim = createSimulator({
      nodes,
      outbox,
      clock,
      event: (from: number, text: string): Event => ({ from, text }),
    });
    await assert.rejects(
      sim.simulate(1, ["hi", { wait: 1_000, node: "fragile" }]),
      failure(
        /^Step 2 \(user 1, event "\(wait 1000 ms\)"\) threw Error: the reminder exploded/,
      ),
    );
    // expected: the step passes, and the transcript shows the error; the
    // timer is tried again later (a second later at first)
    const transcript = await sim.simulate(1, [
      { wait: 1_000, throws: /the reminder exploded/, node: "fragile" },
    ]);
    assert.match(transcript.text(), /! .*the reminder exploded/);
    // another user's failing timer is no step's: the step of user 2 passes
    await nodes.route({ from: 3, text: "hi" });
    clock.advance(1_000);
    await sim.simulate(2, ["hi", { wait: 0, node: "fragile" }]);
  });

  it("need the clock option", async () => {
    const { nodes } = setup();
    const sim = createSimulator({ nodes });
    await assert.rejects(
      sim.simulate(1, [{ wait: 1 }]),
      /needs the simulator's "clock" option/,
    );
  });
});

describe("outside attacker b: which state a step checks, late replies, the map", () => {
  type Said = { from: number; chat: number; text: string };
  type Room = { outbox: Outbox };
  class Waiting extends Node<Room, Said, number, { players: number }> {
    static override schema = z.object({ players: z.number() });
    override timeout() {
      return 60_000;
    }
    override onTimeout(chat: number, room: Room): Playing {
      room.outbox.send({ to: chat, text: "Starting anyway" });
      return new Playing({ round: 1 });
    }
    onEvent(chat: number, said: Said, room: Room): Waiting | Playing {
      if (said.text === "/play") {
        room.outbox.send({ to: chat, text: "Game on" });
        return new Playing({ round: 1 });
      }
      return new Waiting({ players: this.data.players + 1 });
    }
  }
  class Playing extends Node<Room, Said, number, { round: number }> {
    static override schema = z.object({ round: z.number() });
    onEvent(): Playing {
      return new Playing({ round: this.data.round + 1 });
    }
  }

  /** One state per chat, as grammY's `chatId` keys it. */
  function perChat(store = new MemoryStore({ clock: new FakeClock() })) {
    const outbox = new Outbox();
    const nodes = new Nodes<Room, Said, number>({
      store,
      nodes: { waiting: Waiting, playing: Playing },
      start: () => new Waiting({ players: 0 }),
      shared: { outbox },
      userId: (said) => said.chat,
    });
    const sim = createSimulator({
      nodes,
      outbox,
      event: (from: number, text: string): Said => ({ from, chat: -42, text }),
    });
    return { nodes, outbox, sim, store };
  }

  it("1. checks the node and data of the user the Nodes key the event by (the chat), not its sender's", async () => {
    const { sim } = perChat();
    // the sender (user 1) has no state: a step expecting none must fail
    await assert.rejects(
      sim.simulate(1, [
        { event: "join", node: null },
      ]),
      failure(
        /^Step 1 \(user 1, event "join", state of user -42\) failed\nnode: expected null, got "waiting"/,
      ),
    );
    const transcript = await sim.simulate(1, [
      { event: "join", node: "waiting", data: { players: 1 } },
      {
        event: "/play",
        node: "playing",
        data: { round: 1 },
        replies: [{ to: -42, text: "Game on" }],
      },
    ]);
    assert.equal(
      transcript.text(),
      '1. 1 > join\n   = (user -42) waiting {"players":1}\n' +
        '2. 1 > /play\n   < (to -42) Game on\n   = (user -42) playing {"round":1}\n',
    );
    assert.equal(transcript.steps[1]?.stateOf, -42);
  });

  it("1. a wait step checks the user the step before it checked", async () => {
    const clock = new FakeClock();
    const { nodes, outbox } = perChat(new MemoryStore({ clock }));
    const sim = createSimulator({
      nodes,
      outbox,
      clock,
      event: (from: number, text: string): Said => ({ from, chat: -42, text }),
    });
    await sim.simulate(1, [
      { event: "join", node: "waiting" },
      {
        wait: 60_000,
        node: "playing",
        replies: ["Starting anyway"], // to the chat: the wait step's user
      },
    ]);
  });

  it("2. a reply sent after the last step had settled fails the run, naming it", async () => {
    class Peeked extends MemoryStore {
      onGet: (() => void) | undefined;
      override get(userId: string): Promise<string | undefined> {
        this.onGet?.();
        return super.get(userId);
      }
    }
    const store = new Peeked();
    const { sim, outbox } = perChat(store);
    // work the step did not await, sending once the step is checked: the
    // store's read that observes the step is after the step has settled
    let reads = 0;
    store.onGet = () => {
      if (++reads === 1) {
        setTimeout(() => outbox.send({ to: -42, text: "late" }), 0);
      }
    };
    await assert.rejects(
      sim.simulate(1, [{ event: "join", node: "waiting", replies: [] }]),
      failure(
        /^After the last step, Step 1 \(user 1, event "join", state of user -42\), had settled, outside any step, the bot sent: reply "late"/,
      ),
    );
  });

  it("3. the map option records only the transitions of this run's users, not a concurrent run's", async () => {
    const store = new MemoryStore();
    const { nodes, outbox } = perChat(store);
    const map = new ConversationMap();
    const mapped = createSimulator({
      nodes,
      outbox,
      map,
      event: (from: number, text: string): Said => ({ from, chat: -42, text }),
    });
    const other = createSimulator({
      nodes,
      event: (from: number, text: string): Said => ({ from, chat: -7, text }),
    });
    await Promise.all([
      mapped.simulate(1, ["join"]),
      other.simulate(2, ["join", "join", "join"]),
    ]);
    assert.equal(
      map.mermaid(),
      "stateDiagram-v2\n  [*] --> waiting: 1\n",
    );
  });
});

/**
 * A bot whose events are any objects, routed by their `from`; `change` is
 * what its handler does to an event (a handler that rewrites its event).
 */
function anyEvents(change?: (event: { from: unknown }) => void) {
  const outbox = new Outbox();
  const seen: unknown[] = [];
  class Echo extends Node<Outbox, { from: unknown }, number, { n: number }> {
    onEvent(user: number, event: { from: unknown }, out: Outbox): Echo {
      seen.push(event);
      change?.(event);
      out.send({ to: user, text: "ok" });
      return new Echo({ n: this.data.n + 1 });
    }
  }
  const nodes = new Nodes<Outbox, { from: unknown }, number>({
    store: new MemoryStore(),
    nodes: { echo: Echo },
    start: () => new Echo({ n: 0 }),
    shared: outbox,
    userId: (event) => event.from as number,
  });
  return { nodes, outbox, seen, sim: createSimulator({ nodes, outbox }) };
}

describe("outside attacker c: steps told apart, errors from userId, events JSON cannot carry", () => {
  it("refuses a step object that checks something but sends nothing, before any step runs", async () => {
    const { sim, seen } = anyEvents();
    await assert.rejects(
      sim.simulate(1, [
        { event: { from: 1 }, node: "echo" },
        { node: "won", replies: ["You won!"], data: { n: 99 } },
      ] as never),
      (error: Error) =>
        error instanceof TypeError &&
        /step 2: it checks "node", "replies", "data" but has no "event"/.test(
          error.message,
        ),
    );
    assert.deepEqual(seen, []);
  });

  it("refuses a step with a key no step has: a misspelt check is not skipped", async () => {
    const { sim, seen } = anyEvents();
    await assert.rejects(
      sim.simulate(1, [{ event: { from: 1 }, reply: ["ok"] }] as never),
      /step 1: it has "event" and keys no step has \("reply"\)/,
    );
    assert.deepEqual(seen, []);
  });

  it("takes an event with its own event field as a bare event only when given as { event }", async () => {
    const { sim, seen } = anyEvents();
    const envelope = { from: 1, event: { type: "message" }, team: "T1" };
    await assert.rejects(sim.simulate(1, [envelope]), TypeError);
    // (a new user's first event enters the start node: onEvent sees the next)
    await sim.simulate(1, [{ from: 1 }, { event: envelope, node: "echo" }]);
    assert.deepEqual(seen, [envelope]);
    // a bare event whose fields are no step's stays a bare event
    await sim.simulate(1, [{ from: 1, text: "hi" }]);
    assert.equal(seen.length, 2);
  });

  it("lets throws expect the error of a key the Nodes cannot take", async () => {
    const { sim } = anyEvents();
    const transcript = await sim.simulate(1, [
      { event: { from: 1.5 }, throws: TypeError, node: null },
    ]);
    assert.equal(transcript.steps[0]!.node, null);
    await assert.rejects(
      sim.simulate(1, [{ event: { from: 1.5 } }]),
      (error: Error) =>
        error instanceof AssertionError &&
        /^Step 1 \(user 1, event \{"from":1.5\}\) threw TypeError/.test(
          error.message,
        ),
    );
  });

  it("names the step of an event holding a BigInt or itself, and renders them", async () => {
    const { sim } = anyEvents();
    const cyclic: Record<string, unknown> = { from: 1 };
    cyclic.self = cyclic;
    for (const event of [{ from: 1, id: 10n }, cyclic]) {
      await assert.rejects(
        sim.simulate(1, [{ event, node: "nope" }]),
        (error: Error) =>
          error instanceof AssertionError &&
          error.message.startsWith("Step 1 (user 1, event {"),
      );
    }
    const transcript = await sim.simulate(2, [
      { event: { from: 2, id: 10n }, replies: [] },
      { event: { from: 2, self: cyclic }, replies: ["ok"] },
    ]);
    assert.match(transcript.text(), /"id":"10n"/);
    assert.match(
      transcript.text(),
      /"self":\{"from":1,"self":"\[Circular\]"\}/,
    );
  });
});

describe("outside attacker f: the fixes of attacker c", () => {
  it("checks the user the event was routed to, though the handler changed the event", async () => {
    const { nodes, outbox } = anyEvents((event) => event.from = 2);
    const map = new ConversationMap({ nodes: ["echo"] });
    await createSimulator({ nodes, outbox, map }).simulate(1, [
      { event: { from: 1 }, node: "echo", data: { n: 0 } },
      { event: { from: 1 }, node: "echo", data: { n: 1 }, replies: ["ok"] },
    ]);
    assert.deepEqual(map.edges.map((edge) => edge.count), [1, 1]);
  });

  it("takes a hole in the steps as an undefined event, and refuses a wait that is undefined", async () => {
    const seen: unknown[] = [];
    class Any extends Node<null, unknown, number, null> {
      onEvent(_user: number, event: unknown): Any {
        seen.push(event);
        return new Any(null);
      }
    }
    const nodes = new Nodes<null, unknown, number>({
      store: new MemoryStore(),
      nodes: { any: Any },
      start: () => new Any(null),
      shared: null,
      userId: () => 1,
    });
    const sim = createSimulator({ nodes });
    // deno-lint-ignore no-sparse-arrays
    await sim.simulate(1, ["a", , "b"]);
    assert.deepEqual(seen, [undefined, "b"]);
    await assert.rejects(
      sim.simulate(1, [{ wait: undefined, node: "any" }]),
      /step 1: its "wait" is undefined/,
    );
    const sym = Symbol("mark");
    await assert.rejects(
      sim.simulate(1, [{ event: "x", [sym]: 1 }] as never),
      /step 1: it has "event" and keys no step has \(Symbol\(mark\)\)/,
    );
  });

  it("does not call equal an array whose hidden item an extra key makes up for", () => {
    const want: unknown[] & { extra?: string } = ["a", "b"];
    Object.defineProperty(want, 0, { value: "a", enumerable: false });
    want.extra = "x";
    assert.equal(isDeepStrictEqual(["a", "b"], want), false);
    assert.equal(plainEqual({ data: ["a", "b"] }, { data: want }), false);
  });
});

describe("plainEqual, the comparison a passing step takes", () => {
  const equal = (a: unknown, b: unknown) => plainEqual({ v: a }, { v: b });
  const asPlain = <T extends object>(value: T) =>
    Object.setPrototypeOf(value, Object.prototype);

  it("says equal only what assert.deepStrictEqual says equal", () => {
    const value = fc.oneof(
      fc.jsonValue(),
      fc.constantFrom(-0, 0, NaN, undefined, [, 1], [undefined, 1]),
      fc.constantFrom(new Date(0), Object.create(null), new Map(), /a/),
      fc.object(),
      fc.array(fc.jsonValue()).map((items) =>
        Object.assign(items, { extra: 1 })
      ),
    );
    fc.assert(
      fc.property(value, value, (a, b) => {
        if (equal(a, b)) assert.ok(isDeepStrictEqual(a, b));
        if (equal(a, structuredClone(a))) {
          assert.ok(isDeepStrictEqual(a, structuredClone(a)));
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it("hands over objects that only look plain, proxies and holes", () => {
    const cases: [unknown, unknown][] = [
      [asPlain(["a", "b"]), { 0: "a", 1: "b" }],
      [new Proxy(["a"], { getPrototypeOf: () => Object.prototype }), {
        0: "a",
      }],
      [asPlain(new Date(0)), asPlain(new Date(1))],
      [asPlain(new Date(0)), {}],
      [asPlain(new Map([[1, 2]])), {}],
      [asPlain(new Uint8Array([1])), { 0: 1 }],
      [Object.create(Array.prototype), []],
      [[, 1], [undefined, 1]],
      [Object.assign([, 1], { x: 1 }), Object.assign([undefined, 1], { y: 2 })],
      [{ a: 1 }, { a: 1 }],
    ];
    for (const [a, b] of cases) {
      assert.equal(equal(a, b), false, `${String(a)} vs ${String(b)}`);
      assert.equal(equal(b, a), false);
    }
  });

  it("agrees with assert.deepStrictEqual on a Proxy of an array", () => {
    const proxy = new Proxy([1], {});
    assert.equal(equal(proxy, [1]), isDeepStrictEqual(proxy, [1]));
    assert.equal(equal(proxy, [2]), false);
  });

  it("gives up on a cyclic or large value after a bounded look", () => {
    const a: unknown[] = [1];
    a.push(a);
    const b: unknown[] = [1];
    b.push(b);
    assert.equal(equal(a, b), false); // assert.deepStrictEqual decides
    assert.equal(isDeepStrictEqual(a, b), true);
    let wide: unknown[] = [0];
    for (let i = 0; i < 20; i++) wide = [wide, wide];
    assert.equal(equal(wide, structuredClone(wide)), false);
  });

  it("says equal node keys and texts that are equal, so that a passing step skips the assertion", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null))),
        (node, replies) => {
          assert.equal(
            plainEqual({ node, replies }, { node, replies: [...replies] }),
            true,
          );
        },
      ),
      { numRuns: 500 },
    );
    assert.equal(equal(NaN, NaN), true);
    assert.equal(equal(0, -0), false);
    assert.equal(plainEqual({ node: "a" }, { node: "a", replies: [] }), false);
    assert.equal(
      plainEqual({ node: "a", x: undefined }, { node: "a", y: 1 }),
      false,
    );
  });
});

/** The error line a transcript shows for a step that threw `error`. */
const shown = (error: unknown) =>
  new Transcript([{
    step: 1,
    user: 1,
    event: "x",
    node: null,
    data: undefined,
    replies: [],
    calls: [],
    error,
  }]).text().split("\n").find((line) => line.startsWith("   !"));

describe("outside attacker f: engine errors inside other errors, in a transcript", () => {
  it("drops the engine's words at the end of the message only", () => {
    const inner = new TypeError("a");
    const wrapper = Object.assign(new Error("TypeError in middleware: a"), {
      name: "BotError",
      error: inner,
    });
    assert.equal(shown(wrapper), "   ! BotError: TypeError in middleware");
    assert.equal(
      shown(new Error("bad value: bad", { cause: new TypeError("bad") })),
      "   ! Error: bad value",
    );
    // a chain: the engine error two causes down
    const deep = new Error("outer: mid: Cannot read x", {
      cause: new Error("mid: Cannot read x", {
        cause: new TypeError("Cannot read x"),
      }),
    });
    assert.equal(shown(deep), "   ! Error: outer: mid");
    // a message that does not end with the engine's: kept whole
    assert.equal(
      shown(new Error("wrapper", { cause: new TypeError("t") })),
      "   ! Error: wrapper",
    );
  });
});

describe("outside attacker i: golden transcripts the same everywhere", () => {
  it("shows every error class an engine words its own way by its name", () => {
    let uri: unknown;
    try {
      decodeURIComponent("%");
    } catch (error) {
      uri = error;
    }
    assert.equal(shown(uri), "   ! URIError");
    // Bun gives AggregateError no message, Node and Deno one of their own
    for (const message of ["", "All promises were rejected"]) {
      const aggregate = new AggregateError([], message);
      assert.equal(shown(aggregate), "   ! AggregateError");
      const wrapper = Object.assign(
        new Error(`AggregateError in middleware: ${message}`),
        { name: "BotError", error: aggregate },
      );
      assert.equal(
        shown(wrapper),
        "   ! BotError: AggregateError in middleware",
      );
    }
    for (const name of ["AbortError", "TimeoutError", "DataCloneError"]) {
      assert.equal(
        shown(new DOMException("worded per runtime", name)),
        `   ! ${name}`,
      );
    }
  });

  it("writes a text cut through an emoji so that it reads back from a UTF-8 file", () => {
    const cut = "pizza \ud83c\udf55".slice(0, 7); // half the emoji
    const transcript = new Transcript([{
      step: 1,
      user: 1,
      event: "x",
      node: "menu",
      data: undefined,
      replies: [{ to: 1, text: cut }],
      calls: [],
    }]);
    const text = transcript.text();
    assert.match(text, /"pizza \\ud83c"/);
    const file = new TextDecoder().decode(new TextEncoder().encode(text));
    assert.equal(file, text);
  });
});

describe("outside attacker g: node keys in a transcript", () => {
  it("quotes a key that is not one plain line, so a golden transcript passes against its own text", async () => {
    type E = { from: number; text: string };
    for (const key of ["a\n2. 1 > x", "(none)", " padded"]) {
      class A extends Node<null, E, number, null> {
        onEvent(): A {
          return new A(null);
        }
      }
      const simulator = () =>
        createSimulator({
          nodes: new Nodes<null, E, number>({
            store: new MemoryStore(),
            nodes: { [key]: A },
            start: () => new A(null),
            shared: null,
            userId: (e) => e.from,
          }),
          outbox: new Outbox(),
          event: (from: number, text: string): E => ({ from, text }),
        });
      const golden = (await simulator().simulate(1, ["hi"])).text();
      assert.equal(golden, `1. 1 > hi\n   = ${JSON.stringify(key)} null\n`);
      await simulator().simulate(1, ["hi"], { transcript: golden });
    }
  });
});

describe("outside attacker i: a test that fakes the timers", () => {
  it("still settles each step, as vi.useFakeTimers() or mock.timers leave it", async () => {
    const { sim } = setup();
    // what a fake-timer library does once the harness is imported: timers
    // that only fire when the test moves its fake clock
    const real = {
      setTimeout: globalThis.setTimeout,
      setImmediate: globalThis.setImmediate,
    };
    Object.assign(globalThis, {
      setTimeout: () => 0,
      setImmediate: () => 0,
    });
    try {
      const transcript = await sim.simulate(1, [
        { event: "hi", node: "lobby" },
        { event: "play", node: "game" },
      ]);
      assert.deepEqual(transcript.nodes, ["lobby", "game"]);
    } finally {
      Object.assign(globalThis, real);
    }
  });
});
