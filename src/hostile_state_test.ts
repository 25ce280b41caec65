// Property tests: thousands of random and corrupt values at users' keys.
// `route` only ever throws the documented errors, the invalid-state hook sees
// every value it cannot restore, raw values are kept aside, and no prototype
// is polluted.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Redis } from "ioredis";
import { BotnodesError, InvalidStateError } from "./errors.ts";
import { Nodes } from "./nodes.ts";
import type { StateStore } from "./store.ts";
import { MemoryStore } from "../testing/memory_store.ts";
import {
  Cart,
  type Event,
  Menu,
  type Shared,
} from "../test_support/shop_bot.ts";
import { randomPrefix, REDIS_URL, redisSkip } from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";

const skipRedis = await redisSkip();

const nastyKeys = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "items",
  "visits",
  "note",
];
const nodeKeys = [
  "menu",
  "cart",
  "gone",
  "__proto__",
  "constructor",
  "hasOwnProperty",
  "",
];

/** JSON text of an object that may have own `__proto__`-like keys. */
const nastyObject = fc.array(
  fc.tuple(fc.constantFrom(...nastyKeys), fc.jsonValue()),
  {
    maxLength: 4,
  },
).map((entries) =>
  `{${
    entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(
      ",",
    )
  }}`
);

const data = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v) ?? "null"),
  nastyObject,
  fc.record({ items: fc.array(fc.oneof(fc.string(), fc.integer())) }).map((v) =>
    JSON.stringify(v)
  ),
  fc.record({ visits: fc.oneof(fc.integer(), fc.double(), fc.string()) }).map((
    v,
  ) => JSON.stringify(v)),
);

/** Raw stored values: envelopes of ours, half-right ones, and garbage. */
const raw = fc.oneof(
  fc.tuple(
    fc.oneof(
      fc.constant("1"),
      fc.jsonValue().map((v) => JSON.stringify(v) ?? "1"),
    ),
    fc.oneof(fc.constantFrom(...nodeKeys), fc.string()),
    data,
  ).map(([v, node, d]) =>
    `{"v":${v},"node":${JSON.stringify(node)},"data":${d}}`
  ),
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.jsonValue().map((v) => JSON.stringify(v) ?? ""),
  nastyObject,
  fc.constantFrom(
    "",
    "null",
    "{",
    "[".repeat(50_000) + "]".repeat(50_000),
    `{"v":1,"node":"cart","data":{"items":["${"x".repeat(1_000_000)}"]}}`,
    `{"v":1,"node":"cart","data":{"items":[],"__proto__":{"polluted":true}}}`,
    `{"v":1,"node":"menu","data":{"visits":1,"constructor":{"prototype":{"polluted":true}}}}`,
    `{"__proto__":{"v":1,"node":"menu"}}`,
  ),
);

function bot(store: StateStore, rethrow: boolean) {
  const seen: InvalidStateError[] = [];
  const nodes = new Nodes<Shared, Event, number>({
    store,
    nodes: { menu: Menu, cart: Cart },
    start: () => new Menu(0),
    shared: { log: [], hook: () => {} },
    userId: (event) => event.from,
    onInvalidState: (error) => {
      seen.push(error);
      if (rethrow) throw error;
    },
    logger: { warn: () => {} },
  });
  return { nodes, seen };
}

const prototypeNames = () =>
  Object.getOwnPropertyNames(Object.prototype).sort();

async function hostileStates(
  store: StateStore,
  numRuns: number,
  wellFormedOnly: boolean,
) {
  const before = prototypeNames();
  let user = 0;
  let invalid = 0;
  await fc.assert(
    fc.asyncProperty(
      wellFormedOnly ? raw.filter((r) => r.isWellFormed()) : raw,
      fc.boolean(),
      async (value, rethrow) => {
        const id = ++user;
        const { nodes, seen } = bot(store, rethrow);
        await store.commit(await store.begin(String(id)), value);
        let result;
        try {
          result = await nodes.route({ from: id, text: "hello" });
        } catch (error) {
          assert.ok(
            error instanceof BotnodesError,
            `undocumented error: ${error}`,
          );
          assert.ok(
            rethrow && error instanceof InvalidStateError,
            String(error),
          );
          assert.equal(error.raw, value);
          assert.equal(
            await store.get(String(id)),
            value,
            "a rethrow writes nothing",
          );
          invalid++;
          return;
        }
        assert.ok(result.handled);
        if (seen.length === 1) {
          invalid++;
          assert.equal(seen[0]!.raw, value);
          assert.equal(result.previous, undefined);
          assert.deepEqual(await nodes.user(id).aside(), [value]);
        } else {
          assert.equal(seen.length, 0);
          assert.ok(
            result.previous instanceof Menu || result.previous instanceof Cart,
          );
        }
        // what is stored now restores cleanly
        const now = await nodes.user(id).node();
        assert.ok(now instanceof Menu || now instanceof Cart);
        assert.equal(seen.length <= 1, true);
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
      },
    ),
    { numRuns },
  );
  assert.deepEqual(prototypeNames(), before, "Object.prototype changed");
  assert.ok(invalid > numRuns / 2, `only ${invalid} invalid values tried`);
}

describe("hostile stored state", () => {
  it("on MemoryStore: 10,000 random and corrupt values", async () => {
    await hostileStates(new MemoryStore(), 10_000, false);
  });

  it(
    "on RedisStore: 1,000 random and corrupt values",
    { skip: skipRedis },
    async () => {
      const redis = new Redis(REDIS_URL);
      const prefix = randomPrefix("hostile");
      try {
        await hostileStates(new RedisStore(redis, { prefix }), 1_000, true);
      } finally {
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length) await redis.del(...keys);
        redis.disconnect();
      }
    },
  );
});
