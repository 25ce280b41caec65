/**
 * `Transcript`: the record of a simulated conversation, its text form and
 * the comparison with a golden text.
 *
 * @module
 */

import { AssertionError } from "node:assert/strict";
import type { OutgoingMessage } from "./outbox.ts";

/**
 * What happened at one step.
 *
 * @typeParam UserId The type of the user ids.
 * @typeParam Input What a step gives as its event.
 *
 * @example
 * ```ts ignore
 * const [first] = transcript.steps;
 * first.node; // "start"
 * ```
 */
export interface TranscriptStep<UserId, Input> {
  /** The step's number, from 1. */
  readonly step: number;
  /** The user the event was from. */
  readonly user: UserId;
  /** The event as the step gave it. */
  readonly event: Input;
  /** The key of the user's node afterwards; `null` for no state. */
  readonly node: string | null;
  /** The user's stored data afterwards. */
  readonly data: unknown;
  /** The messages sent while handling the event. */
  readonly replies: readonly OutgoingMessage[];
  /** What the event threw, if it threw. */
  readonly error?: unknown;
}

/**
 * The record of a simulated conversation, for further assertions and golden
 * files.
 *
 * @typeParam UserId The type of the user ids.
 * @typeParam Input What a step gives as its event.
 *
 * @example Comparing with a golden file
 * ```ts ignore
 * const transcript = await sim.simulate(42, ["hi", "Yes"]);
 * assert.equal(transcript.text(), await readFile("testdata/yes.txt", "utf8"));
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
   * Renders the transcript as text, one block per step:
   * `1. <user> > <event>`, a `< <reply>` line per reply, `! <error>` when it
   * threw, and `= <node> <data as JSON>`.
   *
   * @returns The text, ending with a newline.
   */
  text(): string {
    return this.steps.map(renderStep).join("");
  }
}

function renderStep(step: TranscriptStep<unknown, unknown>): string {
  const event = typeof step.event === "string"
    ? step.event
    : JSON.stringify(step.event);
  const lines = [`${step.step}. ${String(step.user)} > ${event}`];
  for (const reply of step.replies) {
    const via = reply.method && reply.method !== "sendMessage"
      ? `(${reply.method}) `
      : "";
    lines.push(`   < ${via}${reply.text.replaceAll("\n", "\n     ")}`);
  }
  if ("error" in step) lines.push(`   ! ${describeError(step.error)}`);
  lines.push(
    `   = ${step.node ?? "(none)"}${
      step.data === undefined ? "" : ` ${JSON.stringify(step.data)}`
    }`,
  );
  return lines.join("\n") + "\n";
}

/** An error as a transcript and a failure message show it. */
export function describeError(error: unknown): string {
  return error instanceof Error
    ? `${error.name}: ${error.message}`
    : String(error);
}

/** The heading of a step in failure messages. */
export function title(record: TranscriptStep<unknown, unknown>): string {
  const event = typeof record.event === "string"
    ? JSON.stringify(record.event)
    : JSON.stringify(record.event)?.slice(0, 200);
  return `Step ${record.step} (user ${String(record.user)}, event ${event})`;
}

/** Fails, naming the first step that differs, unless the text matches. */
export function compareTranscript(
  transcript: Transcript<unknown, unknown>,
  expected: string,
): void {
  const want = splitSteps(expected);
  const got = transcript.steps.map(renderStep);
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    if (want[i]?.trimEnd() === got[i]?.trimEnd()) continue;
    const record = transcript.steps[i];
    const message = record
      ? `${title(record)} differs from the expected transcript`
      : `The expected transcript has ${want.length} steps, the conversation ${got.length}`;
    throw new AssertionError({
      message: `${message}\nexpected:\n${want[i] ?? "(nothing)"}\nactual:\n${
        got[i] ?? "(nothing)"
      }`,
      actual: got[i],
      expected: want[i],
      operator: "fail",
    });
  }
}

/** Splits a rendered transcript into its step blocks. */
function splitSteps(text: string): string[] {
  const blocks: string[] = [];
  for (const line of text.replaceAll("\r\n", "\n").split("\n")) {
    if (/^\d+\. /.test(line)) blocks.push(`${line}\n`);
    else if (blocks.length > 0 && line !== "") {
      blocks[blocks.length - 1] += `${line}\n`;
    }
  }
  return blocks;
}
