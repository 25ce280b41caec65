// The public surface of mod.ts and what its import graph may contain.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as mod from "../mod.ts";
import * as testing from "../testing/mod.ts";
import * as store from "../store/mod.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Every module reachable from `entry` by static or dynamic import. */
function importGraph(entry: string): { files: string[]; external: string[] } {
  const files = new Set<string>();
  const external = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const source = readFileSync(file, "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "") // doc comments hold examples
      .replace(/^\s*\/\/.*$/gm, "");
    const re = /(?:from|import)\s*\(?\s*["']([^"']+)["']/g;
    for (const [, specifier] of source.matchAll(re)) {
      if (specifier!.startsWith(".")) visit(join(dirname(file), specifier!));
      else external.add(specifier!);
    }
  };
  visit(join(root, entry));
  return {
    files: [...files].map((f) => relative(root, f)).sort(),
    external: [...external].sort(),
  };
}

describe("mod.ts", () => {
  it("exports exactly the public API", () => {
    assert.deepEqual(Object.keys(mod).sort(), [
      "ASIDE_LIMIT",
      "BotnodesError",
      "InvalidStateError",
      "LeaseLostError",
      "LeaseTimeoutError",
      "Node",
      "NodeDataError",
      "Nodes",
      "RedisStore",
      "StateTooLargeError",
      "StoreError",
      "UnregisteredNodeError",
      "UserHandle",
      "resolveStoreOptions",
      "systemClock",
    ]);
  });

  it("imports nothing outside the package, and not testing/", () => {
    const { files, external } = importGraph("mod.ts");
    assert.deepEqual(external, []);
    assert.ok(
      files.every((f) => f === "mod.ts" || f.startsWith("src/")),
      files.join(),
    );
  });
});

describe("store/mod.ts", () => {
  it("exports what store authors need", () => {
    assert.deepEqual(Object.keys(store).sort(), [
      "ASIDE_LIMIT",
      "LeaseLostError",
      "LeaseTimeoutError",
      "StoreError",
      "resolveStoreOptions",
      "storeContract",
      "systemClock",
      "waitForLease",
    ]);
  });

  it("imports no runner: the suite takes the runner's functions", () => {
    const { files, external } = importGraph("store/mod.ts");
    assert.deepEqual(external, ["node:assert/strict"]);
    assert.ok(
      files.every((f) => f === "store/mod.ts" || f.startsWith("src/")),
      files.join(),
    );
  });
});

describe("testing/mod.ts", () => {
  it("exports the test helpers", () => {
    assert.deepEqual(Object.keys(testing).sort(), [
      "FakeClock",
      "MemoryStore",
      "Outbox",
      "Transcript",
      "createSimulator",
    ]);
  });

  it("imports no runner and no bot framework: only node:assert", () => {
    const { external } = importGraph("testing/mod.ts");
    assert.deepEqual(external, ["node:assert/strict"]);
  });
});
