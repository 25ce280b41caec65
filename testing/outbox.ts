/**
 * `Outbox`: where a bot under test sends its messages and other calls.
 *
 * @module
 */

/**
 * One outgoing message recorded by an `Outbox`: something the user sees in a
 * chat (a message sent, forwarded, copied or edited).
 *
 * @example
 * ```ts
 * import type { OutgoingMessage } from "@botnodes/core/testing";
 *
 * const sent: OutgoingMessage = { to: 42, text: "Hello!" };
 * ```
 */
export interface OutgoingMessage {
  /** The chat or user it went to. */
  readonly to?: string | number | undefined;
  /** Its text (a caption for media; empty when it has none). */
  readonly text: string;
  /**
   * The API method, when it came from a bot framework (`sendMessage`,
   * `editMessageText`, ...). Left out, it is the outbox's `sendMethod`.
   */
  readonly method?: string | undefined;
  /** The whole call as it would go over the wire (a JSON copy). */
  readonly payload?: unknown;
}

/**
 * One outgoing call that is not a message the user sees in the chat
 * (`answerCallbackQuery`, `deleteMessage`, `setMessageReaction`, ...),
 * recorded by {@linkcode Outbox.call}.
 *
 * @example
 * ```ts
 * import type { OutgoingCall } from "@botnodes/core/testing";
 *
 * const answered: OutgoingCall = {
 *   method: "answerCallbackQuery",
 *   text: "pressed yes",
 * };
 * ```
 */
export interface OutgoingCall {
  /** The API method. */
  readonly method: string;
  /** The chat it is about, if any. */
  readonly to?: string | number | undefined;
  /** Its text, if it has one (the toast of `answerCallbackQuery`, ...). */
  readonly text?: string | undefined;
  /** The whole call as it would go over the wire (a JSON copy). */
  readonly payload?: unknown;
}

/**
 * Options of {@linkcode Outbox}.
 *
 * @example
 * ```ts
 * import { Outbox, type OutboxOptions } from "@botnodes/core/testing";
 *
 * const options: OutboxOptions = { sendMethod: "send" };
 * new Outbox(options);
 * ```
 */
export interface OutboxOptions {
  /**
   * The method of a plain message: a step's string reply expects a message
   * sent by it (or with no method) to the step's user. Default
   * `"sendMessage"`.
   */
  readonly sendMethod?: string | undefined;
}

/**
 * Collects what a bot sends during a test. Give your bot a sender that calls
 * `send` (or use the grammY preset, which fills it from the Bot API calls);
 * `simulate` takes the messages of each step with `take`.
 *
 * What is recorded is a JSON copy of what was given, as a real client would
 * send it: changing an object after sending it does not change the record.
 *
 * @example A `shared` whose "send" lands in an outbox
 * ```ts
 * import assert from "node:assert/strict";
 * import { Outbox } from "@botnodes/core/testing";
 *
 * const outbox = new Outbox();
 * const shared = {
 *   send: (to: number, text: string) => outbox.send({ to, text }),
 * };
 * shared.send(1, "hi");
 * assert.deepEqual(outbox.take(), [{ to: 1, text: "hi" }]);
 * assert.deepEqual(outbox.take(), []);
 * ```
 */
export class Outbox {
  /** The method of a plain message (see {@linkcode OutboxOptions}). */
  readonly sendMethod: string;
  #pending: OutgoingMessage[] = [];
  #pendingCalls: OutgoingCall[] = [];
  readonly #all: OutgoingMessage[] = [];
  readonly #allCalls: OutgoingCall[] = [];
  #changes = 0;

  /**
   * Makes an empty outbox.
   *
   * @param options The method of a plain message.
   */
  constructor(options: OutboxOptions = {}) {
    this.sendMethod = options.sendMethod ?? "sendMessage";
  }

  /**
   * Records one outgoing message.
   *
   * @param message What was sent.
   * @throws {TypeError} When its payload cannot be serialised as JSON.
   */
  send(message: OutgoingMessage): void {
    const record: OutgoingMessage = {
      ...message,
      text: String(message.text),
      ...(message.payload === undefined
        ? {}
        : { payload: wireCopy(message.payload, message.method ?? "send") }),
    };
    this.#pending.push(record);
    this.#all.push(record);
    this.#changes++;
  }

  /**
   * Records one outgoing call that is not a message (an answer to a button
   * press, a reaction, a deletion, ...).
   *
   * @param call What was called.
   * @throws {TypeError} When its payload cannot be serialised as JSON.
   */
  call(call: OutgoingCall): void {
    const record: OutgoingCall = {
      ...call,
      ...(call.payload === undefined
        ? {}
        : { payload: wireCopy(call.payload, call.method) }),
    };
    this.#pendingCalls.push(record);
    this.#allCalls.push(record);
    this.#changes++;
  }

  /**
   * Returns the messages recorded since the last `take`, and forgets them.
   *
   * @returns The messages, oldest first.
   */
  take(): OutgoingMessage[] {
    const taken = this.#pending;
    this.#pending = [];
    return taken;
  }

  /**
   * Returns the calls recorded since the last `takeCalls`, and forgets them.
   *
   * @returns The calls, oldest first.
   */
  takeCalls(): OutgoingCall[] {
    const taken = this.#pendingCalls;
    this.#pendingCalls = [];
    return taken;
  }

  /** Every message recorded so far, oldest first. */
  get all(): readonly OutgoingMessage[] {
    return this.#all;
  }

  /** Every call recorded so far, oldest first. */
  get allCalls(): readonly OutgoingCall[] {
    return this.#allCalls;
  }

  /** How many records were made so far: it changes on every record. */
  get changes(): number {
    return this.#changes;
  }
}

/** A JSON copy of a payload, as a client would send it. */
function wireCopy(payload: unknown, method: string): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload, (_key, value) => value ?? undefined);
  } catch (cause) {
    throw new TypeError(
      `Cannot record "${method}": its payload cannot be serialised as JSON`,
      { cause },
    );
  }
  return text === undefined ? undefined : JSON.parse(text);
}
