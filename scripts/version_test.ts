// One version, stated once: deno.json's `version` is what JSR publishes, and
// everything else that names a version (CHANGELOG.md's latest release, a
// pinned `@botnodes/core@x.y.z` in the docs, the release tag) must agree with
// it. package.json is the private "botnodes-dev" manifest of the development
// tools, never published, and carries no version of its own.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const read = (path: string): string => readFileSync(join(root, path), "utf8");
const readJson = (path: string): Record<string, unknown> =>
  JSON.parse(read(path));

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** Compares two semantic versions (pre-release identifiers compared simply). */
function compareVersions(a: string, b: string): number {
  const [, ...pa] = SEMVER.exec(a)!;
  const [, ...pb] = SEMVER.exec(b)!;
  for (let i = 0; i < 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  if (pa[3] === pb[3]) return 0;
  if (pa[3] === undefined) return 1; // 1.0.0 > 1.0.0-rc.1
  if (pb[3] === undefined) return -1;
  return pa[3]! < pb[3]! ? -1 : 1;
}

/** The `## [...]` headings of CHANGELOG.md, in order. */
function changelogHeadings(): { name: string; date?: string; line: string }[] {
  return [...read("CHANGELOG.md").matchAll(/^## (.*)$/gm)].map(([line]) => {
    const match = /^## \[([^\]]+)\](?: - (\S+))?$/.exec(line!);
    assert.ok(match, `CHANGELOG.md: "${line}" is not "## [version] - date"`);
    return {
      name: match[1]!,
      ...(match[2] === undefined ? {} : { date: match[2] }),
      line: line!,
    };
  });
}

const version = readJson("deno.json").version as string;

describe("version", () => {
  it("deno.json's version is a semantic version", () => {
    assert.equal(typeof version, "string");
    assert.match(version, SEMVER);
  });

  it("CHANGELOG.md: Unreleased first, then the releases, newest first", () => {
    const headings = changelogHeadings();
    assert.equal(headings[0]?.line, "## [Unreleased]");
    const releases = headings.slice(1);
    assert.ok(releases.length > 0, "CHANGELOG.md has no release");
    for (const { name, date, line } of releases) {
      assert.match(name, SEMVER, `CHANGELOG.md: "${line}" names no version`);
      assert.match(
        date ?? "",
        /^\d{4}-\d{2}-\d{2}$/,
        `CHANGELOG.md: "${line}" has no date (YYYY-MM-DD)`,
      );
      assert.ok(
        !Number.isNaN(Date.parse(date!)),
        `CHANGELOG.md: "${line}": no such date`,
      );
    }
    for (let i = 1; i < releases.length; i++) {
      const [newer, older] = [releases[i - 1]!, releases[i]!];
      assert.ok(
        compareVersions(newer.name, older.name) > 0 &&
          newer.date! >= older.date!,
        `CHANGELOG.md: "${newer.line}" must come after "${older.line}"`,
      );
    }
  });

  it("CHANGELOG.md's latest release is deno.json's version", () => {
    const latest = changelogHeadings()[1];
    assert.equal(
      latest?.name,
      version,
      `deno.json says ${version}, CHANGELOG.md's latest release is ` +
        `${latest?.name}: release both together`,
    );
  });

  it("CHANGELOG.md links each release heading to its version", () => {
    const text = read("CHANGELOG.md");
    for (const { name } of changelogHeadings().slice(1)) {
      const link = new RegExp(
        `^\\[${name.replaceAll(".", "\\.")}\\]: (.+)$`,
        "m",
      )
        .exec(text);
      assert.ok(link, `CHANGELOG.md has no link for [${name}]`);
      assert.ok(
        link[1]!.endsWith(`@${name}`),
        `CHANGELOG.md: the link of [${name}] is ${link[1]}`,
      );
    }
  });

  it("package.json (private, unpublished) states no version", () => {
    const pkg = readJson("package.json");
    assert.equal(pkg.private, true);
    assert.equal(pkg.name, "botnodes-dev");
    assert.equal(pkg.version, undefined, "the version lives in deno.json");
    const lock = readJson("package-lock.json") as {
      version?: string;
      packages: Record<string, { version?: string }>;
    };
    assert.equal(lock.version, undefined);
    assert.equal(lock.packages[""]?.version, undefined);
  });

  it("a version pinned in the docs is deno.json's", () => {
    const docs = ["README.md", "CHANGELOG.md"];
    if (existsSync(join(root, "docs"))) {
      for (const file of readdirSync(join(root, "docs"))) {
        if (file.endsWith(".md")) docs.push(join("docs", file));
      }
    }
    for (const file of docs) {
      let text = read(file);
      // The changelog links every release to its own version.
      if (file === "CHANGELOG.md") {
        text = text.replace(/^\[[^\]]+\]: .*$/gm, "");
      }
      for (
        const [, pinned] of text.matchAll(/@botnodes\/core@([^\s`"')\]]+)/g)
      ) {
        const bare = pinned!.replace(/^[\^~]/, "");
        assert.equal(bare, version, `${file} pins @botnodes/core@${pinned}`);
      }
    }
  });

  it("publish.yml publishes a v* tag only when it is deno.json's version, over OIDC", () => {
    const workflow = read(".github/workflows/publish.yml");
    assert.match(workflow, /^ {4}tags: \["v\*"\]$/m, "runs on v* tags");
    assert.match(workflow, /^ {6}id-token: write\b/m, "JSR's OIDC token");
    assert.match(workflow, /readFileSync\("deno\.json"/, "reads deno.json");
    assert.match(workflow, /"\$TAG" != "v\$version"/, "compares the tag");
    assert.match(workflow, /^ {8}run: node_modules\/\.bin\/deno publish$/m);
    assert.doesNotMatch(workflow, /secrets\./, "no token secret");
    assert.match(workflow, /uses: \.\/\.github\/workflows\/ci\.yml/);
  });

  it("ci.yml runs what .ci/run runs", () => {
    const workflow = read(".github/workflows/ci.yml");
    const run = read(".ci/run");
    const commands = [
      ...run.matchAll(/^(?:\S+=\$\()?(bash scripts\/\S+|npm ci)\b/gm),
    ]
      .map(([, command]) => command!);
    assert.ok(commands.includes("bash scripts/test.sh"), ".ci/run not read");
    for (const command of commands) {
      assert.ok(workflow.includes(command), `ci.yml does not run ${command}`);
    }
    assert.match(workflow, /^ {2}push:$/m);
    assert.match(workflow, /^ {2}pull_request:$/m);
    assert.match(workflow, /^ {6}redis:\n {8}image: redis:/m, "Redis service");
  });
});
