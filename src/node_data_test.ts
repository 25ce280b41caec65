// What a node's data may be: it comes back from the store equal to what was
// committed, or it is refused with NodeDataError before anything is written.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { NodeDataError, type NodeDataReason } from "./errors.ts";
import { Node } from "./node.ts";
import { Nodes } from "./nodes.ts";
import type { StandardSchemaV1 } from "./standard_schema.ts";
import { MemoryStore } from "../testing/memory_store.ts";

type Event = { from: number; value: unknown };

/** A node without a schema: its data is stored unchecked, as JSON. */
class Loose extends Node<unknown, Event, number, unknown> {
  onEvent(_user: number, event: Event): Node<unknown, Event, number> {
    return new Loose(event.value);
  }
}

/** Makes a bot whose one node holds any value, under `schema` if given. */
function holder(schema?: StandardSchemaV1) {
  class Holder extends Node<unknown, Event, number, unknown> {
    static override schema = schema as StandardSchemaV1;
    onEvent(_user: number, event: Event): Node<unknown, Event, number> {
      return new Holder(event.value);
    }
  }
  const store = new MemoryStore();
  const warnings: string[] = [];
  const nodes = new Nodes<unknown, Event, number>({
    store,
    nodes: { holder: Holder, loose: Loose },
    start: (event) => new Holder(event.value),
    shared: {},
    userId: (event) => event.from,
    logger: { warn: (message) => warnings.push(message) },
  });
  return { nodes, store, warnings, Holder };
}

/** Expects `route` to refuse `value` and to write nothing. */
async function refused(
  schema: StandardSchemaV1 | undefined,
  value: unknown,
  reason: NodeDataReason,
  path: PropertyKey[],
  message: RegExp,
) {
  const { nodes, store } = holder(schema);
  await assert.rejects(nodes.route({ from: 1, value }), (error: unknown) => {
    assert.ok(error instanceof NodeDataError, String(error));
    assert.equal(error.node, "holder");
    assert.equal(error.reason, reason);
    assert.deepEqual(error.issues[0]?.path, path);
    assert.match(error.message, message);
    return true;
  });
  assert.equal(await store.get("1"), undefined, "nothing is written");
}

class Point {
  constructor(public x: number) {}
}

describe("node data that JSON cannot carry", () => {
  it("refuses z.date(), z.map() and undefined in arrays, naming the field", async () => {
    await refused(
      z.object({ at: z.date() }),
      { at: new Date(0) },
      "not-json",
      ["at"],
      /^Cannot store node "holder": its data would not come back equal from JSON \(at: an instance of Date is not JSON \(keep a date as an ISO string, z\.iso\.datetime\(\), or a number of ms\)\)$/,
    );
    await refused(
      z.object({ seen: z.map(z.string(), z.number()) }),
      { seen: new Map([["a", 1]]) },
      "not-json",
      ["seen"],
      /seen: an instance of Map is not JSON/,
    );
    await refused(
      z.object({ items: z.array(z.string().optional()) }),
      { items: ["a", undefined] },
      "not-json",
      ["items", 1],
      /items\.1: undefined in an array comes back as null/,
    );
  });

  const cases: [string, unknown, PropertyKey[], RegExp][] = [
    ["a BigInt", { n: 10n }, ["n"], /n: a BigInt is not JSON/],
    ["NaN", { n: NaN }, ["n"], /n: NaN is not a JSON number/],
    ["Infinity", [1, -Infinity], [1], /1: -Infinity is not a JSON number/],
    ["-0", { a: { b: -0 } }, ["a", "b"], /a\.b: -0 comes back as 0/],
    ["a class instance", { p: new Point(1) }, ["p"], /instance of Point/],
    ["a function", { f: () => 1 }, ["f"], /f: a function is not JSON/],
    ["a symbol", { s: Symbol("s") }, ["s"], /s: a symbol is not JSON/],
    ["a symbol key", { [Symbol("k")]: 1 }, [], /a symbol key is not JSON/],
    // deno-lint-ignore no-sparse-arrays
    ["a hole in an array", [1, , 3], [1], /1: a hole in an array/],
    ["a boxed string", { s: new String("s") }, ["s"], /instance of String/],
    // JSON.stringify would store what toJSON returns: hidden ones too
    [
      "a non-enumerable toJSON",
      {
        a: Object.defineProperty({ x: 1 }, "toJSON", { value: () => "other" }),
      },
      ["a"],
      /a: an object with a toJSON method is not JSON data/,
    ],
    [
      "an array with a toJSON",
      [Object.defineProperty([1], "toJSON", { value: () => [2] })],
      [0],
      /0: an array with a toJSON method is not JSON data/,
    ],
    [
      "a proxy giving a toJSON",
      {
        p: new Proxy({ x: 1 }, {
          get: (target, key) =>
            key === "toJSON" ? () => "proxied" : Reflect.get(target, key),
        }),
      },
      ["p"],
      /p: an object with a toJSON method is not JSON data/,
    ],
  ];
  for (const [name, value, path, message] of cases) {
    it(`refuses ${name}, with a schema or without`, async () => {
      await refused(undefined, value, "not-json", path, message);
      await refused(z.any(), value, "not-json", path, message);
    });
  }

  it("refuses a cycle", async () => {
    const value: Record<string, unknown> = { a: [1] };
    (value.a as unknown[]).push(value);
    await refused(undefined, value, "not-json", ["a", 1], /a cycle/);
  });

  it("stores a value shared twice, and undefined properties as absent", async () => {
    const { nodes } = holder(z.any());
    const shared = { x: 1 };
    await nodes.route({
      from: 1,
      value: { a: shared, b: shared, c: undefined },
    });
    assert.deepEqual((await nodes.user(1).node())?.data, {
      a: { x: 1 },
      b: { x: 1 },
    });
  });

  it("refuses data before a user's first event writes a lossy form", async () => {
    // the old behaviour: an ISO string stored, every later event invalid
    const { nodes, store, warnings } = holder(z.object({ at: z.date() }));
    await assert.rejects(
      nodes.route({ from: 1, value: { at: new Date(0) } }),
      NodeDataError,
    );
    await assert.rejects(
      nodes.user(1).to(new Loose({ at: new Date(0) })),
      NodeDataError,
    );
    assert.equal(await store.get("1"), undefined);
    assert.deepEqual(warnings, []);
  });
});

/**
 * What a value is expected to come back as: the documented exceptions are an
 * `undefined` property (absent) and an object without a prototype (a plain
 * object).
 */
function normalized(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalized);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item !== undefined) {
      Object.defineProperty(out, key, {
        value: normalized(item),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return out;
}

describe("node data round trip", () => {
  for (
    const [name, schema] of [["no schema", undefined], [
      "z.any()",
      z.any(),
    ]] as const
  ) {
    it(`with ${name}: 2,000 random values are refused or come back equal`, async () => {
      let accepted = 0;
      let refusedCount = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.anything({
            withBigInt: true,
            withBoxedValues: true,
            withDate: true,
            withMap: true,
            withNullPrototype: true,
            withObjectString: true,
            withSet: true,
            withSparseArray: true,
            withTypedArray: true,
            withUnicodeString: true,
          }),
          async (value) => {
            const { nodes, store, warnings } = holder(schema);
            try {
              await nodes.route({ from: 1, value });
            } catch (error) {
              assert.ok(error instanceof NodeDataError, String(error));
              assert.equal(await store.get("1"), undefined);
              refusedCount++;
              return;
            }
            accepted++;
            // restored for the next event, and by user(id).node()
            const restored = await nodes.user(1).node();
            assert.deepStrictEqual(restored?.data, normalized(value));
            await nodes.route({ from: 1, value: restored?.data });
            assert.deepStrictEqual(
              (await nodes.user(1).node())?.data,
              normalized(value),
            );
            assert.deepEqual(warnings, []);
          },
        ),
        { numRuns: 2_000 },
      );
      assert.ok(
        accepted > 200 && refusedCount > 200,
        `${accepted}/${refusedCount}`,
      );
    });
  }
});

describe("node data through a transforming schema", () => {
  it("refuses a schema that does not give back its own output", async () => {
    await refused(
      z.object({ name: z.string().transform((s) => s + "!") }),
      { name: "Ann" },
      "unstable",
      ["name"],
      /^Cannot store node "holder": its schema does not give back its own output \(name: the schema changed "Ann" to "Ann!", and would change it again on every restore\)$/,
    );
    await refused(
      z.object({ at: z.date().transform((d) => d.toISOString()) }),
      { at: new Date(0) },
      "unstable",
      ["at"],
      /changed an object to "1970/,
    );
    await refused(
      z.object({ tags: z.array(z.string()).transform((t) => [...t, "x"]) }),
      { tags: ["a"] },
      "unstable",
      ["tags"],
      /changed an array to an array/,
    );
  });

  it("stores the schema's output: unknown keys dropped, defaults added", async () => {
    const { nodes, store } = holder(
      z.object({ a: z.string(), d: z.string().default("x") }),
    );
    await nodes.route({ from: 1, value: { a: "1", extra: 5 } });
    assert.deepEqual(JSON.parse((await store.get("1"))!).data, {
      a: "1",
      d: "x",
    });
    await nodes.route({ from: 1, value: { a: "2", d: undefined } });
    assert.deepEqual((await nodes.user(1).node())?.data, { a: "2", d: "x" });
  });

  it("warns once per field that the schema dropped from the data a node was built with", async () => {
    // the Data type has a field the schema forgot: it would be gone, unsaid,
    // at the next event
    const { nodes, warnings } = holder(
      z.object({
        name: z.string(),
        items: z.array(z.object({ id: z.number() })),
      }),
    );
    const value = { name: "a", email: "e", items: [{ id: 1, note: "x" }] };
    await nodes.route({ from: 1, value });
    await nodes.route({ from: 1, value });
    await nodes.route({
      from: 2,
      value: { ...value, items: [{ id: 2 }, { id: 3, note: "y" }] },
    });
    assert.equal(warnings.length, 2, warnings.join("\n"));
    assert.match(warnings[0]!, /dropped the field "items\.\*\.note"/);
    assert.match(
      warnings[1]!,
      /^Node "holder": its schema dropped the field "email" from the data the node was built with, so it is not stored/,
    );
    // what a schema adds or keeps says nothing
    const quiet = holder(z.looseObject({ d: z.string().default("x") }));
    await quiet.nodes.route({ from: 1, value: { extra: 1 } });
    assert.deepEqual(quiet.warnings, []);
  });

  it("reports at most five dropped fields a node, and never fails an event for it", async () => {
    // a record keyed by user names a new field at every event
    const { nodes, warnings, store } = holder(
      z.object({ byUser: z.record(z.string(), z.object({ n: z.number() })) }),
    );
    for (let i = 0; i < 50; i++) {
      await nodes.route({
        from: 1,
        value: { byUser: { [`u${i}`]: { n: i, email: "e" } } },
      });
    }
    assert.equal(warnings.length, 6, warnings.join("\n"));
    assert.match(warnings[0]!, /dropped the field "byUser\.u0\.email"/);
    assert.match(warnings[5]!, /dropped more fields .* no more are reported$/);
    assert.deepEqual(JSON.parse((await store.get("1"))!).data, {
      byUser: { u49: { n: 49 } },
    });
    // a logger that throws: the event commits all the same
    const Throwing = holder(z.object({ a: z.string() })).Holder;
    const loud = new Nodes<unknown, Event, number>({
      store: new MemoryStore(),
      nodes: { holder: Throwing },
      start: (event) => new Throwing(event.value),
      shared: {},
      userId: (event) => event.from,
      logger: {
        warn: () => {
          throw new Error("logger down");
        },
      },
    });
    const result = await loud.route({ from: 1, value: { a: "x", b: 1 } });
    assert.ok(result.handled);
  });

  it("restores the same data however often it is restored", async () => {
    const { nodes } = holder(
      z.object({ name: z.string(), n: z.number().default(0) }),
    );
    await nodes.route({ from: 1, value: { name: "Ann" } });
    for (let i = 0; i < 3; i++) {
      const node = await nodes.user(1).node();
      assert.deepEqual(node?.data, { name: "Ann", n: 0 });
      await nodes.route({ from: 1, value: node?.data });
    }
  });

  it("checks an asynchronous schema's output too", async () => {
    const schema: StandardSchemaV1 = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: (value) => Promise.resolve({ value: `${value}!` }),
      },
    };
    await refused(schema, "a", "unstable", [], /changed "a" to "a!"/);
  });
});

describe("node data a hostile review found", () => {
  /** A value nested `depth` arrays deep. */
  const nested = (depth: number): unknown => {
    let value: unknown = 0;
    for (let i = 0; i < depth; i++) value = [value];
    return value;
  };

  it("refuses data nested deeper than 512 levels with NodeDataError", async () => {
    const { nodes } = holder();
    await assert.rejects(
      nodes.route({ from: 1, value: nested(100_000) }),
      (error: unknown) =>
        error instanceof NodeDataError && error.reason === "not-json" &&
        /nested deeper than 512 levels/.test(error.message),
    );
    await nodes.route({ from: 2, value: nested(500) });
    await nodes.route({ from: 2, value: nested(500) });
  });

  it("starts a user over whose stored data is nested too deep, keeping it aside", async () => {
    const { nodes, store, warnings } = holder(
      z.object({ extra: z.unknown() }),
    );
    const raw = `{"v":1,"node":"holder","data":{"extra":${"[".repeat(100_000)}${
      "]".repeat(100_000)
    }}}`;
    const lease = await store.begin("1");
    await store.commit(lease, raw);
    const routed = await nodes.route({ from: 1, value: { extra: 1 } });
    assert.equal(routed.handled, true);
    assert.deepEqual((await nodes.user(1).node())?.data, { extra: 1 });
    assert.deepEqual(await nodes.user(1).aside(), [raw]);
    assert.match(warnings.join("\n"), /nested deeper than 512 levels/);
  });

  it("refuses a transform that adds a field it changes on every restore", async () => {
    const counting = z.object({ a: z.number() }).passthrough().transform((
      o,
    ) => ({ ...o, visits: ((o as { visits?: number }).visits ?? 0) + 1 }));
    await refused(
      counting as unknown as StandardSchemaV1,
      { a: 1 },
      "unstable",
      [],
      /changes again when given its own output/,
    );
  });

  it("refuses a schema that drops a field it requires, before the next restore finds it invalid", async () => {
    await refused(
      z.object({ v: z.literal(1), items: z.array(z.string()) })
        .transform(({ items }) => ({ items })),
      { v: 1, items: ["tea"] },
      "unstable",
      ["v"],
      /the schema refuses its own output \(.*: a field it requires and drops\?\)/,
    );
    // unknown keys stripped, a schema that accepts its own output: stored
    const { nodes, store } = holder(z.object({ items: z.array(z.string()) }));
    await nodes.route({ from: 1, value: { items: ["tea"], legacy: true } });
    assert.deepEqual(JSON.parse((await store.get("1"))!).data, {
      items: ["tea"],
    });
  });

  it("checks that output again as a restore reads it: from JSON", async () => {
    const custom = (
      validate: (value: unknown) => StandardSchemaV1.Result<unknown>,
    ): StandardSchemaV1 => ({
      "~standard": { version: 1, vendor: "test", validate },
    });
    // an output key set to undefined (absent once stored) that the schema
    // refuses when present
    const { nodes: a, store: storeA } = holder(custom((value) => {
      const v = value as { a?: unknown; b?: unknown };
      return "a" in v && v.a === undefined
        ? { issues: [{ message: "a present but undefined", path: ["a"] }] }
        : { value: { a: undefined, b: v.b } };
    }));
    await a.route({ from: 1, value: { b: 1, extra: 2 } });
    assert.deepEqual(JSON.parse((await storeA.get("1"))!).data, { b: 1 });
    // a null-prototype output, which the schema refuses as its input
    const { nodes: b, store: storeB } = holder(custom((value) => {
      if (Object.getPrototypeOf(value) === null) {
        return { issues: [{ message: "no prototype" }] };
      }
      const output = Object.create(null);
      output.a = (value as { a: unknown }).a;
      return { value: output };
    }));
    await b.route({ from: 1, value: { a: 1, extra: 2 } });
    assert.deepEqual(JSON.parse((await storeB.get("1"))!).data, { a: 1 });
  });

  it("still stores defaults a schema adds", async () => {
    const { nodes, store } = holder(
      z.object({ a: z.number(), b: z.string().default("x") }),
    );
    await nodes.route({ from: 1, value: { a: 1 } });
    await nodes.route({ from: 1, value: { a: 2 } });
    assert.deepEqual(JSON.parse((await store.get("1"))!).data, {
      a: 2,
      b: "x",
    });
  });

  it("refuses an array with a property that is no item", async () => {
    await refused(
      undefined,
      Object.assign([1, 2], { note: "lost" }),
      "not-json",
      [],
      /a property of an array that is no item is lost/,
    );
  });
});

describe("node data that cannot be read", () => {
  it("refuses a revoked Proxy and a getter that throws with NodeDataError, writing nothing", async () => {
    const { proxy, revoke } = Proxy.revocable({ a: 1 }, {});
    revoke();
    const getter = Object.defineProperty({}, "a", {
      enumerable: true,
      get() {
        throw new Error("no reading");
      },
    });
    for (const value of [proxy, { nested: [proxy] }, getter]) {
      await refused(
        undefined,
        value,
        "not-json",
        [],
        /its data would not come back equal from JSON \(a value that cannot be read \(/,
      );
    }
  });
});

describe("a schema that throws", () => {
  const throwing = (
    validate: (value: unknown) => unknown,
  ): StandardSchemaV1 => ({
    "~standard": {
      version: 1,
      vendor: "test",
      validate: validate as StandardSchemaV1["~standard"]["validate"],
    },
  });
  /** A thrown value whose every conversion to a string throws. */
  const unprintable = Object.create(null, {
    [Symbol.toPrimitive]: {
      value: () => {
        throw new Error("no");
      },
    },
  });

  it("refuses the data with NodeDataError, caused by what it threw, writing nothing", async () => {
    const boom = new Error("boom");
    for (
      const [schema, cause, message] of [
        [
          throwing(() => {
            throw boom;
          }),
          boom,
          /the schema threw: boom/,
        ],
        [throwing(() => Promise.reject(boom)), boom, /the schema threw: boom/],
        [
          throwing(() => {
            throw unprintable;
          }),
          unprintable,
          /the schema threw: an object/,
        ],
      ] as const
    ) {
      const { nodes, store } = holder(schema);
      await assert.rejects(nodes.route({ from: 1, value: 1 }), (error) => {
        assert.ok(error instanceof NodeDataError, String(error));
        assert.equal(error.reason, "schema");
        assert.equal(error.cause, cause);
        assert.match(error.message, message);
        return true;
      });
      assert.equal(await store.get("1"), undefined, "nothing is written");
    }
  });

  it("refuses data, or finds a stored state invalid, when the schema's result is no result or its issues cannot be read", async () => {
    const { proxy: revoked, revoke } = Proxy.revocable([], {});
    revoke();
    const cases: [unknown, RegExp][] = [
      [undefined, /the schema gave undefined where a result/],
      [Promise.resolve(null), /the schema gave null where a result/],
      [{ issues: "oops" }, /issues that are "oops", not an array/],
      [{ issues: [{ message: Symbol("m") }] }, /\(a symbol\)/],
      [{ issues: [{ message: "bad", path: [{ key: {} }] }] }, /an object: bad/],
      [{ issues: revoked }, /the schema threw: /],
      [{
        then() {
          throw new Error("then threw");
        },
      }, /the schema threw: then threw/],
    ];
    for (const [result, message] of cases) {
      let broken = false;
      const { nodes, store, warnings } = holder(
        throwing((value) => broken ? result : { value }),
      );
      // storing: refused, nothing written
      broken = true;
      await assert.rejects(nodes.route({ from: 1, value: 1 }), (error) => {
        assert.ok(error instanceof NodeDataError, String(error));
        assert.match(error.message, message);
        return true;
      });
      assert.equal(await store.get("1"), undefined);
      // restoring: the state is invalid, the user starts over (the start
      // node's data is refused too, so the event still fails)
      broken = false;
      await nodes.route({ from: 1, value: 1 });
      broken = true;
      await assert.rejects(nodes.route({ from: 1, value: 2 }), NodeDataError);
      assert.match(warnings.join("\n"), message);
    }
  });

  it("makes a stored state invalid, not a crash, even when what it threw cannot be shown", async () => {
    let refuse = false;
    const { nodes, store, warnings } = holder(throwing((value) => {
      if (refuse) throw unprintable;
      return { value };
    }));
    await nodes.route({ from: 1, value: 1 });
    refuse = true;
    // the restore finds the state invalid (a warning, not a crash) and the
    // user starts over; storing the start node throws too: NodeDataError
    await assert.rejects(nodes.route({ from: 1, value: 2 }), NodeDataError);
    assert.match(warnings.join("\n"), /the schema threw: an object/);
    refuse = false;
    await nodes.route({ from: 1, value: 3 });
    assert.deepEqual(JSON.parse((await store.get("1"))!).data, 3);
  });
});

describe("event ids", () => {
  const bot = (eventId: (event: Event) => unknown) =>
    new Nodes<unknown, Event, number>({
      store: new MemoryStore(),
      nodes: { loose: Loose },
      start: (event) => new Loose(event.value),
      shared: {},
      userId: (event) => event.from,
      eventId: eventId as (event: Event) => string,
    });

  it("refuses ids that are not strings or safe integers, and long ones", async () => {
    for (const bad of [{}, NaN, 1.5, null, 2 ** 60]) {
      await assert.rejects(
        bot(() => bad).route({ from: 1, value: 1 }),
        TypeError,
        String(bad),
      );
    }
    await assert.rejects(
      bot(() => "e".repeat(1_025)).route({ from: 1, value: 1 }),
      RangeError,
    );
  });

  it("keys numbers and strings alike, as user ids", async () => {
    let id: unknown = 7;
    const nodes = bot(() => id);
    assert.equal((await nodes.route({ from: 1, value: 1 })).handled, true);
    id = "7";
    assert.deepEqual(await nodes.route({ from: 1, value: 2 }), {
      handled: false,
      reason: "duplicate",
      userId: 1,
    });
  });
});
