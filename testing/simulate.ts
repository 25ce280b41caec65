/**
 * `createSimulator`: drive conversations and assert node sequences and
 * replies, step by step.
 *
 * @module
 */

import assert, { AssertionError } from "node:assert/strict";
import type { Node } from "../mod.ts";
import type { Outbox, OutgoingMessage } from "./outbox.ts";
import {
  compareTranscript,
  describeError,
  title,
  Transcript,
  type TranscriptStep,
} from "./transcript.ts";

/**
 * What the simulator needs of `Nodes`: reading a user's node and its key.
 * A `Nodes` is one.
 *
 * @typeParam UserId The type of the user ids.
 *
 * @example
 * ```ts ignore
 * const target: SimulatedNodes<number> = nodes;
 * ```
 */
export interface SimulatedNodes<UserId> {
  /** Handles one event (used when no `dispatch` option is given). */
  // deno-lint-ignore no-explicit-any
  route(event: any): Promise<unknown>;
  /** Reads a user. */
  user(userId: UserId): {
    node(): Promise<Node<never, never, never> | undefined>;
  };
  /** The registry key of a node. */
  // deno-lint-ignore no-explicit-any
  keyOf(node: any): string | undefined;
}

/**
 * Options of {@linkcode createSimulator}.
 *
 * @typeParam UserId The type of the user ids.
 * @typeParam Input What a step gives as its event (a text, an update, ...).
 * @typeParam Sent What is dispatched (the event, an update, ...).
 *
 * @example Steps that are texts, turned into the bot's events
 * ```ts ignore
 * const options: SimulatorOptions<number, string, Message> = {
 *   nodes,
 *   outbox,
 *   event: (user, text) => ({ from: { id: user }, text }),
 * };
 * ```
 */
export interface SimulatorOptions<UserId, Input, Sent> {
  /** The `Nodes` under test. */
  readonly nodes: SimulatedNodes<UserId>;
  /** Where the bot's messages land; without it, replies are not recorded. */
  readonly outbox?: Outbox | undefined;
  /** Builds what is dispatched from a step's event. Default: the event as is. */
  readonly event?:
    | ((user: UserId, input: Input) => Sent | Promise<Sent>)
    | undefined;
  /**
   * Dispatches one event, e.g. through a bot framework
   * (`(update) => bot.handleUpdate(update)`). Default: `nodes.route`.
   */
  readonly dispatch?: ((sent: Sent) => unknown) | undefined;
  /**
   * The error a framework's wrapper stands for, when `dispatch` wraps what
   * the handlers throw (grammY's `bot.handleUpdate` throws a `BotError`
   * around it): a step's `throws` matches the error as thrown or the one
   * this returns. The grammY preset gives `(e) => e instanceof BotError ?
   * e.error : e`. Default: none (only the error as thrown is matched).
   */
  readonly unwrapError?: ((error: unknown) => unknown) | undefined;
}

/**
 * An expected reply: its text, or the fields to compare
 * (`{ text, to, method }`).
 *
 * @example
 * ```ts
 * import type { ExpectedReply } from "@botnodes/core/testing";
 *
 * const replies: ExpectedReply[] = ["Hello!", { method: "answerCallbackQuery" }];
 * ```
 */
export type ExpectedReply = string | Partial<OutgoingMessage>;

/**
 * One step of a simulated conversation: an event and what to expect after it.
 * Fields left out are not checked.
 *
 * @typeParam UserId The type of the user ids.
 * @typeParam Input What a step gives as its event.
 *
 * @example
 * ```ts
 * import type { Step } from "@botnodes/core/testing";
 *
 * const step: Step<number, string> = {
 *   event: "Yes",
 *   node: "hungry",
 *   replies: ["No worries, I've got you back!", "What are you gonna order? Cart: Empty"],
 * };
 * ```
 */
export interface Step<UserId, Input> {
  /** The event (given to the `event` option, then dispatched). */
  readonly event: Input;
  /** The user it is from; default: the user given to `simulate`. */
  readonly user?: UserId | undefined;
  /** The key of the node the user is on afterwards; `null` for no state. */
  readonly node?: string | null | undefined;
  /** The messages sent while handling it, in order. */
  readonly replies?: readonly ExpectedReply[] | undefined;
  /** The user's stored data afterwards (deep equality). */
  readonly data?: unknown;
  /**
   * The step must throw: an error class, a pattern its message matches, or a
   * predicate. It matches the error as thrown or, when the simulator has an
   * `unwrapError` (the grammY preset's unwraps grammY's `BotError`), the
   * error inside it.
   */
  readonly throws?:
    | RegExp
    // deno-lint-ignore no-explicit-any
    | (new (...args: any[]) => Error)
    | ((error: unknown) => boolean)
    | undefined;
}

/**
 * Options of {@linkcode Simulator.simulate}.
 *
 * @example
 * ```ts ignore
 * await sim.simulate(42, ["hi", "Yes"], { transcript: golden });
 * ```
 */
export interface SimulateOptions {
  /**
   * The whole expected transcript, as `Transcript.text()` renders it; the
   * first step that differs fails the test.
   */
  readonly transcript?: string | undefined;
}

/**
 * Drives conversations through a `Nodes` (or a whole bot) and checks each
 * step. Made by {@linkcode createSimulator}.
 *
 * @typeParam UserId The type of the user ids.
 * @typeParam Input What a step gives as its event.
 *
 * @example
 * ```ts ignore
 * await sim.simulate(42, [
 *   { event: "hi", node: "start", replies: ["Hello, Ann! Are you hungry?"] },
 *   { event: "No", node: "hold" },
 * ]);
 * ```
 */
export interface Simulator<UserId, Input> {
  /**
   * Sends each step's event, one after the other, and checks what the step
   * expects. A step that fails throws a `node:assert` `AssertionError` whose
   * message names the step number, the user and the event, with expected
   * against actual node and a diff of the replies.
   *
   * @param user The user the events are from (a step may name another).
   * @param steps The steps: `Step` objects, or bare events to check nothing.
   * @param options An expected whole transcript.
   * @returns The transcript.
   */
  simulate(
    user: UserId,
    steps: readonly (Step<UserId, Input> | Input)[],
    options?: SimulateOptions,
  ): Promise<Transcript<UserId, Input>>;
}

/**
 * Makes a simulator for a `Nodes` (or a whole bot through `dispatch`). It
 * imports no test runner: failures are `node:assert` `AssertionError`s, which
 * `deno test`, `bun test`, `node --test` and vitest all show with a diff.
 *
 * @typeParam UserId The type of the user ids.
 * @typeParam Input What a step gives as its event.
 * @typeParam Sent What is dispatched.
 * @param options The nodes, the outbox and how to build and send events.
 * @returns The simulator.
 *
 * @example A whole conversation in a few lines
 * ```ts
 * import { Node, Nodes } from "@botnodes/core";
 * import { createSimulator, MemoryStore, Outbox } from "@botnodes/core/testing";
 *
 * type Event = { from: number; text: string };
 * type Shared = { outbox: Outbox };
 *
 * class Echo extends Node<Shared, Event, number, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   onEvent(user: number, event: Event, shared: Shared): Echo {
 *     shared.outbox.send({ to: user, text: event.text });
 *     return new Echo();
 *   }
 * }
 *
 * const outbox = new Outbox();
 * const nodes = new Nodes<Shared, Event, number>({
 *   store: new MemoryStore(),
 *   nodes: { echo: Echo },
 *   start: () => new Echo(),
 *   shared: { outbox },
 *   userId: (event) => event.from,
 * });
 * const sim = createSimulator({
 *   nodes,
 *   outbox,
 *   event: (from: number, text: string): Event => ({ from, text }),
 * });
 * await sim.simulate(1, [
 *   { event: "hi", node: "echo", replies: [] },
 *   { event: "hello", node: "echo", replies: ["hello"] },
 * ]);
 * ```
 */
export function createSimulator<UserId, Input, Sent = Input>(
  options: SimulatorOptions<UserId, Input, Sent>,
): Simulator<UserId, Input> {
  const { nodes, outbox } = options;
  const build = options.event ??
    ((_user: UserId, input: Input) => input as unknown as Sent);
  const dispatch = options.dispatch ?? ((sent: Sent) => nodes.route(sent));
  const unwrap = options.unwrapError;
  return {
    async simulate(user, steps, simulateOptions = {}) {
      const done: TranscriptStep<UserId, Input>[] = [];
      for (const [index, given] of steps.entries()) {
        const step = isStep<UserId, Input>(given) ? given : { event: given };
        const stepUser = step.user ?? user;
        const number = index + 1;
        outbox?.take();
        let error: unknown;
        let threw = false;
        try {
          await dispatch(await build(stepUser, step.event));
        } catch (caught) {
          threw = true;
          error = caught;
        }
        const node = await nodes.user(stepUser).node();
        const record: TranscriptStep<UserId, Input> = {
          step: number,
          user: stepUser,
          event: step.event,
          node: node === undefined ? null : nodes.keyOf(node) ?? null,
          data: node?.data,
          replies: outbox?.take() ?? [],
          ...(threw ? { error } : {}),
        };
        done.push(record);
        check(step, record, threw, unwrap);
      }
      const transcript = new Transcript(done);
      if (simulateOptions.transcript !== undefined) {
        compareTranscript(transcript, simulateOptions.transcript);
      }
      return transcript;
    },
  };
}

function isStep<UserId, Input>(
  value: Step<UserId, Input> | Input,
): value is Step<UserId, Input> {
  return value !== null && typeof value === "object" &&
    Object.hasOwn(value, "event");
}

function check(
  step: Step<unknown, unknown>,
  record: TranscriptStep<unknown, unknown>,
  threw: boolean,
  unwrap: ((error: unknown) => unknown) | undefined,
): void {
  if (step.throws !== undefined) {
    if (!threw) {
      fail(record, "expected it to throw, but it did not", {}, {});
    }
    const inner = unwrap ? unwrap(record.error) : record.error;
    const matched = matchesError(step.throws, record.error) ||
      (inner !== record.error && matchesError(step.throws, inner));
    if (!matched) {
      const around = inner === record.error
        ? ""
        : ` around ${describeError(inner)}`;
      fail(
        record,
        `threw ${
          describeError(record.error)
        }${around}, which is not the expected error`,
        {},
        {},
      );
    }
  } else if (threw) {
    throw new AssertionError({
      message: `${title(record)} threw ${describeError(record.error)}`,
      actual: record.error,
      expected: undefined,
      operator: "fail",
    });
  }
  const expected: Record<string, unknown> = {};
  const actual: Record<string, unknown> = {};
  if (step.node !== undefined) {
    expected.node = step.node;
    actual.node = record.node;
  }
  if (step.replies !== undefined) {
    expected.replies = step.replies;
    actual.replies = shapeReplies(record.replies, step.replies);
  }
  if (Object.hasOwn(step, "data")) {
    expected.data = step.data;
    actual.data = record.data;
  }
  try {
    assert.deepStrictEqual(actual, expected);
  } catch (error) {
    if (!(error instanceof AssertionError)) throw error;
    const lines: string[] = [];
    if (expected.node !== actual.node) {
      lines.push(
        `node: expected ${JSON.stringify(expected.node)}, got ${
          JSON.stringify(actual.node)
        }`,
      );
    }
    fail(record, lines.join("\n"), actual, expected, error.message);
  }
}

/** Each actual reply in the shape of the expected one at its place. */
function shapeReplies(
  replies: readonly OutgoingMessage[],
  expected: readonly ExpectedReply[],
): ExpectedReply[] {
  return replies.map((reply, i) => {
    const want = expected[i];
    if (want === undefined || typeof want === "string") return reply.text;
    const shaped: Record<string, unknown> = {};
    for (const key of Object.keys(want)) {
      shaped[key] = reply[key as keyof OutgoingMessage];
    }
    return shaped as Partial<OutgoingMessage>;
  });
}

function matchesError(
  expected: NonNullable<Step<unknown, unknown>["throws"]>,
  error: unknown,
): boolean {
  if (expected instanceof RegExp) {
    return expected.test(
      error instanceof Error ? error.message : String(error),
    );
  }
  if (expected.prototype instanceof Error || expected === Error) {
    return error instanceof (expected as new () => Error);
  }
  return (expected as (error: unknown) => boolean)(error);
}

function fail(
  record: TranscriptStep<unknown, unknown>,
  what: string,
  actual: unknown,
  expected: unknown,
  diff?: string,
): never {
  const message = [`${title(record)} failed`, what, diff]
    .filter(Boolean)
    .join("\n");
  throw new AssertionError({
    message,
    actual,
    expected,
    operator: "fail",
  });
}
