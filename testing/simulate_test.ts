import { describe, it } from "node:test";
import assert, { AssertionError } from "node:assert/strict";
import { z } from "zod";
import { Node, Nodes } from "../mod.ts";
import { createSimulator, MemoryStore, Outbox } from "./mod.ts";

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
