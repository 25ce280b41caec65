import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  InvalidStateError,
  NodeDataError,
  StateTooLargeError,
  UnregisteredNodeError,
} from "./errors.ts";
import { Node } from "./node.ts";
import { Nodes } from "./nodes.ts";
import { z } from "zod";
import type { StateStore } from "./store.ts";
import { MemoryStore } from "../testing/memory_store.ts";
import { FakeClock } from "../testing/fake_clock.ts";
import {
  Cart,
  deferred,
  type Event,
  makeBot,
  Menu,
  type Shared,
  Stray,
} from "../test_support/shop_bot.ts";

const at = (from: number, text: string): Event => ({ from, text });

describe("Nodes.route", () => {
  it("enters the start node for a new user without calling onEvent", async () => {
    const { nodes, shared, store } = makeBot();
    const result = await nodes.route(at(1, "hi"));
    assert.deepEqual(shared.log, ["1 enter menu 0"]);
    assert.ok(result.handled);
    assert.equal(result.key, "menu");
    assert.equal(result.previous, undefined);
    assert.ok(result.node instanceof Menu);
    assert.deepEqual(JSON.parse((await store.get("1"))!), {
      v: 1,
      node: "menu",
      data: { visits: 0 },
    });
  });

  it("runs onEvent on a known user's node, then enters the next node, then commits", async () => {
    const { nodes, shared, store } = makeBot();
    await nodes.route(at(1, "hi"));
    let storedDuringEnter: string | undefined;
    shared.hook = async (where) => {
      if (where === "cart.onEnter") storedDuringEnter = await store.get("1");
    };
    const result = await nodes.route(at(1, "shop"));
    assert.deepEqual(shared.log, [
      "1 enter menu 0",
      "1 menu got shop",
      "1 enter cart ",
    ]);
    assert.match(storedDuringEnter!, /"menu"/);
    assert.ok(result.handled && result.previous instanceof Menu);
    assert.match((await store.get("1"))!, /"cart"/);
  });

  it("enters a node of the same class again when onEvent returns one", async () => {
    const { nodes, shared } = makeBot();
    await nodes.route(at(1, "hi"));
    await nodes.route(at(1, "again"));
    assert.deepEqual(shared.log.at(-1), "1 enter menu 1");
  });

  for (const where of ["menu.onEvent", "cart.onEnter", "menu.onEnter"]) {
    it(`writes nothing and rethrows the same error when ${where} throws`, async () => {
      const { nodes, shared, store } = makeBot();
      if (where !== "menu.onEnter") await nodes.route(at(1, "hi"));
      const before = await store.get("1");
      const boom = new Error(`boom in ${where}`);
      shared.hook = (w) => {
        if (w === where) throw boom;
      };
      await assert.rejects(nodes.route(at(1, "shop")), (e) => e === boom);
      assert.equal(await store.get("1"), before);
      // the lease was released: the next event runs at once
      shared.hook = () => {};
      const result = await nodes.route(at(1, "shop"));
      assert.ok(result.handled);
    });
  }

  it("writes nothing when start throws", async () => {
    const boom = new Error("no start");
    const { nodes, store } = makeBot({
      start: () => {
        throw boom;
      },
    });
    await assert.rejects(nodes.route(at(1, "hi")), (e) => e === boom);
    assert.equal(await store.get("1"), undefined);
  });

  it("releases the lease after a throw, without waiting for it to expire", async () => {
    const { nodes, shared, clock } = makeBot();
    shared.hook = () => {
      throw new Error("x");
    };
    await assert.rejects(nodes.route(at(1, "hi")));
    shared.hook = () => {};
    const t0 = clock.now();
    await nodes.route(at(1, "hi"));
    assert.equal(clock.now(), t0);
  });

  it("ignores an event whose userId is undefined without touching the store", async () => {
    const untouchable = new Proxy({} as StateStore, {
      get: (_, name) => {
        if (name === "begin") return () => assert.fail("store used");
        return () => assert.fail(`store.${String(name)} used`);
      },
    });
    const nodes = new Nodes<Shared, Event | { system: true }, number>({
      store: untouchable,
      nodes: { menu: Menu },
      start: () => new Menu(),
      shared: { log: [], hook: () => {} },
      userId: (event) => ("from" in event ? event.from : undefined),
    });
    assert.deepEqual(await nodes.route({ system: true }), {
      handled: false,
      reason: "not-ours",
    });
  });

  it("works as a bare callback", async () => {
    const { nodes, shared } = makeBot();
    const { route } = nodes;
    await [at(1, "hi")].map(route)[0];
    assert.deepEqual(shared.log, ["1 enter menu 0"]);
  });

  it("applies 1,000 concurrent events of one user, all, in arrival order", async () => {
    const { nodes, store } = makeBot();
    await nodes.route(at(7, "hi"));
    await nodes.route(at(7, "shop"));
    const events = Array.from({ length: 1_000 }, (_, i) => at(7, `${i}`));
    const results = await Promise.all(events.map(nodes.route));
    assert.equal(results.length, 1_000);
    const stored = JSON.parse((await store.get("7"))!);
    assert.deepEqual(
      stored.data.items,
      events.map((e) => e.text),
    );
  });

  it("runs different users concurrently", async () => {
    const { nodes, shared } = makeBot();
    const gate = deferred();
    shared.hook = async (where) => {
      if (where === "menu.onEnter" && shared.log.at(-1) === "1 enter menu 0") {
        await gate.promise;
      }
    };
    const first = nodes.route(at(1, "hi"));
    await nodes.route(at(2, "hi")); // finishes while user 1 is held
    assert.deepEqual(shared.log, ["1 enter menu 0", "2 enter menu 0"]);
    gate.resolve();
    await first;
  });

  it("keeps one user's events in call order across two Nodes on one store", async () => {
    const store = new MemoryStore();
    const make = () =>
      new Nodes<Shared, Event, number>({
        store,
        nodes: { menu: Menu, cart: Cart },
        start: () => new Cart([]),
        shared: {
          log: [],
          hook: () => new Promise((resolve) => setTimeout(resolve, 0)),
        },
        userId: (event) => event.from,
      });
    const [a, b] = [make(), make()];
    await a.route(at(3, "hi"));
    const sent = Array.from({ length: 100 }, (_, i) => i);
    await Promise.all(
      sent.map((i) => (i % 2 ? a : b).route(at(3, `${i}`))),
    );
    // in call order, whichever Nodes each went through: one queue per store
    const items: string[] = JSON.parse((await store.get("3"))!).data.items;
    assert.deepEqual(items, sent.map(String));
    // and a move from outside waits its turn behind them
    const moves = [
      b.route(at(3, "x")),
      a.user(3).to(new Cart(["moved"])),
      b.route(at(3, "y")),
    ];
    await Promise.all(moves);
    assert.deepEqual(
      JSON.parse((await store.get("3"))!).data.items,
      ["moved", "y"],
    );
  });

  it("rebuilds a stored node without its constructor, from validated data", async () => {
    const { nodes, store } = makeBot();
    await nodes.route(at(1, "hi"));
    await nodes.route(at(1, "shop"));
    const built = Menu.built;
    const result = await nodes.route(at(1, "apple"));
    assert.equal(Menu.built, built);
    assert.ok(result.handled && result.previous instanceof Cart);
    // the schema's default filled the field missing from the stored data
    assert.deepEqual(result.previous.data, { items: [], note: "none" });
    const restored = await nodes.user(1).node();
    assert.ok(restored instanceof Cart);
    assert.deepEqual(restored.data, { items: ["apple"], note: "none" });
    const lease = await store.begin("1");
    await store.commit(
      lease,
      JSON.stringify({ v: 1, node: "menu", data: { visits: 3 } }),
    );
    const menu = await nodes.user(1).node();
    assert.ok(menu instanceof Menu);
    assert.equal(
      menu.greeting,
      undefined,
      "fields outside data are not stored",
    );
    assert.equal(Menu.built, built);
  });

  it("throws UnregisteredNodeError naming the class and keys, writing nothing", async () => {
    const { nodes, store, shared } = makeBot();
    await nodes.route(at(1, "hi"));
    const before = await store.get("1");
    await assert.rejects(nodes.route(at(1, "stray")), (error: unknown) => {
      assert.ok(error instanceof UnregisteredNodeError);
      assert.equal(error.className, "Stray");
      assert.deepEqual(error.registered, ["menu", "cart"]);
      assert.match(error.message, /"Stray".*"menu", "cart"/);
      return true;
    });
    assert.equal(await store.get("1"), before);
    assert.ok(!shared.log.some((line) => line.includes("stray enter")));
    const fromStart = makeBot({ start: () => new Stray() });
    await assert.rejects(
      fromStart.nodes.route(at(1, "hi")),
      UnregisteredNodeError,
    );
    await assert.rejects(nodes.user(1).to(new Stray()), UnregisteredNodeError);
    assert.equal(await store.get("1"), before);
  });

  it("refuses a value that is no node with a TypeError naming what gave it, writing nothing", async () => {
    type Giving = { from: number; give: unknown };
    class Giver extends Node<null, Giving, number, null> {
      onEvent(_user: number, event: Giving): Giver {
        return event.give as Giver;
      }
      override timeout(): number {
        return 10;
      }
      override onTimeout(): Giver {
        return undefined as unknown as Giver;
      }
    }
    const warnings: string[] = [];
    const store = new MemoryStore({ clock: new FakeClock() });
    const make = (start: () => Giver) =>
      new Nodes<null, Giving, number>({
        store,
        nodes: { giver: Giver },
        start,
        shared: null,
        userId: (event) => event.from,
        logger: {
          warn: (message, error) => void warnings.push(`${message} ${error}`),
        },
        onInvalidState: () => "giver" as unknown as Giver,
      });
    const nodes = make(() => new Giver(null));
    await nodes.route({ from: 1, give: undefined });
    const before = await store.get("1");
    const cases: [unknown, RegExp][] = [
      [
        undefined,
        /^onEvent of node "giver" returned undefined, not a node \(return the next node, or this to stay\)$/,
      ],
      [Promise.resolve(null), /returned null, not a node/],
      [
        Giver,
        /returned the class Giver, not a node \(a node is an instance: new Giver\(data\)\)$/,
      ],
      [{ data: null }, /returned a plain object, not a node/],
      [[], /returned an array, not a node/],
      // a text is not shown (it may be what the user wrote)
      ["giver", /returned a string \(5 characters\), not a node/],
      [new Date(0), /returned a Date, not a node/],
      [{ constructor: Giver }, /returned a plain object, not a node/],
      [Proxy.revocable({}, {}), /returned a plain object, not a node/],
    ];
    for (const [give, message] of cases) {
      await assert.rejects(nodes.route({ from: 1, give }), (error: unknown) => {
        assert.ok(error instanceof TypeError, String(error));
        assert.match(error.message, message);
        return true;
      });
    }
    assert.equal(await store.get("1"), before);
    await assert.rejects(
      nodes.user(1).to(undefined as unknown as Giver),
      /^TypeError: user\(id\)\.to\(\) was given undefined, not a node/,
    );
    await assert.rejects(
      nodes.user(1).to(Promise.resolve(new Giver(null)) as unknown as Giver),
      /^TypeError: user\(id\)\.to\(\) was given a promise \(await it\), not a node/,
    );
    await assert.rejects(
      make(() => undefined as unknown as Giver).route({ from: 3, give: 0 }),
      /^TypeError: start returned undefined, not a node \(a node is an instance of a registered node class\)$/,
    );
    // the bot's own hook, from route and from user(id).node()
    await store.commit(await store.begin("1"), "not json");
    const hooked =
      /^TypeError: onInvalidState returned a string \(5 characters\), not a node/;
    await assert.rejects(nodes.route({ from: 1, give: 0 }), hooked);
    await assert.rejects(nodes.user(1).node(), hooked);
    // a timer's handler: its firing fails, logged, and is tried again later
    await nodes.user(2).to(new Giver(null));
    (store.timing.clock as FakeClock).advance(10);
    assert.deepEqual(await nodes.runDue(), []);
    assert.ok(
      warnings.some((line) =>
        /onTimeout of node "giver" returned undefined, not a node/.test(line)
      ),
      warnings.join("\n"),
    );
  });

  it("refuses data that fails the schema with NodeDataError, writing nothing", async () => {
    const { nodes, store } = makeBot();
    await nodes.route(at(1, "hi"));
    await nodes.route(at(1, "shop"));
    const before = await store.get("1");
    await assert.rejects(nodes.route(at(1, "bad")), (error: unknown) => {
      assert.ok(error instanceof NodeDataError);
      assert.equal(error.node, "cart");
      assert.match(error.message, /items\.0/);
      return true;
    });
    assert.equal(await store.get("1"), before);
  });
});

describe("duplicate deliveries with eventId", () => {
  type Delivery = Event & { updateId: number };
  const setup = (store = new MemoryStore()) => {
    const shared: Shared = { log: [], hook: () => {} };
    const nodes = new Nodes<Shared, Delivery, number>({
      store,
      nodes: { menu: Menu, cart: Cart },
      start: () => new Cart([]),
      shared,
      userId: (event) => event.from,
      eventId: (event) => event.updateId,
    });
    return { nodes, shared, store };
  };
  const items = async (store: MemoryStore) =>
    JSON.parse((await store.get("1"))!).data.items;

  it("skips an event delivered again after it was committed", async () => {
    const { nodes, store, shared } = setup();
    await nodes.route({ from: 1, text: "hi", updateId: 1 });
    await nodes.route({ from: 1, text: "tea", updateId: 2 });
    const again = await nodes.route({ from: 1, text: "tea", updateId: 2 });
    assert.deepEqual(again, { handled: false, reason: "duplicate", userId: 1 });
    assert.deepEqual(await items(store), ["tea"]);
    assert.equal(
      shared.log.filter((l) => l.includes("cart got tea")).length,
      1,
    );
  });

  it("applies once when the same event arrives concurrently, on two Nodes", async () => {
    const store = new MemoryStore();
    const [a, b] = [setup(store), setup(store)];
    await a.nodes.route({ from: 1, text: "hi", updateId: 1 });
    const results = await Promise.all([
      a.nodes.route({ from: 1, text: "tea", updateId: 7 }),
      b.nodes.route({ from: 1, text: "tea", updateId: 7 }),
      a.nodes.route({ from: 1, text: "tea", updateId: 7 }),
    ]);
    assert.equal(results.filter((r) => r.handled).length, 1);
    assert.deepEqual(await items(store), ["tea"]);
  });

  it("runs a redelivery again when the first delivery failed", async () => {
    const { nodes, store, shared } = setup();
    await nodes.route({ from: 1, text: "hi", updateId: 1 });
    shared.hook = () => {
      throw new Error("network");
    };
    await assert.rejects(nodes.route({ from: 1, text: "tea", updateId: 2 }));
    shared.hook = () => {};
    const retried = await nodes.route({ from: 1, text: "tea", updateId: 2 });
    assert.ok(retried.handled);
    assert.deepEqual(await items(store), ["tea"]);
  });

  it("remembers a bounded number of events per user", async () => {
    const store = new MemoryStore({ seenEvents: 3 });
    const { nodes } = setup(store);
    for (let id = 1; id <= 5; id++) {
      await nodes.route({ from: 1, text: `${id}`, updateId: id });
    }
    // 3, 4, 5 are remembered; 1 and 2 are forgotten and would run again
    assert.equal(
      (await nodes.route({ from: 1, text: "5", updateId: 5 })).handled,
      false,
    );
    assert.equal(
      (await nodes.route({ from: 1, text: "2", updateId: 2 })).handled,
      true,
    );
  });
});

describe("state size limit", () => {
  it("refuses a state over maxStateBytes before writing, counting UTF-8 bytes", async () => {
    const { nodes, store } = makeBot({ maxStateBytes: 200 });
    await nodes.route(at(1, "hi"));
    await nodes.route(at(1, "shop"));
    await nodes.route(at(1, "é".repeat(60))); // 120 bytes of item: fits
    const before = await store.get("1");
    await assert.rejects(
      nodes.route(at(1, "é".repeat(60))),
      (error: unknown) => {
        assert.ok(error instanceof StateTooLargeError);
        assert.equal(error.node, "cart");
        assert.equal(error.limit, 200);
        assert.ok(error.bytes > 200);
        assert.match(error.message, /over the limit of 200 bytes/);
        return true;
      },
    );
    assert.equal(await store.get("1"), before);
    assert.throws(() => makeBot({ maxStateBytes: 0 }), RangeError);
    for (const bad of [0.5, Infinity, 1e400, 2 ** 29 + 1]) {
      assert.throws(
        () => makeBot({ maxStateBytes: bad }),
        /option "maxStateBytes" must be a whole number from 1 to 536,870,912/,
      );
    }
    assert.throws(
      () => makeBot({ maxStateBytes: "10" as unknown as number }),
      TypeError,
    );
  });
});

describe("Nodes options", () => {
  const base = {
    store: new MemoryStore(),
    start: () => new Menu(),
    shared: { log: [], hook: () => {} },
    userId: (event: Event) => event.from,
  };

  it("rejects an empty registry", () => {
    assert.throws(
      () => new Nodes<Shared, Event, number>({ ...base, nodes: {} }),
      (e: unknown) =>
        e instanceof TypeError && /registers no node/.test(e.message),
    );
  });

  it("rejects a class registered under two keys", () => {
    assert.throws(
      () =>
        new Nodes<Shared, Event, number>({
          ...base,
          nodes: { a: Menu, b: Menu },
        }),
      (e: unknown) =>
        e instanceof TypeError &&
        /"Menu" as "b".*already registered as "a"/.test(e.message),
    );
  });

  it("names the option ctx by its new name, shared", () => {
    const { shared, ...rest } = base;
    assert.throws(
      () => new Nodes({ ...rest, nodes: { menu: Menu }, ctx: shared } as never),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message ===
          'Cannot create Nodes: option "ctx" is now called "shared"',
    );
  });

  it("rejects missing functions and stores", () => {
    const nodes = { menu: Menu };
    assert.throws(
      () => new Nodes({ ...base, nodes, start: undefined as never }),
      /option "start" must be a function/,
    );
    assert.throws(
      () => new Nodes({ ...base, nodes, store: {} as never }),
      /option "store" must be a StateStore/,
    );
  });

  it("rejects what JavaScript callers may pass instead of functions and classes", () => {
    const nodes = { menu: Menu };
    // each would otherwise fail every event that reaches it, later
    for (
      const [option, wrong, message] of [
        [
          "eventId",
          "update_id",
          /option "eventId" must be a function.*"update_id"/,
        ],
        [
          "onInvalidState",
          "reset",
          /option "onInvalidState" must be a function/,
        ],
        ["logger", {}, /option "logger" must have a warn/],
        ["logger", null, /option "logger" must have a warn/],
      ] as const
    ) {
      assert.throws(
        () => new Nodes({ ...base, nodes, [option]: wrong } as never),
        (e: unknown) => e instanceof TypeError && message.test(e.message),
        option,
      );
    }
    // an array registers its classes under "0", "1": the key each stored
    // state names, which any reordering would change
    assert.throws(
      () => new Nodes({ ...base, nodes: [Menu] as never }),
      (e: unknown) =>
        e instanceof TypeError &&
        /option "nodes" must be an object of node classes by key \(\{ menu: Menu \}\), not an array$/
          .test(e.message),
    );
    assert.throws(
      () => new Nodes({ ...base, nodes: { menu: () => new Menu() } as never }),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message === 'Cannot register node "menu": it is not a class',
    );
    // a schema of a library without Standard Schema (zod before 3.24, yup)
    class Old extends Menu {
      static override schema = { parse: (x: unknown) => x } as never;
    }
    assert.throws(
      () => new Nodes({ ...base, nodes: { old: Old } }),
      (e: unknown) =>
        e instanceof TypeError &&
        /"old": its static schema is not a Standard Schema/.test(e.message),
    );
  });
});

describe("invalid stored state", () => {
  const cases = [
    ["unparseable", "{not json"],
    ["unparseable", JSON.stringify({ some: "other format" })],
    ["unknown-node", JSON.stringify({ v: 1, node: "gone", data: {} })],
    ["unknown-node", JSON.stringify({ v: 1, node: "__proto__", data: {} })],
    [
      "invalid-data",
      JSON.stringify({ v: 1, node: "cart", data: { items: 3 } }),
    ],
  ] as const;

  const plant = async (store: StateStore, raw: string) =>
    store.commit(await store.begin("1"), raw);

  it("reads a stored -0 as 0, as a commit stores it, and takes a number out of JSON's range as invalid data", async () => {
    type Score = { points: number; list: number[] };
    class Scored extends Node<null, string, number, Score> {
      static override schema = z.object({
        points: z.number(),
        list: z.array(z.number()),
      });
      onEvent(): Scored {
        return new Scored({ ...this.data, list: [...this.data.list, 1] });
      }
    }
    class Loose extends Node<null, string, number, unknown> {
      onEvent(): Loose {
        return this;
      }
    }
    const warnings: string[] = [];
    const store = new MemoryStore();
    const nodes = new Nodes<null, string, number>({
      store,
      nodes: { scored: Scored, loose: Loose },
      start: () => new Scored({ points: 0, list: [] }),
      shared: null,
      userId: () => 1,
      logger: { warn: (message) => void warnings.push(message) },
    });
    // as another program writes it (Python's json.dumps(-0.0)), with a
    // string that only looks like one
    const written =
      `{"v":1,"node":"scored","data":{"points":-0.0,"list":[-0,2,-0e3,-0.5,-1e-400,-0.${
        "0".repeat(400)
      }1],"note":"a-0"}}`;
    await plant(store, written);
    const restored = await nodes.user(1).node();
    assert.ok(Object.is((restored?.data as Score).points, 0));
    await nodes.route("next"); // it was refused: "-0 comes back as 0"
    assert.deepEqual(JSON.parse((await store.get("1"))!).data, {
      points: 0,
      list: [0, 2, 0, -0.5, 0, 0, 1],
    });
    assert.deepEqual(warnings, []);
    for (
      const huge of [
        "1e400",
        "-1E+999",
        "9".repeat(400),
        `2${"0".repeat(300)}e8`,
        `1${"0".repeat(250)}.5e60`,
      ]
    ) {
      const raw = `{"v":1,"node":"loose","data":{"a":[${huge}]}}`;
      await plant(store, raw);
      const invalid = await nodes.user(1).peek();
      assert.ok(invalid instanceof InvalidStateError);
      assert.equal(invalid.reason, "invalid-data");
      assert.deepEqual(invalid.issues, [{
        message: "a number too large for JSON (read as Infinity)",
        path: ["a", 0],
      }]);
      await nodes.route("next"); // kept aside, started over
      assert.match((await store.get("1"))!, /"scored"/);
    }
    assert.equal((await nodes.user(1).aside()).length, 5);
  });

  for (const [reason, raw] of cases) {
    it(`by default reports ${reason}, keeps ${raw} aside and starts over`, async () => {
      const { nodes, store, warnings, shared } = makeBot();
      await plant(store, raw);
      const result = await nodes.route(at(1, "hi"));
      assert.ok(result.handled && result.previous === undefined);
      assert.equal(result.key, "menu");
      assert.deepEqual(shared.log, ["1 enter menu 0"]);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /Cannot restore the state of user "1"/);
      assert.deepEqual(await nodes.user(1).aside(), [raw]);
      assert.match((await store.get("1"))!, /"menu"/);
    });

    it(`hands ${reason} to the hook, which can rethrow, writing nothing`, async () => {
      const seen: InvalidStateError[] = [];
      const { nodes, store } = makeBot({
        onInvalidState: (error) => {
          seen.push(error);
          throw error;
        },
      });
      await plant(store, raw);
      await assert.rejects(nodes.route(at(1, "hi")), InvalidStateError);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.reason, reason);
      assert.equal(seen[0]!.raw, raw);
      assert.equal(seen[0]!.userId, "1");
      assert.equal(await store.get("1"), raw);
      assert.deepEqual(await nodes.user(1).aside(), []);
    });
  }

  it("puts the user on the node the hook returns, given the event", async () => {
    const { nodes, store } = makeBot({
      onInvalidState: (_error, event) => new Cart([`recovered ${event?.text}`]),
    });
    await plant(store, "garbage");
    const result = await nodes.route(at(1, "hi"));
    assert.ok(result.handled && result.node instanceof Cart);
    assert.deepEqual(result.node.data.items, ["recovered hi"]);
    assert.deepEqual(await nodes.user(1).aside(), ["garbage"]);
  });

  it("keeps invalid state aside when user(id).to or reset replaces it", async () => {
    const { nodes, store } = makeBot();
    await plant(store, "garbage 1");
    await nodes.user(1).to(new Menu(5));
    await plant(store, "garbage 2");
    await nodes.user(1).reset();
    assert.deepEqual(await nodes.user(1).aside(), ["garbage 2", "garbage 1"]);
    assert.equal(await store.get("1"), undefined);
  });

  it("user(id).node() returns what the hook decides", async () => {
    const { nodes, store, warnings } = makeBot();
    await plant(store, "garbage");
    assert.equal(await nodes.user(1).node(), undefined);
    // the default hook reports what route does: node() does none of it
    assert.deepEqual(warnings, []);
    assert.equal(await store.get("1"), "garbage");
    assert.deepEqual(await nodes.user(1).aside(), []);
  });

  it("user(id).node() checks what the hook returns as route does", async () => {
    let give: unknown;
    const { nodes, store } = makeBot({ onInvalidState: () => give as never });
    await plant(store, "garbage");
    give = new Cart(["kept"]);
    assert.deepEqual((await nodes.user(1).node())?.data, { items: ["kept"] });
    give = null;
    assert.equal(await nodes.user(1).node(), undefined);
    give = "a string";
    await assert.rejects(nodes.user(1).node(), TypeError);
    give = new Stray();
    await assert.rejects(nodes.user(1).node(), UnregisteredNodeError);
    give = new Cart(3 as never);
    await assert.rejects(nodes.user(1).node(), NodeDataError);
    assert.equal(await store.get("1"), "garbage");
  });

  it("fails user(id).node() at once from inside that user's hook, which it would run forever", async () => {
    let calls = 0;
    const holder: { nodes?: ReturnType<typeof makeBot>["nodes"] } = {};
    const { nodes, store } = makeBot({
      onInvalidState: async (error) => {
        calls++;
        await holder.nodes!.user(Number(error.userId)).node();
        return undefined;
      },
    });
    holder.nodes = nodes;
    await plant(store, "garbage");
    const inside = /from inside onInvalidState for that user/;
    await assert.rejects(nodes.user(1).node(), inside);
    await assert.rejects(nodes.route(at(1, "hi")), inside);
    assert.equal(calls, 2);
    assert.equal(await store.get("1"), "garbage");
  });
});

describe("Nodes.user", () => {
  it("reads nothing for an unknown user", async () => {
    const { nodes } = makeBot();
    assert.equal(await nodes.user(9).node(), undefined);
  });

  it("moves a user with to(): enters the node and commits it", async () => {
    const { nodes, shared } = makeBot();
    await nodes.user(4).to(new Cart(["gift"]));
    assert.deepEqual(shared.log, ["4 enter cart gift"]);
    const node = await nodes.user(4).node();
    assert.ok(node instanceof Cart);
    await nodes.route(at(4, "more"));
    assert.deepEqual((await nodes.user(4).node())?.data, {
      items: ["gift", "more"],
      note: "none",
    });
  });

  it("writes nothing when to()'s onEnter throws", async () => {
    const { nodes, shared, store } = makeBot();
    await nodes.route(at(4, "hi"));
    const before = await store.get("4");
    shared.hook = () => {
      throw new Error("no");
    };
    await assert.rejects(nodes.user(4).to(new Cart([])), /no/);
    assert.equal(await store.get("4"), before);
  });

  it("reset() deletes the state so the next event starts over", async () => {
    const { nodes, shared } = makeBot();
    await nodes.route(at(4, "hi"));
    await nodes.route(at(4, "shop"));
    await nodes.user(4).reset();
    assert.equal(await nodes.user(4).node(), undefined);
    await nodes.user(4).reset(); // nothing to reset: still fine
    await nodes.route(at(4, "hi"));
    assert.equal(shared.log.at(-1), "4 enter menu 0");
  });

  it("to() and reset() wait behind the user's pending events", async () => {
    const { nodes, shared } = makeBot();
    await nodes.route(at(5, "hi"));
    const gate = deferred();
    shared.hook = (where) =>
      where === "menu.onEvent" ? gate.promise : undefined;
    const event = nodes.route(at(5, "shop"));
    const moved = nodes.user(5).to(new Menu(9));
    const reset = nodes.user(5).reset();
    const after = nodes.route(at(5, "hi"));
    gate.resolve();
    await Promise.all([event, moved, reset, after]);
    assert.deepEqual(shared.log, [
      "5 enter menu 0",
      "5 menu got shop",
      "5 enter cart ",
      "5 enter menu 9",
      "5 enter menu 0",
    ]);
  });
});

describe("user(id).to(node, { from })", () => {
  it("moves a user on one of the keys, and no one else, writing nothing for them", async () => {
    const { nodes, shared, store } = makeBot();
    await nodes.route(at(1, "hi")); // menu
    await nodes.route(at(2, "hi"));
    await nodes.route(at(2, "shop")); // cart
    shared.log = [];
    const before = await store.get("1");
    assert.equal(await nodes.user(2).to(new Menu(5), { from: ["cart"] }), true);
    assert.equal(
      await nodes.user(1).to(new Menu(5), { from: ["cart"] }),
      false,
    );
    assert.equal(
      await nodes.user(3).to(new Menu(5), { from: ["cart"] }),
      false,
    );
    assert.deepEqual(shared.log, ["2 enter menu 5"]);
    assert.equal(await store.get("1"), before);
    assert.equal(await store.get("3"), undefined, "no state made");
    assert.equal(await nodes.user(3).to(new Menu(5)), true, "without from");
  });

  it("checks under the lease: a user who moved since the snapshot stays", async () => {
    const { nodes, shared } = makeBot();
    await nodes.route(at(5, "hi"));
    await nodes.route(at(5, "shop")); // cart
    const listed: string[] = [];
    for await (const { userId } of nodes.users({ on: ["cart"] })) {
      listed.push(userId);
      // the user checks out between the snapshot and the move
      await nodes.route(at(5, "done"));
      assert.ok(!((await nodes.user(5).node()) instanceof Cart));
      const moved = await nodes.user(5).to(new Cart(["x"]), { from: ["cart"] });
      assert.equal(moved, false);
    }
    assert.deepEqual(listed, ["5"]);
    assert.ok(!shared.log.includes("5 enter cart x"));
  });

  it("reports skipped to listeners, with the key the user is on", async () => {
    const { nodes } = makeBot();
    await nodes.route(at(6, "hi"));
    const seen: unknown[] = [];
    nodes.observe((t) => void seen.push([t.kind, t.outcome, t.from, t.to]));
    await nodes.user(6).to(new Menu(1), { from: ["cart"] });
    await nodes.user(7).to(new Menu(1), { from: ["cart"] });
    await nodes.user(6).to(new Menu(1), { from: ["menu"] });
    assert.deepEqual(seen, [
      ["to", "skipped", "menu", undefined],
      ["to", "skipped", undefined, undefined],
      ["to", "committed", "menu", "menu"],
    ]);
  });

  it("users() and countUsers() refuse options that cannot be meant", async () => {
    const { nodes } = makeBot();
    await nodes.route(at(1, "hi"));
    for (const on of ["menu", [1], [null], {}, 42] as unknown[]) {
      await assert.rejects(
        nodes.users({ on } as { on: string[] }).next(),
        (error: unknown) =>
          error instanceof TypeError &&
          /users\(\{ on \}\): must be an array of node keys/.test(
            error.message,
          ),
        `on ${String(on)}`,
      );
    }
    for (const count of [0, -1, 1.5, NaN, 1e21]) {
      await assert.rejects(nodes.users({ count }).next(), RangeError);
      await assert.rejects(nodes.countUsers({ count }), RangeError);
    }
  });

  it("refuses a from that is not an array of keys, by a rejection, before anything runs", async () => {
    const { nodes, shared } = makeBot();
    // deno-lint-ignore no-sparse-arrays
    for (const from of ["cart", [1], [null], {}, [, "cart"]] as unknown[]) {
      // a promise that rejects, as every failure of to(): not a throw
      const moved = nodes.user(1).to(new Menu(1), { from } as {
        from: string[];
      });
      await assert.rejects(
        moved,
        (error: unknown) =>
          error instanceof TypeError &&
          /\{ from \}\): must be an array/.test(error.message),
      );
    }
    assert.deepEqual(shared.log, []);
  });
});

describe("calls for a user from inside their own handler", () => {
  it("fail at once when two handlers would wait for each other's user (a cycle), not after the store's wait", async () => {
    type Move = { from: number; text: string };
    const both = deferred();
    let entered = 0;
    const outcomes: string[] = [];
    // two players: each move also moves the other player
    class Player extends Node<null, Move, number, { moves: number }> {
      async onEvent(user: number, event: Move): Promise<Player> {
        if (event.text === "move") {
          if (++entered === 2) both.resolve();
          await both.promise; // both handlers hold their user now
          const other = user === 1 ? 2 : 1;
          try {
            await game.user(other).to(new Player({ moves: 99 }));
            outcomes.push(`${user} moved ${other}`);
          } catch (error) {
            outcomes.push(`${user}: ${(error as Error).message}`);
          }
        }
        return new Player({ moves: this.data.moves + 1 });
      }
    }
    const game: Nodes<null, Move, number> = new Nodes<null, Move, number>({
      store: new MemoryStore(), // wait: 35 s
      nodes: { player: Player },
      start: () => new Player({ moves: 0 }),
      shared: null,
      userId: (event) => event.from,
    });
    await game.route({ from: 1, text: "hi" });
    await game.route({ from: 2, text: "hi" });
    await Promise.all([
      game.route({ from: 1, text: "move" }),
      game.route({ from: 2, text: "move" }),
    ]);
    // the second to wait is told at once; the first moves the other once
    // the other's handler is over
    assert.equal(outcomes.length, 2);
    assert.match(
      outcomes[0]!,
      /^(\d): Cannot wait for user "\d" from inside the handler of user "\1": the handler of user "\d" waits for user "\1"/,
    );
    assert.match(outcomes[1]!, /^\d moved \d$/);
  });

  it("fail at once instead of waiting for themselves forever", {
    timeout: 20_000,
  }, async () => {
    const { nodes, shared, store } = makeBot();
    // another Nodes on the same store (a second bot, a module of its own)
    const { nodes: other } = makeBot({ store, shared });
    await nodes.route(at(1, "hi"));
    const errors: unknown[] = [];
    shared.hook = async (where) => {
      if (where !== "menu.onEvent") return;
      for (
        const call of [
          () => nodes.user(1).to(new Menu(5)),
          () => nodes.user(1).reset(),
          () => nodes.route(at(1, "again")),
          () => other.user(1).to(new Menu(5)),
          () => other.route(at(1, "again")),
        ]
      ) {
        await call().catch((error) => errors.push(error));
      }
    };
    const result = await nodes.route(at(1, "x"));
    assert.ok(result.handled);
    assert.equal(errors.length, 5);
    for (const error of errors) {
      assert.ok(error instanceof Error);
      assert.match(
        error.message,
        /^Cannot wait for user "1" from inside their own handler: it would wait for itself forever/,
      );
    }
    assert.match((await store.get("1"))!, /"visits":1/);
  });

  it("still run for other users, and after the handler's transition", async () => {
    const { nodes, shared } = makeBot();
    await nodes.route(at(1, "hi"));
    const after = deferred();
    let later: Promise<boolean> | undefined;
    shared.hook = async (where) => {
      if (where !== "menu.onEvent" || shared.log.at(-1) !== "1 menu got x") {
        return;
      }
      await nodes.route(at(2, "hi")); // another user: runs now
      // scheduled from inside the handler, runs once it is over
      later = after.promise.then(() => nodes.user(1).to(new Menu(7)));
    };
    await nodes.route(at(1, "x"));
    after.resolve();
    await later;
    assert.deepEqual(shared.log, [
      "1 enter menu 0",
      "1 menu got x",
      "2 enter menu 0",
      "1 enter menu 1",
      "1 enter menu 7",
    ]);
  });
});

describe("user ids", () => {
  it('keys a user by the string form of the id: 42 and "42" are one user', async () => {
    const nodes = new Nodes<
      Shared,
      Event | { id: string | number },
      string | number
    >({
      store: new MemoryStore(),
      nodes: { menu: Menu },
      start: () => new Menu(),
      shared: { log: [], hook: () => {} },
      userId: (event) => ("id" in event ? event.id : event.from),
    });
    await nodes.route({ id: 42 });
    assert.ok(await nodes.user("42").node());
  });

  it("rejects ids that cannot be meant, in route and user(id)", async () => {
    const bad = [NaN, Infinity, -Infinity, 1.5, 2 ** 53, null, true, {}, 10n];
    for (const id of bad) {
      const { nodes, store } = makeBot({ userId: () => id as never });
      await assert.rejects(nodes.route(at(1, "hi")), (error: unknown) => {
        assert.ok(error instanceof TypeError, `${String(id)}: ${error}`);
        assert.match(error.message, /^Cannot use (a )?user id/);
        return true;
      });
      assert.throws(() => nodes.user(id as never), TypeError);
      assert.equal(store.size, 0);
    }
  });

  it("bounds an id's length at 1,024 UTF-16 units", async () => {
    const { nodes } = makeBot({ userId: (event) => event.text as never });
    await nodes.route(at(0, "x".repeat(1_024)));
    await assert.rejects(
      nodes.route(at(0, "x".repeat(1_024 * 1_024))),
      (error: unknown) =>
        error instanceof RangeError &&
        error.message ===
          "Cannot use a user id of 1048576 UTF-16 units: the limit is 1024",
    );
    assert.throws(() => nodes.user("x".repeat(1_025) as never), RangeError);
  });
});

describe("onEnter and its event", () => {
  it("gets the event that brought the user, and undefined from to()", async () => {
    type Seen = { events: (string | undefined)[] };
    class Here
      extends Node<Seen, { from: number; text: string }, number, null> {
      constructor() {
        super(null);
      }
      override onEnter(
        _user: number,
        seen: Seen,
        event?: { from: number; text: string },
      ) {
        seen.events.push(event?.text);
      }
      onEvent(): Here {
        return new Here();
      }
    }
    const seen: Seen = { events: [] };
    const nodes = new Nodes<Seen, { from: number; text: string }, number>({
      store: new MemoryStore(),
      nodes: { here: Here },
      start: () => new Here(),
      shared: seen,
      userId: (event) => event.from,
    });
    await nodes.route({ from: 1, text: "first" });
    await nodes.route({ from: 1, text: "second" });
    await nodes.user(1).to(new Here());
    assert.deepEqual(seen.events, ["first", "second", undefined]);
  });
});
