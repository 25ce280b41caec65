/**
 * `Transcript`: the record of a simulated conversation, its text form and
 * the comparison with a golden text.
 *
 * @module
 */

import { AssertionError } from "node:assert/strict";
import type { OutgoingCall, OutgoingMessage } from "./outbox.ts";

/**
 * What happened at one step.
 *
 * @typeParam UserId The type of the user ids.
 * @typeParam Input What a step gives as its event.
 *
 * @example
 * ```ts ignore
 * const [first] = transcript.steps;
 * assert.equal(first?.node, "start");
 * ```
 */
export interface TranscriptStep<UserId, Input> {
  /** The step's number, from 1. */
  readonly step: number;
  /** The user the event was from. */
  readonly user: UserId;
  /**
   * The `Nodes` user whose node and data are shown, when it is not `user`:
   * the key the `Nodes` gave the event (a group's chat with one state per
   * chat, `"<chat>:<user>"` with grammY's `chatUserId`).
   */
  readonly stateOf?: string | number | undefined;
  /** The event as the step gave it. */
  readonly event: Input;
  /**
   * The event as the transcript shows it (a string event as is; the grammY
   * preset describes an update without its volatile ids). Default: the
   * event, as JSON unless it is a string.
   */
  readonly label?: string | undefined;
  /**
   * The key of the node afterwards (of `stateOf` when given, else of
   * `user`); `null` for no state.
   */
  readonly node: string | null;
  /** The stored data afterwards (of the same user as `node`). */
  readonly data: unknown;
  /**
   * Why the stored state cannot be restored, when it cannot (then `node` is
   * `null`): the `InvalidStateError`'s reason.
   */
  readonly invalid?: string | undefined;
  /** The messages sent while handling the event. */
  readonly replies: readonly OutgoingMessage[];
  /** The other calls made while handling the event (not messages). */
  readonly calls?: readonly OutgoingCall[] | undefined;
  /** What the event threw, if it threw. */
  readonly error?: unknown;
  /** The method of a plain message (`to` the step's user by it is not shown). */
  readonly sendMethod?: string | undefined;
}

/**
 * The record of a simulated conversation, for further assertions and golden
 * files.
 *
 * @typeParam UserId The type of the user ids.
 * @typeParam Input What a step gives as its event.
 *
 * @example Rendering a transcript
 * ```ts
 * import assert from "node:assert/strict";
 * import { Transcript } from "@botnodes/core/testing";
 *
 * const transcript = new Transcript([{
 *   step: 1,
 *   user: 7,
 *   event: "a\n1. pizza",
 *   node: "menu",
 *   data: { n: 1 },
 *   replies: [{ to: 7, text: "Hi" }, { to: 8, text: "Psst" }],
 * }]);
 * assert.equal(
 *   transcript.text(),
 *   '1. 7 > "a\\n1. pizza"\n   < Hi\n   < (to 8) Psst\n   = menu {"n":1}\n',
 * );
 * ```
 */
export class Transcript<UserId, Input> {
  /** Every step, in order. */
  readonly steps: readonly TranscriptStep<UserId, Input>[];

  /**
   * Made by `simulate`.
   *
   * @param steps The steps.
   */
  constructor(steps: readonly TranscriptStep<UserId, Input>[]) {
    this.steps = steps;
  }

  /** The node key after each step. */
  get nodes(): (string | null)[] {
    return this.steps.map((step) => step.node);
  }

  /**
   * Renders the transcript as text, one block per step, one line per thing:
   * `1. <user> > <event>`; a `< <reply>` line per reply, prefixed with
   * `(<method> to <chat>)` for whatever is not the default (a plain message
   * to the step's user); a `~ <method>` line per other call; `! <error>`
   * when it threw; `= <node> <data as JSON>` (`= (none)` for no state,
   * `= (invalid: <reason>)` for a state that cannot be restored), after
   * `= (user <id>) ` when that state is another `Nodes` user's than the
   * step's (`stateOf`: a group's, with one state per chat).
   *
   * Any text that is empty, has a line break or another control character,
   * leading or trailing blanks, half of a character beyond U+FFFF (a text cut
   * through an emoji), or starts with `"` or `(` is written as a JSON string,
   * so every content round-trips, through a UTF-8 file too, and each step is
   * exactly its lines. Errors of the engine's own classes (`TypeError`,
   * `RangeError`, `ReferenceError`, `SyntaxError`, `URIError`, `EvalError`,
   * `AggregateError`, and `DOMException`s such as `AbortError` and
   * `TimeoutError`, exactly) show their name only: their messages differ
   * between JavaScript engines.
   *
   * @returns The text, ending with a newline.
   */
  text(): string {
    return this.steps.map(renderStep).join("");
  }
}

/**
 * Half of a character beyond U+FFFF (a text cut through an emoji): a UTF-8
 * file cannot hold it, so a golden file would never match; JSON escapes it.
 */
const LONE_SURROGATE =
  /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A text as one line that reads back as exactly that text. */
export function quote(text: string): string {
  const plain = text !== "" && text.trim() === text &&
    // deno-lint-ignore no-control-regex
    !/[\u0000-\u001f\u007f\u2028\u2029]/.test(text) &&
    !LONE_SURROGATE.test(text) &&
    !text.startsWith('"') && !text.startsWith("(");
  return plain ? text : JSON.stringify(text);
}

/**
 * A value as JSON for a transcript or a failure message, whatever it holds:
 * a BigInt as `"<digits>n"`, a value that contains itself as `"[Circular]"`,
 * and a value JSON cannot take at all (a throwing getter) as `String` gives
 * it.
 */
function showJson(value: unknown): string {
  const ancestors: unknown[] = [];
  try {
    return JSON.stringify(value, function (this: unknown, _key, item) {
      if (typeof item === "bigint") return `${item}n`;
      if (typeof item !== "object" || item === null) return item;
      // the objects above this one: the stack down to its holder
      while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
      if (ancestors.includes(item)) return "[Circular]";
      ancestors.push(item);
      return item;
    }) ?? String(value);
  } catch {
    try {
      return String(value);
    } catch {
      return "(a value that cannot be shown)";
    }
  }
}

/** How a step's event is shown. */
export function eventLabel(step: TranscriptStep<unknown, unknown>): string {
  if (step.label !== undefined) return step.label;
  return typeof step.event === "string"
    ? quote(step.event)
    : quote(showJson(step.event));
}

function renderStep(step: TranscriptStep<unknown, unknown>): string {
  const lines = [
    `${step.step}. ${quote(String(step.user))} > ${eventLabel(step)}`,
  ];
  const sendMethod = step.sendMethod ?? "sendMessage";
  for (const reply of step.replies) {
    const marks: string[] = [];
    if (reply.method !== undefined && reply.method !== sendMethod) {
      marks.push(reply.method);
    }
    if (String(reply.to) !== String(step.user)) {
      marks.push(`to ${String(reply.to)}`);
    }
    const via = marks.length > 0 ? `(${marks.join(" ")}) ` : "";
    lines.push(`   < ${via}${quote(reply.text)}`);
  }
  for (const call of step.calls ?? []) {
    const to = call.to === undefined || String(call.to) === String(step.user)
      ? ""
      : ` (to ${String(call.to)})`;
    const text = call.text === undefined ? "" : ` ${quote(call.text)}`;
    lines.push(`   ~ ${call.method}${to}${text}`);
  }
  if ("error" in step) lines.push(`   ! ${quote(goldenError(step.error))}`);
  const of = step.stateOf === undefined
    ? ""
    : `(user ${quote(String(step.stateOf))}) `;
  if (step.invalid !== undefined) {
    lines.push(`   = ${of}(invalid: ${step.invalid})`);
  } else {
    lines.push(
      `   = ${of}${
        typeof step.node === "string" ? quote(step.node) : "(none)"
      }${step.data === undefined ? "" : ` ${JSON.stringify(step.data)}`}`,
    );
  }
  return lines.join("\n") + "\n";
}

const ENGINE_ERRORS: readonly unknown[] = [
  TypeError,
  RangeError,
  ReferenceError,
  SyntaxError,
  URIError,
  EvalError,
  AggregateError,
  // the web platform's (AbortError, TimeoutError, DataCloneError...): named
  // the same everywhere, worded per runtime
  ...(typeof DOMException === "function" ? [DOMException] : []),
];

/** Whether an error is of the engine's own classes (worded per engine). */
function engineError(error: unknown): error is Error {
  return error instanceof Error && ENGINE_ERRORS.includes(error.constructor);
}

/**
 * An error as a transcript shows it: the same on every engine. An engine's
 * error by its class; a wrapper around one (grammY's `BotError`, whose
 * message ends with the inner one, or errors chained by `cause`) without the
 * engine's message at the end of its own.
 */
function goldenError(error: unknown): string {
  if (engineError(error)) return error.name;
  if (!(error instanceof Error)) return describeError(error);
  // the first engine error among what the error wraps
  let inner: unknown = error;
  for (let depth = 0; depth < 8 && inner instanceof Error; depth++) {
    const wrapped = (inner as { error?: unknown }).error;
    inner = wrapped instanceof Error ? wrapped : inner.cause;
    if (engineError(inner)) break;
  }
  if (engineError(inner) && error.message.endsWith(inner.message)) {
    // an engine may give no message at all (Bun's AggregateError)
    const message = error.message
      .slice(0, error.message.length - inner.message.length)
      .replace(/[\s:]+$/, "");
    return `${error.name}: ${message}`;
  }
  return describeError(error);
}

/** An error as a failure message shows it. */
export function describeError(error: unknown): string {
  return error instanceof Error
    ? `${error.name}: ${error.message}`
    : String(error);
}

/** The heading of a step in failure messages. */
export function title(record: TranscriptStep<unknown, unknown>): string {
  const event = record.label !== undefined
    ? JSON.stringify(record.label)
    : typeof record.event === "string"
    ? JSON.stringify(record.event)
    : showJson(record.event).slice(0, 200);
  const of = record.stateOf === undefined
    ? ""
    : `, state of user ${String(record.stateOf)}`;
  return `Step ${record.step} (user ${
    String(record.user)
  }, event ${event}${of})`;
}

/**
 * Fails, naming the first step that differs, unless the text is exactly the
 * transcript's (line endings aside).
 */
export function compareTranscript(
  transcript: Transcript<unknown, unknown>,
  expected: string,
): void {
  const want = splitSteps(expected);
  const got = transcript.steps.map(renderStep);
  if (want.before !== "") {
    throw new AssertionError({
      message:
        `The expected transcript has text before its first step:\n${want.before}`,
      actual: "",
      expected: want.before,
      operator: "fail",
    });
  }
  const blocks = want.blocks;
  for (let i = 0; i < Math.max(blocks.length, got.length); i++) {
    if (blocks[i] === got[i]) continue;
    const record = transcript.steps[i];
    const message = record
      ? `${title(record)} differs from the expected transcript`
      : `The expected transcript has ${blocks.length} steps, the conversation ${got.length}`;
    throw new AssertionError({
      message: `${message}\nexpected:\n${blocks[i] ?? "(nothing)"}\nactual:\n${
        got[i] ?? "(nothing)"
      }`,
      actual: got[i],
      expected: blocks[i],
      operator: "fail",
    });
  }
}

/**
 * Splits a rendered transcript into what precedes the first step and the
 * step blocks. Only a final newline may be missing.
 */
function splitSteps(text: string): { before: string; blocks: string[] } {
  let normal = text.replaceAll("\r\n", "\n");
  if (normal !== "" && !normal.endsWith("\n")) normal += "\n";
  const blocks: string[] = [];
  let before = "";
  for (const line of normal.split("\n").slice(0, -1)) {
    if (/^\d+\. /.test(line)) blocks.push(`${line}\n`);
    else if (blocks.length > 0) blocks[blocks.length - 1] += `${line}\n`;
    else before += `${line}\n`;
  }
  return { before, blocks };
}
