// The public surface of mod.ts, what its import graph may contain, and what
// the published package holds.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import process from "node:process";
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
    const re = /(?<![\w."'])(?:from|import)\s*\(?\s*["']([^"']+)["']/g;
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

describe("integrations/otel.ts", () => {
  it("depends on @opentelemetry/api alone, and exports instrument", async () => {
    const { external } = importGraph("integrations/otel.ts");
    assert.deepEqual(external, ["@opentelemetry/api"]);
    const otel = await import("../integrations/otel.ts");
    assert.deepEqual(Object.keys(otel).sort(), [
      "INSTRUMENTATION_NAME",
      "instrument",
    ]);
  });
});

describe("testing/mod.ts", () => {
  it("exports the test helpers", () => {
    assert.deepEqual(Object.keys(testing).sort(), [
      "ConversationMap",
      "FakeClock",
      "MemoryStore",
      "NO_STATE",
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

/** The files `deno publish --dry-run` would publish, relative to the root. */
function publishedFiles(): string[] {
  const run = spawnSync(
    join(root, "node_modules", ".bin", "deno"),
    ["publish", "--dry-run", "--allow-dirty", "--no-check"],
    { cwd: root, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
  );
  const output = `${run.stdout}${run.stderr}`;
  assert.equal(run.status, 0, output);
  const published = [...output.matchAll(/^\s+(file:\/\/\S+) \(/gm)]
    .map(([, url]) => relative(root, fileURLToPath(url!)))
    .sort();
  assert.ok(published.includes("mod.ts"), output);
  return published;
}

describe("the published package", () => {
  const published = publishedFiles();

  it("holds the modules the exports reach, and no test helper", () => {
    const config = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
    const entries = Object.values(config.exports as Record<string, string>);
    const reachable = new Set(
      entries.flatMap((entry) => importGraph(entry).files),
    );
    // every module published is library code some export reaches (a test
    // helper is reached by no export), and every module reached is published
    assert.deepEqual(
      published.filter((file) => /\.[cm]?[jt]sx?$/.test(file)),
      [...reachable].sort(),
    );
    const others = published.filter((file) => !/\.[cm]?[jt]sx?$/.test(file));
    assert.deepEqual(
      others.filter((file) =>
        !/^(LICENSE|README\.md|CHANGELOG\.md|deno\.json|docs\/[\w-]+\.md)$/
          .test(file)
      ),
      [],
      "only the readme, changelog, licence, config and docs besides modules",
    );
  });

  it("has a README whose relative links reach published files", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8")
      .replace(/```[\s\S]*?```/g, ""); // code blocks hold no links
    const broken = [...readme.matchAll(/\]\(([^)\s]+)\)/g)]
      .map(([, target]) => target!.split("#")[0]!)
      .filter((target) => target !== "" && !/^[a-z][a-z0-9+.-]*:/i.test(target))
      .filter((target) =>
        !published.some((file) =>
          file === target || file.startsWith(target.replace(/\/?$/, "/"))
        )
      );
    assert.deepEqual(broken, [], "link them by full URL, or name them as code");
  });
});

describe("the layers", () => {
  it("import no private file of another folder, and src/ imports no testing/", () => {
    const bad: string[] = [];
    const walk = (dir: string): string[] =>
      readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory()
          ? ["node_modules", ".git", ".tmp"].includes(e.name)
            ? []
            : walk(join(dir, e.name))
          : e.name.endsWith(".ts")
          ? [join(dir, e.name)]
          : []
      );
    for (const file of walk(".")) {
      const source = readFileSync(join(root, file), "utf8")
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(/^\s*\/\/.*$/gm, "");
      for (const [, spec] of source.matchAll(/from\s+["'](\.[^"']+)["']/g)) {
        const target = relative(root, join(root, dirname(file), spec!));
        const crosses = dirname(target) !== dirname(file);
        if (crosses && basename(target).startsWith("_")) {
          bad.push(`${file} -> ${target}`);
        }
        if (
          file.startsWith("src/") && !file.endsWith("_test.ts") &&
          target.startsWith("testing/")
        ) bad.push(`${file} -> ${target}`);
        // the other entries' files reach the core through its entries only
        if (
          /^(testing|adapters|integrations)\//.test(file) &&
          !file.endsWith("_test.ts") && target.startsWith("src/")
        ) bad.push(`${file} -> ${target}`);
      }
    }
    assert.deepEqual(bad, []);
  });
});
