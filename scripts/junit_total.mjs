// Counts the leaf tests of JUnit reports (one per runtime) and prints a line a
// runtime and the total as the last line: "N passed, N failed".
// A runtime whose report is missing (it crashed), or whose runner exited
// non-zero with no failing test, counts as one failure.
// Arguments: report.xml:exitcode ...
// Exits 1 when anything failed.
import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";

let passed = 0;
let failed = 0;
for (const arg of process.argv.slice(2)) {
  const [file, code = "0"] = arg.split(":");
  const runtime = basename(file, ".xml");
  if (!existsSync(file)) {
    console.log(`${runtime}: no report (the runner crashed)`);
    failed++;
    continue;
  }
  const xml = readFileSync(file, "utf8");
  const cases = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const match of xml.matchAll(re)) {
    const name = /\bname="([^"]*)"/.exec(match[1])?.[1] ?? "";
    const body = match[3] ?? "";
    cases.push({
      name,
      failed: /<(failure|error)\b/.test(body),
      skipped: /<skipped\b/.test(body),
    });
  }
  // Deno reports a describe block as a test case too: count leaves only.
  const parents = new Set();
  for (const { name } of cases) {
    const parts = name.split(" &gt; ");
    for (let i = 1; i < parts.length; i++) {
      parents.add(parts.slice(0, i).join(" &gt; "));
    }
  }
  const leaves = cases.filter((c) => !parents.has(c.name) && !c.skipped);
  let bad = leaves.filter((c) => c.failed).length;
  if (bad === 0 && code !== "0") {
    console.log(`${runtime}: the runner exited with ${code} outside any test`);
    bad = 1;
  }
  console.log(`${runtime}: ${leaves.length - bad} passed, ${bad} failed`);
  passed += leaves.length - bad;
  failed += bad;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
