/**
 * `Outbox`: where a bot under test sends its messages.
 *
 * @module
 */

/**
 * One outgoing message (or other outgoing call) recorded by an `Outbox`.
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
  /** Its text (a caption for media; empty for calls without text). */
  readonly text: string;
  /** The API method, when it came from a bot framework (`sendMessage`, ...). */
  readonly method?: string | undefined;
  /** The whole call, when it came from a bot framework. */
  readonly payload?: unknown;
}

/**
 * Collects what a bot sends during a test. Give your bot a sender that calls
 * `send` (or use the grammY preset, which fills it from the Bot API calls);
 * `simulate` takes the messages of each step with `take`.
 *
 * @example A `shared` whose "send" lands in an outbox
 * ```ts
 * import { Outbox } from "@botnodes/core/testing";
 *
 * const outbox = new Outbox();
 * const shared = {
 *   send: (to: number, text: string) => outbox.send({ to, text }),
 * };
 * shared.send(1, "hi");
 * outbox.take(); // [{ to: 1, text: "hi" }]
 * outbox.take(); // []
 * ```
 */
export class Outbox {
  #pending: OutgoingMessage[] = [];
  readonly #all: OutgoingMessage[] = [];

  /**
   * Records one outgoing message.
   *
   * @param message What was sent.
   */
  send(message: OutgoingMessage): void {
    this.#pending.push(message);
    this.#all.push(message);
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

  /** Every message recorded so far, oldest first. */
  get all(): readonly OutgoingMessage[] {
    return this.#all;
  }
}
