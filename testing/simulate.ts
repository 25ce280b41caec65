/**
 * `createSimulator`: drive conversations and assert node sequences and
 * replies, step by step.
 *
 * @module
 */

import assert, { AssertionError } from "node:assert/strict";
import { InvalidStateError, type Node } from "../mod.ts";
import type { Outbox, OutgoingCall, OutgoingMessage } from "./outbox.ts";
import type { ConversationMap } from "./conversation_map.ts";
import {
  compareTranscript,
  describeError,
  title,
  Transcript,
  type TranscriptStep,
} from "./transcript.ts";

/**
 * What the simulator needs of `Nodes`: routing an event, reading what is
 * stored for a user without side effects (`user(id).peek()`), a node's key,
 * and the user an event is keyed by (`userIdOf`). A `Nodes` is one.
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
  /** Reads a user, running no hook (see `UserHandle.peek`). */
  user(userId: UserId): {
    peek(): Promise<Node<never, never, never> | InvalidStateError | undefined>;
  };
  /** The registry key of a node. */
  // deno-lint-ignore no-explicit-any
  keyOf(node: any): string | undefined;
  /**
   * The user `route` keys an event by (a `Nodes` has it): whose node and
   * data a step checks, when the simulator dispatches with `route`.
   */
  // deno-lint-ignore no-explicit-any
  userIdOf?(event: any): UserId | undefined;
  /** Fires the due timers (for `wait` steps; a `Nodes` has it). */
  runDue?(): Promise<unknown>;
  /** Reports transitions (for the `map` option; a `Nodes` has it). */
  // deno-lint-ignore no-explicit-any
  observe?(listener: (transition: any) => void): () => void;
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
  /**
   * The store's clock, for `wait` steps: a step `{ wait: ms }` advances it
   * by `ms` and fires the timers then due (`nodes.runDue()`).
   */
  readonly clock?: { advance(ms: number): void } | undefined;
  /**
   * Where the bot's messages land. Without it nothing is recorded, and a
   * step that expects `replies` or `calls` is an error.
   */
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
  /**
   * The user a dispatched event is from, when it says (the grammY preset
   * reads an update's sender): a step's replies are checked against that
   * user. Default: the step's user.
   */
  readonly userOf?: ((sent: Sent) => UserId | undefined) | undefined;
  /**
   * The `Nodes` user a dispatched event is routed to, whose node and data
   * the step checks: the key the `Nodes`' `userId` option gives it (a
   * group's chat with one state per chat), which may not be its sender. The
   * grammY preset gives the `Nodes`' own key of the update's context.
   * Default: `nodes.userIdOf(sent)` when there is no `dispatch` option (the
   * simulator routes `sent` itself), read before the dispatch; else, and
   * when it gives `undefined` (an event the `Nodes` do not take) or throws,
   * the step's user. One given here is called once the step's work has
   * settled (so it may read what the dispatch recorded).
   */
  readonly routedTo?: ((sent: Sent) => UserId | undefined) | undefined;
  /**
   * How the transcript shows an event, when not as given (the grammY preset
   * describes an update without its ids). Default: a string as is, anything
   * else as JSON.
   */
  readonly describe?:
    | ((input: Input, sent: Sent) => string | undefined)
    | undefined;
  /**
   * Records the transitions a run drives into this map, to draw the
   * conversation the tests walked: those of the `Nodes` users its steps go
   * to (see `routedTo`; a `wait` step's user), while it runs. Other runs on
   * the same `Nodes` at the same time, with other users, are not counted.
   * Share one map between simulators to map a whole test file.
   */
  readonly map?: ConversationMap | undefined;
}

/**
 * An expected reply: its text, or the fields to compare
 * (`{ text, to, method }`). A text, or fields without `to` or `method`,
 * expect a plain message (the outbox's `sendMethod`, or no method) to the
 * step's user: a message to anyone else, or by another method (an edit, a
 * photo), must say so.
 *
 * @example
 * ```ts
 * import type { ExpectedReply } from "@botnodes/core/testing";
 *
 * const replies: ExpectedReply[] = [
 *   "Hello!",
 *   { to: 99, text: "Ann said hello" },
 *   { method: "editMessageText", text: "Done" },
 * ];
 * ```
 */
export type ExpectedReply = string | Partial<OutgoingMessage>;

/**
 * An expected call that is not a message: its method, or the fields to
 * compare (`{ method, text, to }`; `payload` compared when given).
 *
 * @example
 * ```ts
 * import type { ExpectedCall } from "@botnodes/core/testing";
 *
 * const calls: ExpectedCall[] = [
 *   { method: "answerCallbackQuery", text: "pressed yes" },
 *   "deleteMessage",
 * ];
 * ```
 */
export type ExpectedCall = string | Partial<OutgoingCall>;

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
  /**
   * The event (given to the `event` option, then dispatched); not given in
   * a `wait` step.
   */
  readonly event?: Input;
  /**
   * Instead of an event: let `wait` ms pass on the simulator's `clock`, then
   * fire the timers that are due (one `nodes.runDue()`: a timer armed by one
   * that fires is not fired in the same step); the step checks the user's
   * node and the replies of what fired, like any other, and fails with the
   * error of a timer whose `onTimeout` threw (which `throws` can expect).
   */
  readonly wait?: number | undefined;
  /**
   * The user it is from; default: the user given to `simulate`. In a `wait`
   * step: the `Nodes` user whose node and data it checks; default: the one
   * the step before it checked, or the user given to `simulate`.
   */
  readonly user?: UserId | undefined;
  /**
   * The key of the node afterwards of the `Nodes` user the event is routed
   * to (its sender unless the `Nodes` key events otherwise, e.g. by chat);
   * `null` for no state.
   */
  readonly node?: string | null | undefined;
  /**
   * The messages sent while handling it, in order: all of them, each a
   * plain message to the step's user unless it says otherwise.
   */
  readonly replies?: readonly ExpectedReply[] | undefined;
  /**
   * The other calls made while handling it (answers to button presses,
   * deletions, reactions, ...), in order: all of them.
   */
  readonly calls?: readonly ExpectedCall[] | undefined;
  /** The stored data afterwards of the same user as `node` (deep equality). */
  readonly data?: unknown;
  /**
   * The step must throw: an error class, a pattern its message matches (its
   * `g` and `y` flags are ignored), or a predicate. It matches the error as
   * thrown or, when the simulator has an `unwrapError` (the grammY preset's
   * unwraps grammY's `BotError`), the error inside it. A predicate that
   * throws fails the step.
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
   * expects: the node and data of the `Nodes` user the event is routed to
   * (see `SimulatorOptions.routedTo`), the replies and calls. A step is over
   * when its dispatch has resolved and the event's work has settled
   * (event-loop turns pass with nothing more recorded): what was recorded
   * until then is the step's, whatever sent it. A reply recorded outside
   * any step (before the first, between two, after the last one once it
   * settled, or after an earlier run) fails, naming it and the step it
   * followed. One outbox serves one run at a time: a second concurrent run
   * on it is refused. A step that fails throws a `node:assert`
   * `AssertionError` whose message names the step number, the user and the
   * event, with expected against actual node and a diff of the replies.
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
  const routedTo = options.routedTo ??
    (options.dispatch === undefined && typeof nodes.userIdOf === "function"
      ? (sent: Sent) => nodes.userIdOf!(sent)
      : undefined);
  const unwrap = options.unwrapError;
  return {
    async simulate(user, steps, simulateOptions = {}) {
      if (outbox !== undefined) {
        if (running.has(outbox)) {
          throw new Error(
            "Cannot simulate: another simulation is running on the same outbox, so replies could not be told apart; give each concurrent test its own outbox (or test bot), or run them one after the other",
          );
        }
        running.add(outbox);
      }
      const map = options.map;
      if (map !== undefined && typeof nodes.observe !== "function") {
        if (outbox !== undefined) running.delete(outbox);
        throw new TypeError(
          'Cannot simulate with the "map" option: the nodes have no observe()',
        );
      }
      // only the transitions of the users this run's steps go to; a step's
      // user is known once its event went through, so its transitions wait
      // until the step has been observed
      const users = new Set<string>();
      const pending: Parameters<ConversationMap["record"]>[0][] = [];
      const stop = map === undefined
        ? undefined
        : nodes.observe!((transition) => pending.push(transition));
      const flush = () => {
        for (const transition of pending.splice(0)) {
          if (users.has(String(transition.userId))) map!.record(transition);
        }
      };
      try {
        return await run(user, steps, simulateOptions, users, flush);
      } finally {
        flush();
        stop?.();
        if (outbox !== undefined) running.delete(outbox);
      }
    },
  };

  /** A `wait` step: time passes, due timers fire, the step is checked. */
  async function waitStep(
    step: Step<UserId, Input>,
    number: number,
    user: UserId,
    users: Set<string>,
  ): Promise<TranscriptStep<UserId, Input>> {
    const ms = step.wait!;
    if (options.clock === undefined || nodes.runDue === undefined) {
      throw new TypeError(
        `Cannot run step ${number}: a wait step needs the simulator's "clock" option (the store's FakeClock) and nodes with runDue()`,
      );
    }
    if (!(typeof ms === "number" && ms >= 0 && Number.isFinite(ms))) {
      throw new RangeError(
        `Cannot run step ${number}: wait must be a number of ms, got ${
          typeof ms === "string"
            ? `the string ${JSON.stringify(ms)}`
            : typeof ms === "object" && ms !== null
            ? Array.isArray(ms) ? "an array" : "an object"
            : String(ms)
        }`,
      );
    }
    if (outbox !== undefined) outsideSteps(outbox, number);
    users.add(String(user));
    options.clock.advance(ms);
    return await act(step, number, user, () => undefined, {
      event: undefined as Input,
      label: `(wait ${ms} ms)`,
    }, async () => {
      // a timer that failed (its onTimeout threw) fails the step, as an
      // event's error does: runDue only logs it, and tries it again later
      const failed: unknown[] = [];
      const stop = nodes.observe?.((transition) => {
        // this run's users' timers: another user's is no step's
        if (
          transition.kind === "timeout" && transition.outcome === "failed" &&
          users.has(String(transition.userId))
        ) failed.push(transition.error);
      });
      try {
        await nodes.runDue!();
      } finally {
        stop?.();
      }
      if (failed.length > 0) throw failed[0];
    });
  }

  /**
   * Runs what a step does (dispatch its event, or fire due timers), lets it
   * settle, observes the user, records the step and checks it.
   */
  async function act(
    step: Step<UserId, Input>,
    number: number,
    stepUser: UserId,
    stateOf: () => UserId | undefined,
    shown: { event: Input; label?: string | undefined },
    work: () => unknown,
  ): Promise<TranscriptStep<UserId, Input>> {
    let error: unknown;
    let threw = false;
    try {
      await work();
    } catch (caught) {
      threw = true;
      error = caught;
    }
    await settle(outbox);
    // known once the event went through (the framework's middleware may key
    // it by what an earlier middleware set)
    const of = stateOf();
    const stored = await nodes.user(of ?? stepUser).peek();
    const invalid = stored instanceof InvalidStateError;
    const node = invalid ? undefined : stored;
    const record: TranscriptStep<UserId, Input> = {
      step: number,
      user: stepUser,
      ...(of !== undefined
        ? { stateOf: of as unknown as string | number }
        : {}),
      event: shown.event,
      ...(shown.label !== undefined ? { label: shown.label } : {}),
      node: node === undefined ? null : nodes.keyOf(node) ?? null,
      data: node?.data,
      ...(invalid ? { invalid: stored.reason } : {}),
      replies: outbox?.take() ?? [],
      calls: outbox?.takeCalls() ?? [],
      ...(outbox ? { sendMethod: outbox.sendMethod } : {}),
      ...(threw ? { error } : {}),
    };
    if (outbox !== undefined) lastStep.set(outbox, record);
    check(step, record, threw, unwrap, outbox?.sendMethod ?? "sendMessage");
    return record;
  }

  async function run(
    user: UserId,
    steps: readonly (Step<UserId, Input> | Input)[],
    simulateOptions: SimulateOptions,
    users: Set<string>,
    flush: () => void,
  ): Promise<Transcript<UserId, Input>> {
    const done: TranscriptStep<UserId, Input>[] = [];
    // the Nodes user the last step checked: a wait step's default
    let checked: UserId = user;
    // every step told apart before the first runs
    if (!Array.isArray(steps)) {
      throw new TypeError(
        `Cannot simulate: steps must be an array of steps and events, got ${
          steps === null ? "null" : typeof steps
        }`,
      );
    }
    // (a hole is an undefined event, as it always was)
    const all = Array.from(
      steps,
      (given, index): Step<UserId, Input> =>
        isStep<UserId, Input>(given, index + 1) ? given : { event: given },
    );
    for (const [index, step] of all.entries()) {
      const number = index + 1;
      if (step.wait !== undefined) {
        checked = step.user ?? checked;
        done.push(await waitStep(step, number, checked, users));
        flush();
        continue;
      }
      if (
        outbox === undefined &&
        (step.replies !== undefined || step.calls !== undefined)
      ) {
        throw new TypeError(
          `Cannot check step ${number}: it expects ${
            step.replies !== undefined ? "replies" : "calls"
          }, but the simulator was made without an outbox, so nothing is recorded`,
        );
      }
      if (outbox !== undefined) outsideSteps(outbox, number);
      const sent = await build(step.user ?? user, step.event as Input);
      const sender = options.userOf?.(sent);
      if (
        sender !== undefined && step.user !== undefined &&
        String(sender) !== String(step.user)
      ) {
        throw new TypeError(
          `Cannot check step ${number}: it names user ${
            String(step.user)
          }, but its event is from user ${String(sender)}`,
        );
      }
      const stepUser = sender ?? step.user ?? user;
      const event = step.event as Input;
      // the Nodes user the step checks: by default (`nodes.userIdOf`) read
      // off the event as it is routed, before a handler can change it; a
      // framework's `routedTo` after the dispatch (the grammY preset's reads
      // the context the bot made); one that throws leaves the step's user (a
      // key the Nodes cannot take fails the dispatch too: the step's error,
      // which its `throws` may expect)
      let routed: UserId | undefined;
      const route = () => {
        try {
          routed = routedTo?.(sent);
        } catch {
          routed = undefined;
        }
      };
      const early = options.routedTo === undefined;
      if (early) route();
      done.push(
        await act(
          step,
          number,
          stepUser,
          () => {
            if (!early) route();
            checked = routed ?? stepUser;
            users.add(String(checked));
            flush();
            return routed === undefined || String(routed) === String(stepUser)
              ? undefined
              : routed;
          },
          {
            event,
            ...(options.describe
              ? { label: options.describe(event, sent) }
              : {}),
          },
          () => dispatch(sent),
        ),
      );
    }
    if (outbox !== undefined && done.length > 0) {
      // what the last step's work sends once the step was over
      await settle(outbox, true);
      outsideSteps(outbox, undefined);
    }
    const transcript = new Transcript(done);
    if (simulateOptions.transcript !== undefined) {
      compareTranscript(transcript, simulateOptions.transcript);
    }
    return transcript;
  }
}

/** The outboxes a simulation is running on. */
const running = new WeakSet<Outbox>();
/** The last step each outbox saw, to name it when a reply comes late. */
const lastStep = new WeakMap<Outbox, TranscriptStep<unknown, unknown>>();

/** How many event-loop turns a step waits for its work, at most. */
const MAX_TURNS = 1_000;

/**
 * The runtime's own timers, taken when this module loads: a test that fakes
 * the timers afterwards (`vi.useFakeTimers()`, `jest.useFakeTimers()`,
 * `mock.timers.enable()`) would otherwise keep every step from settling.
 */
const realSetImmediate = setImmediate;
const realSetTimeout = setTimeout;

/** How many event-loop turns a timer turn may take (see `timerTurn`). */
const TIMER_TURNS = 10_000;

/**
 * One zero-delay timer turn. Where a test faked the timers so that even the
 * runtime's own `setTimeout` waits for the fake clock (Bun's
 * `jest.useFakeTimers()`, which fakes the clocks too), it ends after
 * TIMER_TURNS event-loop turns instead (tens of ms): no timer of the bot
 * runs meanwhile either.
 */
function timerTurn(): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (!done) done = true, resolve();
    };
    realSetTimeout(finish, 0);
    let turns = 0;
    const spin = () => {
      if (done) return;
      if (++turns >= TIMER_TURNS) finish();
      else realSetImmediate(spin);
    };
    realSetImmediate(spin);
  });
}

/**
 * Waits until the event's work has settled: event-loop turns pass (by
 * `setImmediate`, which costs microseconds, where a timer turn costs a
 * millisecond or more) until two in a row record nothing new, so that
 * unawaited promise chains and I/O callbacks run out. With `timers`, one
 * zero-delay timer turn follows (and the wait goes on if it recorded
 * something): what the end of a run does, so that a zero-delay timer of the
 * last step still counts.
 */
function settle(
  outbox: Outbox | undefined,
  timers = false,
): Promise<void> {
  // callbacks, not a promise awaited per turn: a step takes two turns, and a
  // promise each cost Node a microsecond or more (with AsyncLocalStorage on)
  return new Promise<void>((resolve, reject) => {
    let seen = outbox?.changes ?? 0;
    let quiet = 0;
    let turns = 0;
    const next = () => {
      if (turns++ < MAX_TURNS) return void realSetImmediate(turn);
      reject(
        new AssertionError({
          message:
            `The bot kept sending for ${MAX_TURNS} event-loop turns after an event: its work never settled`,
          operator: "fail",
        }),
      );
    };
    // an immediate: Deno, Bun and Node run the microtasks queued before it
    // first, as an awaited promise would
    const turn = () => {
      const now = outbox?.changes ?? 0;
      quiet = now === seen ? quiet + 1 : 0;
      seen = now;
      if (quiet < 2) return next();
      if (!timers) return resolve();
      timerTurn().then(() => {
        if ((outbox?.changes ?? 0) === seen) return resolve();
        seen = outbox?.changes ?? 0;
        quiet = 0;
        next();
      });
    };
    next();
  });
}

/**
 * Fails on what was recorded outside any step: before step `number`, or
 * after the last step of this run (`undefined`).
 */
function outsideSteps(outbox: Outbox, number: number | undefined): void {
  const replies = outbox.take();
  const calls = outbox.takeCalls();
  if (replies.length === 0 && calls.length === 0) return;
  const what = [
    ...replies.map((reply) =>
      `reply ${JSON.stringify(reply.text)} (${
        reply.method ?? outbox.sendMethod
      } to ${String(reply.to)})`
    ),
    ...calls.map((call) => `call ${call.method}`),
  ].join(", ");
  const last = lastStep.get(outbox);
  const after = last === undefined ? undefined : title(last);
  const when = number === undefined
    ? `After the last step, ${after}, had settled`
    : after === undefined
    ? `Before step ${number}, with no step before it`
    : `After ${after} had settled`;
  throw new AssertionError({
    message:
      `${when}, outside any step, the bot sent: ${what}; a step's replies must come while its event is handled (await them, or expect them in a later event)`,
    actual: { replies, calls },
    expected: { replies: [], calls: [] },
    operator: "fail",
  });
}

/** The keys a step object may have. */
const STEP_KEYS = new Set([
  "event",
  "wait",
  "user",
  "node",
  "replies",
  "calls",
  "data",
  "throws",
]);

/**
 * Whether a step as given is a step object (else it is a bare event): an
 * object with `event` or `wait` and no key a step does not have. Throws a
 * `TypeError` for what cannot be told apart: an object that checks something
 * (`node`, `replies`, ...) but has neither `event` nor `wait`, and one with
 * `event` or `wait` beside keys no step has (a misspelt check, or a bare
 * event with a field named `event`: wrap it as `{ event: ... }`).
 */
function isStep<UserId, Input>(
  value: Step<UserId, Input> | Input,
  number: number,
): value is Step<UserId, Input> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return false;
  }
  const keys = Reflect.ownKeys(value);
  const has = (key: string) => Object.hasOwn(value, key);
  const starts = has("event") ||
    (has("wait") && (value as { wait?: unknown }).wait !== undefined);
  const others = keys.filter((key) =>
    typeof key !== "string" || !STEP_KEYS.has(key)
  );
  if (starts && others.length === 0) return true;
  if (starts) {
    throw new TypeError(
      `Cannot run step ${number}: it has ${
        has("event") ? '"event"' : '"wait"'
      } and keys no step has (${
        others.map((key) =>
          typeof key === "string" ? JSON.stringify(key) : String(key)
        ).join(", ")
      }); a step takes ${
        [...STEP_KEYS].join(", ")
      }. If it is a bare event with its own "event" field, give it as { event: ... }`,
    );
  }
  if (has("wait")) {
    throw new TypeError(
      `Cannot run step ${number}: its "wait" is undefined; give a number of ms`,
    );
  }
  const checks = keys.filter((key): key is string =>
    typeof key === "string" && STEP_KEYS.has(key) && key !== "user"
  );
  if (others.length === 0 && checks.length > 0) {
    throw new TypeError(
      `Cannot run step ${number}: it checks ${
        checks.map((key) => JSON.stringify(key)).join(", ")
      } but has no "event" (nor "wait") to send; give the event as "event" (a bare event whose fields are all named like a step's is given as { event: ... })`,
    );
  }
  return false;
}

function check(
  step: Step<unknown, unknown>,
  record: TranscriptStep<unknown, unknown>,
  threw: boolean,
  unwrap: ((error: unknown) => unknown) | undefined,
  sendMethod: string,
): void {
  if (step.throws !== undefined) {
    if (!threw) {
      fail(
        record,
        `expected it to throw ${expectedName(step.throws)}, but it did not`,
        {},
        {},
      );
    }
    const inner = unwrap ? unwrap(record.error) : record.error;
    const matched = matchesError(step.throws, record.error, record) ||
      (inner !== record.error && matchesError(step.throws, inner, record));
    if (!matched) {
      const around = inner === record.error
        ? ""
        : ` around ${describeError(inner)}`;
      fail(
        record,
        `threw ${
          describeError(record.error)
        }${around}, which is not the expected error: expected ${
          expectedName(step.throws)
        }${stackOf(inner)}`,
        record.error,
        step.throws,
      );
    }
  } else if (threw) {
    throw new AssertionError({
      message: `${title(record)} threw ${describeError(record.error)}${
        stackOf(record.error)
      }`,
      actual: record.error,
      expected: undefined,
      operator: "fail",
    });
  }
  const expected: Record<string, unknown> = {};
  const actual: Record<string, unknown> = {};
  if (step.node !== undefined) {
    expected.node = step.node;
    actual.node = record.invalid === undefined
      ? record.node
      : `(invalid: ${record.invalid})`;
  }
  if (step.replies !== undefined) {
    const want = step.replies.map((reply) =>
      expectReply(reply, record.user, sendMethod)
    );
    expected.replies = want;
    actual.replies = shapeReplies(record, want, sendMethod);
  }
  if (step.calls !== undefined) {
    const want = step.calls.map((call) =>
      typeof call === "string" ? call : call
    );
    expected.calls = want;
    actual.calls = shapeCalls(record.calls ?? [], want);
  }
  if (Object.hasOwn(step, "data")) {
    expected.data = step.data;
    actual.data = record.data;
  }
  try {
    // most steps pass: a cheap comparison first, the assertion (and its diff)
    // only when it cannot say they are equal
    if (!plainEqual(actual, expected)) assert.deepStrictEqual(actual, expected);
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

/**
 * Whether a step's `actual` and `expected` (objects `check` made, with the
 * same keys) are equal as `assert.deepStrictEqual` compares them, in the
 * common case: their values are primitives and arrays of them (a node key,
 * reply texts). `false` when they differ, and whenever a value holds an
 * object other than a plain array (an object may carry a type of its own
 * whatever its prototype says: a Date, a Map or a Proxy made to look plain),
 * or more than a few hundred items: those go to
 * `assert.deepStrictEqual`, which decides, and gives the diff.
 */
export function plainEqual(
  actual: Record<string, unknown>,
  expected: Record<string, unknown>,
): boolean {
  const keys = Object.keys(actual);
  if (keys.length !== Object.keys(expected).length) return false;
  const budget = { left: MAX_PLAIN };
  for (const key of keys) {
    if (
      !Object.hasOwn(expected, key) ||
      !sameItem(actual[key], expected[key], budget)
    ) {
      return false;
    }
  }
  return true;
}

const enumerable = Object.prototype.propertyIsEnumerable;

/** How many values `plainEqual` looks at before it hands over. */
const MAX_PLAIN = 500;

function sameItem(a: unknown, b: unknown, budget: { left: number }): boolean {
  if (--budget.left < 0) return false;
  if (Object.is(a, b)) return true; // the same value, or the same object
  if (!plainArray(a) || !plainArray(b) || a.length !== b.length) return false;
  // no property but the items: as many keys as items, each item enumerable
  if (Object.keys(a).length !== a.length) return false;
  if (Object.keys(b).length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (
      !enumerable.call(a, i) || !enumerable.call(b, i) ||
      !sameItem(a[i], b[i], budget)
    ) {
      return false;
    }
  }
  return true;
}

/** An array of the `[...]` kind: no other prototype, no symbol key. */
function plainArray(value: unknown): value is unknown[] {
  return Array.isArray(value) &&
    Object.getPrototypeOf(value) === Array.prototype &&
    Object.getOwnPropertySymbols(value).length === 0;
}

/**
 * An expected reply as it is compared: a text stays a text (a plain message
 * to the step's user); fields get the default `to` and `method`.
 */
function expectReply(
  reply: ExpectedReply,
  user: unknown,
  sendMethod: string,
): ExpectedReply {
  if (typeof reply === "string") return reply;
  return { to: user, method: sendMethod, ...reply } as Partial<
    OutgoingMessage
  >;
}

/**
 * Each actual reply in the shape of the expected one at its place: a plain
 * message to the step's user as its text where a text is expected, every
 * other reply with its recipient and method, so that they differ.
 */
function shapeReplies(
  record: TranscriptStep<unknown, unknown>,
  expected: readonly ExpectedReply[],
  sendMethod: string,
): ExpectedReply[] {
  return record.replies.map((reply, i) => {
    const want = expected[i];
    const to = String(reply.to) === String(record.user)
      ? record.user
      : reply.to;
    const method = reply.method ?? sendMethod;
    const plain = to === record.user && method === sendMethod;
    if ((want === undefined || typeof want === "string") && plain) {
      return reply.text;
    }
    const whole = { to, method, text: reply.text } as Record<string, unknown>;
    if (want === undefined || typeof want === "string") {
      return whole as Partial<OutgoingMessage>;
    }
    const shaped: Record<string, unknown> = {};
    for (const key of Object.keys(want)) {
      shaped[key] = key in whole ? whole[key] : reply[key as "payload"];
    }
    return shaped as Partial<OutgoingMessage>;
  });
}

/** Each actual call in the shape of the expected one at its place. */
function shapeCalls(
  calls: readonly OutgoingCall[],
  expected: readonly ExpectedCall[],
): ExpectedCall[] {
  return calls.map((call, i) => {
    const want = expected[i];
    if (want === undefined || typeof want === "string") return call.method;
    const shaped: Record<string, unknown> = {};
    for (const key of Object.keys(want)) {
      shaped[key] = call[key as keyof OutgoingCall];
    }
    return shaped as Partial<OutgoingCall>;
  });
}

type Throws = NonNullable<Step<unknown, unknown>["throws"]>;

function isErrorClass(
  expected: Throws,
): expected is new (...args: unknown[]) => Error {
  return typeof expected === "function" &&
    (expected === Error || expected.prototype instanceof Error);
}

function expectedName(expected: Throws): string {
  if (expected instanceof RegExp) return `an error matching ${expected}`;
  if (isErrorClass(expected)) return `a ${expected.name}`;
  return "an error the predicate accepts";
}

function stackOf(error: unknown): string {
  return error instanceof Error && error.stack
    ? `\nactual error: ${error.stack}`
    : "";
}

function matchesError(
  expected: Throws,
  error: unknown,
  record: TranscriptStep<unknown, unknown>,
): boolean {
  if (expected instanceof RegExp) {
    const once = new RegExp(
      expected.source,
      expected.flags.replace(/[gy]/g, ""),
    );
    return once.test(error instanceof Error ? error.message : String(error));
  }
  if (isErrorClass(expected)) return error instanceof expected;
  try {
    return Boolean((expected as (error: unknown) => boolean)(error));
  } catch (thrown) {
    fail(
      record,
      `the throws predicate itself threw ${describeError(thrown)} on ${
        describeError(error)
      }`,
      error,
      expected,
    );
  }
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
