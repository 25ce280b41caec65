// KeyNamer: every user id has keys of its own, and a key is read back as a
// user only when it is the key that user's id gives.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { KeyNamer } from "./redis_keys.ts";
import { Node, Nodes } from "../mod.ts";
import { MemoryStore } from "../testing/mod.ts";

describe("KeyNamer.userOf", () => {
  const names = new KeyNamer("app");

  it("reads back the user of every state key it gives", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (id) => {
        assert.equal(names.userOf(names.keys(id)[0]), id);
      }),
      { numRuns: 2_000 },
    );
  });

  it("reads no user from a key that no user's id gives (another app's key)", () => {
    for (
      const inner of ["%u0041", "%zz", "%7b", "%2", "%%", "%u00", "a%25%"]
    ) {
      assert.equal(names.userOf(`app:{${inner}}`), undefined, inner);
    }
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (inner) => {
        const user = names.userOf(`app:{${inner}}`);
        if (user !== undefined) {
          assert.equal(names.keys(user)[0], `app:{${inner}}`);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("users() and countUsers(), ids no user(id) reaches", () => {
  it("skip a stored id longer than a user id may be", async () => {
    class Menu extends Node<null, { from: string }, string, null> {
      onEvent(): Menu {
        return new Menu(null);
      }
    }
    const store = new MemoryStore();
    const nodes = new Nodes<null, { from: string }, string>({
      store,
      nodes: { menu: Menu },
      start: () => new Menu(null),
      shared: null,
      userId: (event) => event.from,
    });
    await nodes.route({ from: "a" });
    const long = "x".repeat(2_000);
    const lease = await store.begin(long);
    await store.commit(lease, (await store.get("a"))!);
    const seen: string[] = [];
    for await (const user of nodes.users()) seen.push(user.userId);
    assert.deepEqual(seen, ["a"]);
    assert.equal((await nodes.countUsers()).total, 1);
  });
});
