// Runs `deno doc --lint` on every entry point of deno.json and fails on every
// diagnostic but one kind: `private-type-ref` for a type that a file imports
// from an npm package (grammY's `Bot`, `Context`, ...). Those types are
// public in their own package; Deno reports them because node_modules makes
// them local files (denoland/deno#27364, fixed upstream for non-file
// modules).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const entries = Object.values(
  JSON.parse(readFileSync("deno.json", "utf8")).exports,
);
const run = spawnSync("node_modules/.bin/deno", ["doc", "--lint", ...entries], {
  encoding: "utf8",
  env: { ...process.env, NO_COLOR: "1" },
});
const output = `${run.stdout}${run.stderr}`;
const blocks = output.split(/\n(?=error\[)/).filter((b) =>
  b.startsWith("error[")
);

/** Names a file imports from bare (npm) specifiers. */
function npmImports(file) {
  const names = new Set();
  const source = readFileSync(file, "utf8");
  const re =
    /import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+["']([^"'.][^"']*)["']/g;
  for (const [, list, specifier] of source.matchAll(re)) {
    if (specifier.startsWith("node:")) continue;
    for (const part of list.split(",")) {
      const name = part.replace(/\btype\b/, "").split(/\bas\b/).pop().trim();
      if (name) names.add(name);
    }
  }
  return names;
}

const kept = blocks.filter((block) => {
  const ref = /^error\[private-type-ref\]: .* references private type '([^']+)'/
    .exec(block);
  const file = /-->\s+(\S+?):\d+:\d+/.exec(block)?.[1];
  if (!ref || !file || file.includes("/node_modules/")) {
    return !file?.includes("/node_modules/");
  }
  return !npmImports(file).has(ref[1]);
});
for (const block of kept) {
  console.log(block.replace(/\nerror: Found[\s\S]*$/, ""));
}
const ignored = blocks.length - kept.length;
if (kept.length > 0 || (run.status !== 0 && blocks.length === 0)) {
  if (blocks.length === 0) console.log(output);
  console.log(
    `deno doc --lint: ${kept.length} problems in ${entries.join(" ")}`,
  );
  process.exit(1);
}
console.log(
  `deno doc --lint: clean on ${entries.join(" ")}` +
    (ignored
      ? ` (${ignored} references to npm packages' own types not counted)`
      : ""),
);
