/**
 * `ConversationMap`: the map of a conversation, drawn from the transitions
 * the tests walked: a Mermaid `stateDiagram-v2` with counts, and coverage.
 *
 * @module
 */

import type { Transition, TransitionKind } from "../mod.ts";

/**
 * Where a conversation starts and ends in a map: a user without state
 * (Mermaid's `[*]`). Use it in {@linkcode ConversationMapOptions.expected}.
 * A node registered under this key cannot be mapped: the map refuses it
 * with a `TypeError`.
 *
 * @example
 * ```ts
 * import { NO_STATE } from "@botnodes/core/testing";
 *
 * const expected = { [NO_STATE]: ["menu"], menu: ["order", NO_STATE] };
 * ```
 */
export const NO_STATE = "[*]";

/**
 * Options of {@linkcode ConversationMap}.
 *
 * @example
 * ```ts
 * import { type ConversationMapOptions, NO_STATE } from "@botnodes/core/testing";
 *
 * const options: ConversationMapOptions = {
 *   nodes: ["menu", "order"],
 *   expected: { [NO_STATE]: ["menu"], menu: ["menu", "order"], order: ["menu"] },
 * };
 * ```
 */
export interface ConversationMapOptions {
  /**
   * The registered node keys (or the registry itself: its keys are taken),
   * so that the coverage names the nodes never entered.
   */
  readonly nodes?: readonly string[] | Readonly<Record<string, unknown>>;
  /**
   * The transitions the bot is meant to have: for each node key (or
   * {@linkcode NO_STATE}), the keys it may lead to ({@linkcode NO_STATE}
   * for a reset). The coverage then names those never walked and those
   * walked but not declared.
   */
  readonly expected?: Readonly<Record<string, readonly string[]>>;
}

/**
 * A transition as the map counts it.
 *
 * @example
 * ```ts
 * import type { MapEdge } from "@botnodes/core/testing";
 *
 * const edge: MapEdge = { from: "[*]", to: "menu", label: "", count: 2 };
 * ```
 */
export interface MapEdge {
  /** The node key before, or `[*]` for none. */
  readonly from: string;
  /** The node key after, or `[*]` for none (a reset). */
  readonly to: string;
  /**
   * What made it, when not an event: `timeout`, `to()`, `reset()`, or
   * `kept aside` (the stored state could not be restored).
   */
  readonly label: string;
  /** How many times it was walked. */
  readonly count: number;
}

/**
 * What the tests walked, against what the bot has.
 *
 * @example
 * ```ts
 * import type { MapCoverage } from "@botnodes/core/testing";
 *
 * const coverage: MapCoverage = {
 *   neverEntered: ["feedback"],
 *   neverWalked: [["menu", "feedback"]],
 *   undeclared: [],
 *   failed: [["order", 1]],
 * };
 * ```
 */
export interface MapCoverage {
  /** Registered node keys no committed transition entered. */
  readonly neverEntered: readonly string[];
  /** Declared transitions (`[from, to]`) never walked. */
  readonly neverWalked: readonly (readonly [string, string])[];
  /** Walked transitions (`[from, to]`) not declared (when some are). */
  readonly undeclared: readonly (readonly [string, string])[];
  /** Failed transitions, per node they started from (`[*]`: none). */
  readonly failed: readonly (readonly [string, number])[];
}

/**
 * Options of {@linkcode ConversationMap.markdown}.
 *
 * @example
 * ```ts
 * import type { MapMarkdownOptions } from "@botnodes/core/testing";
 *
 * const options: MapMarkdownOptions = {
 *   title: "The food bot",
 *   generatedBy: "examples/food_bot/map_test.ts",
 * };
 * ```
 */
export interface MapMarkdownOptions {
  /** The heading. Default "Conversation map". */
  readonly title?: string | undefined;
  /** What generates the file, said in a comment at its top. */
  readonly generatedBy?: string | undefined;
}

const LABELS: Record<TransitionKind, string> = {
  event: "",
  timeout: "timeout",
  to: "to()",
  reset: "reset()",
};

/**
 * Records the transitions a bot walks (the tests' conversations) and draws
 * them: `mermaid()` gives a `stateDiagram-v2` of the nodes and transitions
 * seen, with counts; `coverage()` names the registered nodes never entered
 * and, when the bot declares the transitions it expects, those never walked
 * and those walked but not declared. Feed it with `watch(nodes)`, the
 * simulator's `map` option, or `record` from a listener. Only committed
 * transitions are drawn; failures are counted per node.
 *
 * @example The map of a small bot's tests
 * ```ts
 * import assert from "node:assert/strict";
 * import { Node, Nodes } from "@botnodes/core";
 * import { ConversationMap, MemoryStore } from "@botnodes/core/testing";
 *
 * type Event = { from: number; text: string };
 * class Menu extends Node<null, Event, number, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   onEvent(_user: number, event: Event): Menu | Order {
 *     return event.text === "order" ? new Order() : new Menu();
 *   }
 * }
 * class Order extends Menu {}
 * class Help extends Menu {}
 *
 * const registry = { menu: Menu, order: Order, help: Help };
 * const nodes = new Nodes<null, Event, number>({
 *   store: new MemoryStore(),
 *   nodes: registry,
 *   start: () => new Menu(),
 *   shared: null,
 *   userId: (event) => event.from,
 * });
 * const map = new ConversationMap({ nodes: registry });
 * map.watch(nodes);
 * for (const text of ["hi", "order", "back"]) await nodes.route({ from: 1, text });
 * await nodes.route({ from: 2, text: "hi" });
 *
 * assert.equal(
 *   map.mermaid(),
 *   [
 *     "stateDiagram-v2",
 *     "  help",
 *     "  [*] --> menu: 2",
 *     "  menu --> order: 1",
 *     "  order --> menu: 1",
 *     "",
 *   ].join("\n"),
 * );
 * assert.deepEqual(map.coverage().neverEntered, ["help"]);
 * ```
 */
export class ConversationMap {
  readonly #nodes: readonly string[];
  readonly #expected: ReadonlyMap<string, readonly string[]> | undefined;
  readonly #edges = new Map<string, MapEdge>();
  readonly #failed = new Map<string, number>();

  /**
   * Makes an empty map.
   *
   * @param options The registered nodes and the expected transitions.
   */
  constructor(options: ConversationMapOptions = {}) {
    const nodes = options.nodes ?? [];
    this.#nodes = Array.isArray(nodes) ? [...nodes] : Object.keys(nodes);
    if (this.#nodes.includes(NO_STATE)) refuseNoStateKey("nodes");
    this.#expected = options.expected === undefined
      ? undefined
      : new Map(Object.entries(options.expected));
  }

  /**
   * Counts one transition: committed ones become edges, failed ones count
   * against the node they started from; duplicates and events that were
   * not ours are no transitions.
   *
   * @param transition A transition, as `nodes.observe` reports it.
   */
  record(transition: Transition<unknown, string | number>): void {
    if (transition.from === NO_STATE || transition.to === NO_STATE) {
      refuseNoStateKey("a transition");
    }
    if (transition.outcome === "failed") {
      const from = transition.from ?? NO_STATE;
      this.#failed.set(from, (this.#failed.get(from) ?? 0) + 1);
      return;
    }
    if (transition.outcome !== "committed") return;
    if (transition.kind === "reset" && transition.from === undefined) return;
    const from = transition.from ?? NO_STATE;
    const to = transition.to ?? NO_STATE;
    const label = transition.invalid !== undefined
      ? "kept aside"
      : LABELS[transition.kind];
    const id = JSON.stringify([from, to, label]);
    const edge = this.#edges.get(id);
    this.#edges.set(id, { from, to, label, count: (edge?.count ?? 0) + 1 });
  }

  /**
   * Records every transition of `nodes` from now on.
   *
   * @typeParam Event The event type.
   * @typeParam UserId The type of the user ids.
   * @param nodes A `Nodes` (anything with `observe`).
   * @returns A function that stops recording.
   */
  watch<Event, UserId extends string | number>(
    nodes: {
      observe(
        listener: (transition: Transition<Event, UserId>) => void,
      ): () => void;
    },
  ): () => void {
    return nodes.observe((transition) => this.record(transition));
  }

  /** The transitions walked, sorted by from, to and label. */
  get edges(): readonly MapEdge[] {
    return [...this.#edges.values()].sort((a, b) =>
      compare(a.from, b.from) || compare(a.to, b.to) ||
      compare(a.label, b.label)
    );
  }

  /** What the tests walked, against the nodes and expected transitions. */
  coverage(): MapCoverage {
    const edges = this.edges;
    const entered = new Set(edges.map((edge) => edge.to));
    const walked = new Set(edges.map((e) => JSON.stringify([e.from, e.to])));
    const declared = new Set<string>();
    const neverWalked: [string, string][] = [];
    for (const [from, tos] of this.#expected ?? []) {
      for (const to of tos) {
        const id = JSON.stringify([from, to]);
        declared.add(id);
        if (!walked.has(id)) neverWalked.push([from, to]);
      }
    }
    const undeclared: [string, string][] = [];
    if (this.#expected !== undefined) {
      for (const id of walked) {
        if (!declared.has(id)) undeclared.push(JSON.parse(id));
      }
    }
    return {
      neverEntered: this.#nodes.filter((key) => !entered.has(key)).sort(
        compare,
      ),
      neverWalked: neverWalked.sort(byPair),
      undeclared: undeclared.sort(byPair),
      failed: [...this.#failed].sort(([a], [b]) => compare(a, b)),
    };
  }

  /**
   * The map as a Mermaid `stateDiagram-v2`: the nodes never entered, then
   * each transition walked with its count (and what made it, when not an
   * event). Keys that are not plain identifiers are declared with
   * `state "key" as sN`, a `"`, `#`, `%`, `<`, `>` or control character in
   * them, and blanks at either end, as Mermaid's entity code (`#34;`).
   */
  mermaid(): string {
    const ids = new Map<string, string>([[NO_STATE, NO_STATE]]);
    const lines = ["stateDiagram-v2"];
    const id = (key: string) => {
      let name = ids.get(key);
      if (name === undefined) {
        name = bare(key) ? key : `s${ids.size}`;
        ids.set(key, name);
        if (name !== key) {
          lines.push(`  state "${mermaidText(key)}" as ${name}`);
        }
      }
      return name;
    };
    const edges = this.edges;
    const entered = new Set(edges.flatMap((edge) => [edge.from, edge.to]));
    for (const key of this.#nodes) {
      if (!entered.has(key)) lines.push(`  ${id(key)}`);
    }
    for (const edge of edges) {
      const label = edge.label === ""
        ? `${edge.count}`
        : `${edge.label} ${edge.count}`;
      lines.push(`  ${id(edge.from)} --> ${id(edge.to)}: ${label}`);
    }
    return lines.join("\n") + "\n";
  }

  /**
   * A Markdown page of the map: a heading, the Mermaid diagram, and the
   * coverage as lists. Made to be kept in the repository and compared by a
   * test, so that it never goes stale.
   *
   * @param options The heading, and what generates the file.
   */
  markdown(options: MapMarkdownOptions = {}): string {
    const coverage = this.coverage();
    const pair = ([from, to]: readonly [string, string]) =>
      inlineCode(`${from} --> ${to}`);
    const list = (items: readonly string[]) =>
      items.length === 0 ? "none" : items.join(", ");
    const lines = [
      ...(options.generatedBy === undefined ? [] : [
        `<!-- Generated by ${
          oneLine(options.generatedBy).replace(/--(!?)>/g, "--$1&gt;")
        }: do not edit by hand. -->`,
        "",
      ]),
      `# ${oneLine(options.title ?? "Conversation map")}`,
      "",
      "The transitions the tests walked, with how many times (`[*]`: no state).",
      "",
      "```mermaid",
      this.mermaid().trimEnd(),
      "```",
      "",
      "## Coverage",
      "",
      `- Nodes never entered: ${list(coverage.neverEntered.map(inlineCode))}`,
    ];
    if (this.#expected !== undefined) {
      lines.push(
        `- Declared transitions never walked: ${
          list(coverage.neverWalked.map(pair))
        }`,
        `- Walked transitions never declared: ${
          list(coverage.undeclared.map(pair))
        }`,
      );
    }
    lines.push(
      `- Failed transitions: ${
        list(
          coverage.failed.map(([from, n]) => `from ${inlineCode(from)} ${n}`),
        )
      }`,
      "",
    );
    return lines.join("\n");
  }
}

/**
 * A text as Markdown inline code: fenced by more backticks than it has in a
 * row, with a space inside the fence when it starts or ends with one (or
 * with a blank, which Markdown would strip), on one line.
 */
function inlineCode(text: string): string {
  const flat = oneLine(text);
  const longest = Math.max(
    0,
    ...(flat.match(/`+/g) ?? []).map((run) => run.length),
  );
  const fence = "`".repeat(longest + 1);
  const pad = /^[`\s]|[`\s]$/.test(flat) ? " " : "";
  return fence + pad + flat + pad + fence;
}

/** A text with its line breaks as blanks: a heading or list item is a line. */
function oneLine(text: string): string {
  return text.replace(/\r\n|[\r\n\u2028\u2029]/g, " ");
}

/**
 * Whether a key can stand in a Mermaid diagram as its own id: a plain
 * identifier, but none of the diagram's words (`end`, `note`, ...) and none
 * shaped like the ids given to the other keys (`s1`, `s2`, ...).
 */
function bare(key: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) && !/^s\d+$/.test(key) &&
    !MERMAID_WORDS.has(key.toLowerCase());
}

/**
 * A key as the text of a Mermaid string, which has no escapes: `"`, `#`, `%`
 * (Mermaid takes `%%{...}%%` anywhere for a directive), `<` and `>` (its
 * `<<fork>>`, `<<join>>` and `<<choice>>`, and HTML it strips), control
 * characters, blanks at either end (which it trims), and the blank after
 * `direction` (a statement to its lexer) as Mermaid's entity codes
 * (`#34;`), which it shows as the characters; colons at the start (it
 * drops one) likewise; an empty key as a zero-width space (an empty string
 * does not parse, and a blank one it trims, showing the id instead).
 */
function mermaidText(key: string): string {
  if (key === "") return "#8203;";
  const code = (char: string) => `#${char.charCodeAt(0)};`;
  const start = key.length - key.trimStart().length;
  const end = key.trimEnd().length;
  const inner = key.slice(start, Math.max(start, end))
    // deno-lint-ignore no-control-regex
    .replace(/["#%<>\u0000-\u001f\u007f]/g, code)
    .replace(/^:+/, (colons) => colons.replace(/:/g, code))
    .replace(
      /(direction)(\s)/gi,
      (_, word: string, blank: string) => word + code(blank),
    );
  return key.slice(0, start).replace(/[^]/g, code) + inner +
    key.slice(Math.max(start, end)).replace(/[^]/g, code);
}

/** Words of a Mermaid state diagram that a state id must not be. */
const MERMAID_WORDS = new Set([
  "state",
  "note",
  "end",
  "as",
  "direction",
  "class",
  "classdef",
  "style",
  "click",
  "fork",
  "join",
  "choice",
  "left",
  "right",
  "of",
  "over",
  "statediagram",
  "default",
  "scale",
  "acctitle",
  "accdescr",
  "href",
  // the names Mermaid gives the start and end pseudo-states ([*])
  "root_start",
  "root_end",
]);

/** Orders keys with `[*]` first. */
function compare(a: string, b: string): number {
  if (a === b) return 0;
  if (a === NO_STATE) return -1;
  if (b === NO_STATE) return 1;
  return a < b ? -1 : 1;
}

function byPair(
  a: readonly [string, string],
  b: readonly [string, string],
): number {
  return compare(a[0], b[0]) || compare(a[1], b[1]);
}

/** A node key that is the map's own name for no state cannot be drawn. */
function refuseNoStateKey(where: string): never {
  throw new TypeError(
    `Cannot map ${where} with a node key "${NO_STATE}": the map uses it for no state (the start and the end); register that node under another key`,
  );
}
