/**
 * The grammY preset for conversation tests: a real grammY `Bot` whose Bot
 * API calls are answered locally and recorded, update builders, and a
 * simulator that sends each step through the whole middleware stack with
 * `bot.handleUpdate`.
 *
 * @example
 * ```ts ignore
 * import { nodesMiddleware } from "@botnodes/core/grammy";
 * import { createTestBot } from "@botnodes/core/testing/grammy";
 *
 * const tg = createTestBot();
 * tg.bot.on("message", nodesMiddleware(nodes));
 * const sim = tg.simulator(nodes);
 * await sim.simulate(42, [{ event: "hi", node: "start", replies: ["Hello!"] }]);
 * ```
 *
 * @module
 */

import { AssertionError } from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import {
  Api,
  Bot,
  BotError,
  Context,
  InputFile,
  type Transformer,
} from "grammy";
import type {
  CallbackQuery,
  Chat,
  Message,
  MessageEntity,
  Update,
  User,
  UserFromGetMe,
} from "grammy/types";
import { Outbox } from "./outbox.ts";
import {
  createSimulator,
  type SimulatedNodes,
  type Simulator,
} from "./simulate.ts";
import { quote } from "./transcript.ts";
import { isBlank, modeName, parseMarkup, shownLength } from "./markup.ts";

/**
 * The error part of a Bot API answer, to make a call fail with
 * {@linkcode TestBot.failNext}.
 *
 * @example
 * ```ts
 * import type { ApiFailure } from "@botnodes/core/testing/grammy";
 *
 * const blocked: ApiFailure = {
 *   error_code: 403,
 *   description: "Forbidden: bot was blocked by the user",
 * };
 * ```
 */
export interface ApiFailure {
  /** The HTTP-like error code (403, 429, 400, ...). */
  readonly error_code: number;
  /** Telegram's description. */
  readonly description: string;
  /** Extra parameters, such as `retry_after` for 429. */
  readonly parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

/**
 * Common Bot API failures.
 *
 * @example Making the next reply fail because the user blocked the bot
 * ```ts
 * import assert from "node:assert/strict";
 * import { GrammyError } from "grammy";
 * import { apiErrors, createTestBot } from "@botnodes/core/testing/grammy";
 *
 * const tg = createTestBot();
 * tg.failNext("sendMessage", apiErrors.blocked);
 * await assert.rejects(tg.bot.api.sendMessage(1, "hi"), GrammyError);
 * ```
 */
export const apiErrors: {
  readonly blocked: ApiFailure;
  readonly queryTooOld: ApiFailure;
  tooManyRequests(retryAfter: number): ApiFailure;
} = {
  blocked: {
    error_code: 403,
    description: "Forbidden: bot was blocked by the user",
  },
  // what Telegram answers to a callback query answered twice, or too late
  queryTooOld: {
    error_code: 400,
    description:
      "Bad Request: query is too old and response timeout expired or query ID is invalid",
  },
  tooManyRequests: (retryAfter) => ({
    error_code: 429,
    description: `Too Many Requests: retry after ${retryAfter}`,
    parameters: { retry_after: retryAfter },
  }),
};

/**
 * One Bot API call the bot made.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createTestBot } from "@botnodes/core/testing/grammy";
 *
 * const tg = createTestBot();
 * await tg.bot.api.sendMessage(1, "hi");
 * assert.equal(tg.calls.at(-1)?.method, "sendMessage");
 * ```
 */
export interface ApiCall {
  /** The method. */
  readonly method: string;
  /**
   * Its payload as it would go over the wire: a JSON copy, files shown as
   * `{ "InputFile": <filename> }`.
   */
  readonly payload: Record<string, unknown>;
  /** The failure it was answered with, if it was made to fail. */
  readonly failed?: ApiFailure | undefined;
  /** What it was answered with, if it succeeded. */
  readonly result?: unknown;
}

/**
 * Options of {@linkcode createTestBot}.
 *
 * @typeParam C The bot's context type.
 *
 * @example
 * ```ts ignore
 * const tg = createTestBot({ bot: createMyBot("test-token") });
 * ```
 */
export interface TestBotOptions<C extends Context> {
  /**
   * Your bot, to test it with its own middleware and API transformers
   * (parse mode, auto-retry, ...): its calls go through them and are then
   * answered locally; its `botInfo` is set if it was not. Default: a new
   * `Bot`.
   */
  readonly bot?: Bot<C> | undefined;
  /** The bot's own user. Default: a bot named "TestBot". */
  readonly botInfo?: UserFromGetMe | undefined;
  /** Where outgoing messages are recorded. Default: a new `Outbox`. */
  readonly outbox?: Outbox | undefined;
}

/** Methods whose answer is `true`. */
const ANSWERED_TRUE = new Set([
  "answerCallbackQuery",
  "answerInlineQuery",
  "answerPreCheckoutQuery",
  "answerShippingQuery",
  "approveChatJoinRequest",
  "banChatMember",
  "close",
  "declineChatJoinRequest",
  "deleteChatPhoto",
  "deleteMessage",
  "deleteMessages",
  "deleteMyCommands",
  "deleteWebhook",
  "leaveChat",
  "logOut",
  "pinChatMessage",
  "promoteChatMember",
  "restrictChatMember",
  "sendChatAction",
  "setChatDescription",
  "setChatMenuButton",
  "setChatTitle",
  "setMessageReaction",
  "setMyCommands",
  "setMyDescription",
  "setMyName",
  "setMyShortDescription",
  "setWebhook",
  "unbanChatMember",
  "unpinAllChatMessages",
  "unpinChatMessage",
]);

/** Methods that send one message and answer with it. */
const SENDS = new Set([
  "sendMessage",
  "sendPhoto",
  "sendAudio",
  "sendDocument",
  "sendVideo",
  "sendAnimation",
  "sendVoice",
  "sendVideoNote",
  "sendSticker",
  "sendLocation",
  "sendVenue",
  "sendContact",
  "sendPoll",
  "sendDice",
  "sendInvoice",
  "sendGame",
  "forwardMessage",
]);

/** Methods that change a message the bot sent and answer with it. */
const EDITS = new Set([
  "editMessageText",
  "editMessageCaption",
  "editMessageMedia",
  "editMessageReplyMarkup",
  "editMessageLiveLocation",
  "stopMessageLiveLocation",
]);

/** Methods that put messages in a chat: the replies. */
const REPLIES = new Set([
  ...SENDS,
  ...EDITS,
  "sendMediaGroup",
  "forwardMessages",
  "copyMessage",
  "copyMessages",
]);

/** Every Bot API method grammY knows. */
const METHODS = new Set(
  Object.getOwnPropertyNames(Api.prototype).filter((name) =>
    name !== "constructor"
  ),
);

/** A canned answer for the next call of a method. */
type Canned = { ok: false; failure: ApiFailure } | {
  ok: true;
  result: unknown;
};

/**
 * A grammY `Bot` whose API is local. Made by {@linkcode createTestBot}, the
 * way in (the class itself is exported as a type only).
 *
 * @typeParam C The bot's context type.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createTestBot } from "@botnodes/core/testing/grammy";
 *
 * const tg = createTestBot();
 * tg.bot.on("message:text", (ctx) => ctx.reply("ok"));
 * await tg.bot.handleUpdate(tg.update.text(tg.user(1), "hi"));
 * assert.deepEqual(tg.outbox.take().map((m) => m.text), ["ok"]);
 * ```
 */
class TestBot<C extends Context = Context> {
  /** The grammY bot. */
  readonly bot: Bot<C>;
  /**
   * The bot's replies (messages sent, forwarded, copied and edited) and its
   * other calls that are not reads (see {@linkcode createTestBot}).
   */
  readonly outbox: Outbox;
  /** Every API call, in order, failed ones included (not `getUpdates`). */
  readonly calls: ApiCall[] = [];
  /** Builds updates. */
  readonly update: UpdateBuilder;
  readonly #users = new Map<number, User>();
  readonly #chats = new Map<string, Chat>();
  readonly #canned = new Map<string, Canned[]>();
  /** The bot's messages as they are now, by `chat id:message id`. */
  readonly #messages = new Map<string, Message>();
  /**
   * The parse mode each of those messages' text or caption was last sent
   * with (`""` for none): the same markup in another mode is another text.
   */
  readonly #modes = new Map<string, string>();
  readonly #updates: Update[] = [];
  /** `getUpdates` calls waiting for updates. */
  readonly #polls = new Set<() => void>();
  /** Callback queries the bot received and has not answered, by id. */
  readonly #pressed = new Map<string, CallbackQuery>();
  /** Callback queries answered: Telegram refuses a second answer. */
  readonly #answered = new Set<string>();
  /** The users' messages the bot received, by `chat id:message id`. */
  readonly #received = new Set<string>();
  /** `confirmed` calls waiting for the next `getUpdates`. */
  readonly #confirms = new Set<() => void>();
  #commands: unknown = [];
  #messageId = 0;

  /**
   * Made by {@linkcode createTestBot}.
   *
   * @param options The bot, its info and the outbox.
   */
  constructor(options: TestBotOptions<C> = {}) {
    const botInfo = options.botInfo ?? {
      id: 1_000_000,
      is_bot: true,
      first_name: "TestBot",
      username: "test_bot",
      can_join_groups: true,
      can_read_all_group_messages: false,
      supports_inline_queries: false,
      can_connect_to_business: false,
      has_main_web_app: false,
      has_topics_enabled: false,
      allows_users_to_create_topics: false,
    } as UserFromGetMe;
    this.bot = options.bot ?? new Bot<C>("1000000:test-token", { botInfo });
    if (!this.bot.isInited()) this.bot.botInfo = botInfo;
    this.outbox = options.outbox ?? new Outbox();
    this.update = new UpdateBuilder((id) => this.#users.get(id));
    // The bot's own transformers run first, then this base answers: the
    // kit's transformer replays those installed before it on a local base.
    const before = this.bot.api.config.installedTransformers();
    const base = (method: string, payload: unknown, signal?: AbortSignal) =>
      this.#answer(method, payload, signal);
    const inner = before.reduce(
      (prev, transformer) => (method, payload, signal) =>
        transformer(prev, method, payload, signal),
      base as Parameters<Transformer>[0],
    );
    this.bot.api.config.use((_prev, method, payload, signal) =>
      inner(method, payload, signal)
    );
    // Every update reaches the bot through handleUpdate (tests, the
    // simulator, bot.start() and the runner alike): note the presses.
    const handleUpdate = this.bot.handleUpdate.bind(this.bot);
    this.bot.handleUpdate = (update, envelope) => {
      const query = update.callback_query;
      // a press delivered again after it was answered stays answered, as on
      // Telegram (a second answer is refused)
      if (query !== undefined && !this.#answered.has(query.id)) {
        this.#pressed.set(query.id, query);
      }
      // messages the bot may delete
      for (const message of receivedMessages(update)) {
        this.#received.add(messageKey(message.chat.id, message.message_id));
      }
      return handleUpdate(update, envelope);
    };
  }

  /**
   * The callback queries (button presses) the bot received and has not
   * answered with `answerCallbackQuery`, oldest first: a press left
   * unanswered keeps a spinner on the user's button. A call made to fail
   * with {@linkcode TestBot.failNext} answers nothing; a second answer to
   * the same query fails as on Telegram (`apiErrors.queryTooOld`, 400).
   *
   * @returns The unanswered queries.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createTestBot } from "@botnodes/core/testing/grammy";
   *
   * const tg = createTestBot();
   * tg.bot.callbackQuery("later", () => {}); // forgets to answer
   * tg.bot.callbackQuery("now", (ctx) => ctx.answerCallbackQuery());
   * await tg.bot.handleUpdate(tg.update.callbackQuery(tg.user(1), "now"));
   * await tg.bot.handleUpdate(tg.update.callbackQuery(tg.user(1), "later"));
   * assert.deepEqual(tg.unansweredCallbackQueries().map((q) => q.data), ["later"]);
   * ```
   */
  unansweredCallbackQueries(): CallbackQuery[] {
    return [...this.#pressed.values()].map((query) => structuredClone(query));
  }

  /**
   * A user, made up from the id unless registered with `first_name` and
   * `username` before.
   *
   * @param id The user's id.
   * @param details Name and username to register.
   * @returns The user.
   */
  user(id: number, details: Partial<Omit<User, "id">> = {}): User {
    const known = this.#users.get(id);
    const user: User = {
      ...(known ?? { is_bot: false, first_name: `User${id}` }),
      ...details,
      id,
    };
    this.#users.set(id, user);
    return user;
  }

  /**
   * Registers a group, supergroup or channel, so that messages the bot sends
   * there are answered with it; build updates in it with the `chat` option
   * of the builders.
   *
   * @param chat The chat (a negative id; `"@name"` finds a chat by its
   * `username`).
   * @returns The chat.
   */
  chat<T extends Chat>(chat: T): T {
    this.#chats.set(String(chat.id), chat);
    if ("username" in chat && chat.username) {
      this.#chats.set(`@${chat.username}`, chat);
    }
    return chat;
  }

  /**
   * Makes the next call(s) of `method` fail with `failure` (grammY throws a
   * `GrammyError`).
   *
   * @param method The Bot API method, e.g. `"sendMessage"`.
   * @param failure The error answer. Default: the user blocked the bot.
   * @param times How many calls in a row fail. Default 1.
   * @throws {TypeError} When `method` is not a Bot API method.
   */
  failNext(
    method: string,
    failure: ApiFailure = apiErrors.blocked,
    times = 1,
  ): void {
    for (let i = 0; i < times; i++) {
      this.#can(method, { ok: false, failure });
    }
  }

  /**
   * Answers the next call of `method` with `result`, as Telegram would: for
   * a method the kit does not model, or to give a read its data.
   *
   * @param method The Bot API method, e.g. `"getChatMember"`.
   * @param result What Telegram answers.
   * @throws {TypeError} When `method` is not a Bot API method.
   */
  answerNext(method: string, result: unknown): void {
    this.#can(method, { ok: true, result: structuredClone(result) });
  }

  /**
   * Queues updates for `getUpdates`: a polling bot (`bot.start()`, or a
   * runner that calls `getUpdates`) receives them as Telegram would, in
   * order, from the offset it asks for; a long poll (a `timeout`) with none
   * waiting waits for the next `deliver` (or for the bot to stop), a short
   * one gets none at once.
   *
   * @param updates The updates.
   */
  deliver(...updates: Update[]): void {
    this.#updates.push(...updates);
    for (const wake of [...this.#polls]) wake();
  }

  /**
   * Resolves once the polling bot has confirmed every delivered update: it
   * asked `getUpdates` for an offset past the last one, which `bot.start()`
   * does only after handling them.
   *
   * @returns When they are confirmed.
   */
  async confirmed(): Promise<void> {
    while (this.#updates.length > 0) {
      await new Promise<void>((resolve) => this.#confirms.add(resolve));
    }
  }

  /**
   * The bot's messages in a chat, as they are now (edits applied), oldest
   * first: to press a button on one with {@linkcode TestBot.press}.
   *
   * @param chatId The chat.
   * @returns The messages.
   */
  messages(chatId: number | string): Message[] {
    const id = String(this.#chatFor(chatId).id);
    return [...this.#messages.entries()]
      .filter(([key]) => key.startsWith(`${id}:`))
      .map(([, message]) => structuredClone(message));
  }

  /**
   * A press of an inline button on a message the bot sent, as Telegram
   * delivers it: the message as it is now, the button found by its
   * `callback_data`.
   *
   * @param message The bot's message (from {@linkcode TestBot.messages} or
   * an API answer).
   * @param data The button's `callback_data`.
   * @param from Who presses; default: the user of a private chat.
   * @returns The update.
   * @throws {TypeError} When the bot sent no such message, the message has
   * no button with that data, or no user is given in a group.
   */
  press(message: Message, data: string, from?: User): Update {
    const current = this.#messages.get(
      messageKey(message.chat.id, message.message_id),
    );
    if (current === undefined) {
      throw new TypeError(
        `Cannot press "${data}": the bot sent no message ${message.message_id} to chat ${message.chat.id}`,
      );
    }
    const buttons = (current.reply_markup?.inline_keyboard ?? []).flat();
    if (
      !buttons.some((button) =>
        "callback_data" in button && button.callback_data === data
      )
    ) {
      throw new TypeError(
        `Cannot press "${data}": message ${current.message_id} has no button with that data (it has ${
          JSON.stringify(
            buttons.map((b) => "callback_data" in b ? b.callback_data : b.text),
          )
        })`,
      );
    }
    const user = from ??
      (current.chat.type === "private"
        ? this.user(current.chat.id)
        : undefined);
    if (user === undefined) {
      throw new TypeError(
        `Cannot press "${data}" in chat ${current.chat.id}: say who presses`,
      );
    }
    return this.update.callbackQuery(user, data, current);
  }

  /**
   * Forgets what was recorded and queued, so the test bot can serve the next
   * test.
   *
   * @throws {AssertionError} When a failure or answer given with `failNext`
   * or `answerNext` was never used (it is dropped all the same), or a reply
   * was never taken.
   */
  reset(): void {
    const unused = [...this.#canned.entries()]
      .filter(([, queue]) => queue.length > 0)
      .map(([method, queue]) => `${method} (${queue.length})`);
    const untaken = this.outbox.take();
    this.outbox.takeCalls();
    this.#canned.clear();
    this.#updates.length = 0;
    this.#pressed.clear();
    this.#answered.clear();
    this.#received.clear();
    this.calls.length = 0;
    if (unused.length > 0 || untaken.length > 0) {
      throw new AssertionError({
        message: [
          unused.length > 0
            ? `Unused answers given with failNext or answerNext: ${
              unused.join(", ")
            }`
            : "",
          untaken.length > 0
            ? `Replies never checked: ${
              untaken.map((m) => JSON.stringify(m.text)).join(", ")
            }`
            : "",
        ].filter(Boolean).join("\n"),
        operator: "fail",
      });
    }
  }

  /** {@linkcode TestBot.reset}, for `using tg = createTestBot()`. */
  [Symbol.dispose](): void {
    this.reset();
  }

  /**
   * A simulator whose steps go through `bot.handleUpdate`. A step's event is
   * a text from the step's user (with `bot_command` entities as Telegram
   * marks them), or a whole `Update`, whose sender is the step's user. A
   * step's `node` and `data` are those of the `Nodes` user the update is
   * keyed by (`nodes.userIdOf` on the context the bot made for it, as its
   * middleware left it): the sender with
   * `userId`, the group with `chatId`, `"<chat>:<user>"` with `chatUserId`.
   * The transcript shows an update without its ids. grammY wraps what
   * middleware throws in a `BotError`: a step's `throws` matches the
   * `BotError` or the error inside it.
   *
   * @typeParam K The `Nodes`' user ids.
   * @param nodes The `Nodes` the bot routes to.
   * @param options `clock`: the store's `FakeClock`, for `wait` steps (time
   * passes, due timers fire).
   * @returns The simulator; its users are the Telegram users who send.
   */
  simulator<K extends string | number = number>(
    nodes: SimulatedNodes<K>,
    options: { clock?: { advance(ms: number): void } | undefined } = {},
  ): Simulator<number, string | Update> {
    type Made = new (update: Update, api: Api, me: UserFromGetMe) => C;
    const bot = this.bot as unknown as { ContextConstructor?: Made };
    // the context the bot made for each dispatched update, as its middleware
    // left it: the key may come from what an earlier middleware set on it
    const contexts = recorder(bot).contexts as WeakMap<Update, C>;
    const dispatch = async (update: Update) => {
      const done = record(bot);
      try {
        await this.bot.handleUpdate(update);
      } finally {
        done();
      }
    };
    return createSimulator<number, string | Update, Update>({
      // a step's user is a sender; the state it checks may be keyed otherwise
      nodes: nodes as unknown as SimulatedNodes<number>,
      outbox: this.outbox,
      ...(typeof nodes.userIdOf === "function"
        ? {
          routedTo: (update: Update) =>
            nodes.userIdOf!(
              contexts.get(update) ??
                // (the dispatch is over: the bot's own class is back)
                new (bot.ContextConstructor ?? (Context as unknown as Made))(
                  update,
                  this.bot.api,
                  this.bot.botInfo,
                ),
            ) as number | undefined,
        }
        : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      event: (user, input) =>
        typeof input === "string"
          ? this.update.text(this.user(user), input)
          : input,
      dispatch,
      unwrapError: (error) => isBotError(error) ? error.error : error,
      userOf: senderOf,
      describe: (input, update) =>
        typeof input === "string" ? undefined : describeUpdate(update),
    });
  }

  #can(method: string, canned: Canned): void {
    if (!METHODS.has(method)) {
      throw new TypeError(
        `Cannot answer "${method}": it is not a Bot API method`,
      );
    }
    const queue = this.#canned.get(method) ?? [];
    queue.push(canned);
    this.#canned.set(method, queue);
  }

  /** The local Bot API: answers one call as Telegram would. */
  async #answer(
    method: string,
    payload: unknown,
    signal?: AbortSignal,
  ): Promise<{ ok: true; result: unknown } & { ok: boolean }> {
    const body = toWire(payload);
    if (method === "getUpdates") return this.#getUpdates(body, signal);
    let refused: ApiFailure | undefined;
    try {
      refused = this.#refusal(method, body);
    } catch (error) {
      this.calls.push({ method, payload: body });
      throw error;
    }
    if (refused !== undefined) {
      this.calls.push({ method, payload: body, failed: refused });
      // deno-lint-ignore no-explicit-any
      return { ok: false, ...refused } as any;
    }
    const canned = this.#canned.get(method)?.shift();
    if (canned !== undefined && !canned.ok) {
      this.calls.push({ method, payload: body, failed: canned.failure });
      // deno-lint-ignore no-explicit-any
      return { ok: false, ...canned.failure } as any;
    }
    let result: unknown;
    try {
      result = canned !== undefined
        ? canned.result
        : this.#result(method, body);
    } catch (error) {
      this.calls.push({ method, payload: body });
      throw error;
    }
    this.calls.push({ method, payload: body, result });
    if (method === "answerCallbackQuery") {
      this.#pressed.delete(String(body.callback_query_id));
      this.#answered.add(String(body.callback_query_id));
    }
    if (method === "deleteMessage" || method === "deleteMessages") {
      const chat = String(this.#chatFor(body.chat_id).id);
      const ids = method === "deleteMessage"
        ? [body.message_id]
        : (body.message_ids ?? []) as unknown[];
      for (const id of ids) {
        this.#messages.delete(messageKey(chat, id));
        this.#modes.delete(messageKey(chat, id));
        this.#received.delete(messageKey(chat, id));
      }
    }
    const to = body.chat_id as number | string | undefined;
    if (REPLIES.has(method)) {
      this.outbox.send({
        to,
        text: String(body.text ?? body.caption ?? ""),
        method,
        payload: body,
      });
    } else if (!/^get/.test(method)) {
      this.outbox.call({
        method,
        ...(to === undefined ? {} : { to }),
        ...(typeof body.text === "string" ? { text: body.text } : {}),
        payload: body,
      });
    }
    await Promise.resolve();
    return { ok: true, result };
  }

  /**
   * The 400 Telegram answers to a call it refuses (the cases the kit
   * models), or `undefined`: checked before any `failNext`/`answerNext`.
   */
  #refusal(
    method: string,
    body: Record<string, unknown>,
  ): ApiFailure | undefined {
    // the markup is read before the chat is looked at
    const text = readText(body.text, body.parse_mode);
    const caption = readText(body.caption, body.parse_mode);
    for (const read of [text, caption, ...albumCaptions(method, body)]) {
      if (typeof read === "object" && "refused" in read) return read.refused;
    }
    if (
      (body.chat_id !== undefined || SENDS.has(method) ||
        (EDITS.has(method) && body.inline_message_id === undefined)) &&
      !this.#chatExists(body.chat_id)
    ) {
      return badRequest("chat not found");
    }
    if (method === "answerCallbackQuery") {
      const id = String(body.callback_query_id);
      // answered twice, or never received
      return this.#pressed.has(id) ? undefined : apiErrors.queryTooOld;
    }
    if (method === "sendMessage" || method === "editMessageText") {
      // the limits are on the text Telegram shows, after its markup
      if (text === undefined || "refused" in text || isBlank(text.text)) {
        return badRequest("message text is empty");
      }
      if (shownLength(text.text) > MAX_TEXT) {
        return badRequest("message is too long");
      }
    }
    // a media message's caption (a send, or an edit of it), likewise
    if (
      caption !== undefined && "text" in caption &&
      shownLength(caption.text) > MAX_CAPTION
    ) {
      return badRequest("message caption is too long");
    }
    const markup = body.reply_markup as
      | { inline_keyboard?: unknown }
      | undefined;
    if (Array.isArray(markup?.inline_keyboard)) {
      for (const button of markup.inline_keyboard.flat()) {
        const data = (button as { callback_data?: unknown }).callback_data;
        if (
          typeof data === "string" &&
          (data === "" ||
            new TextEncoder().encode(data).length > MAX_CALLBACK_DATA)
        ) {
          return badRequest("BUTTON_DATA_INVALID");
        }
      }
    }
    if (method === "deleteMessage") {
      const key = messageKey(this.#chatFor(body.chat_id).id, body.message_id);
      if (!this.#messages.has(key) && !this.#received.has(key)) {
        return badRequest("message to delete not found");
      }
    }
    if (EDITS.has(method) && body.inline_message_id === undefined) {
      const current = this.#messages.get(
        messageKey(this.#chatFor(body.chat_id).id, body.message_id),
      );
      if (current === undefined) {
        return badRequest("message to edit not found");
      }
      // a text message has no caption, a media message no text (a copy or
      // forward, whose content the kit does not keep, is refused neither)
      const kind = contentKind(current);
      if (
        method === "editMessageCaption" &&
        (kind === "text" || kind === "uncaptioned")
      ) {
        return badRequest("there is no caption in the message to edit");
      }
      if (
        method === "editMessageText" &&
        (kind === "captioned" || kind === "uncaptioned")
      ) {
        return badRequest("there is no text in the message to edit");
      }
      const key = messageKey(this.#chatFor(body.chat_id).id, body.message_id);
      if (
        unchanged(method, body, current) &&
        (method === "editMessageReplyMarkup" ||
          this.#modes.get(key) === modeOf(body))
      ) {
        return badRequest(
          "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        );
      }
    }
    return undefined;
  }

  #getUpdates(
    body: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<{ ok: true; result: unknown } & { ok: boolean }> {
    const offset = typeof body.offset === "number" ? body.offset : 0;
    const limit = typeof body.limit === "number" ? body.limit : 100;
    // an offset confirms every update below it
    while ((this.#updates[0]?.update_id ?? Infinity) < offset) {
      this.#updates.shift();
    }
    const confirms = [...this.#confirms];
    this.#confirms.clear();
    for (const resolve of confirms) resolve();
    const timeout = typeof body.timeout === "number" ? body.timeout : 0;
    if (this.#updates.length > 0 || timeout === 0) {
      // a short poll (no timeout) is answered at once, as on Telegram
      return Promise.resolve({
        ok: true,
        result: structuredClone(this.#updates.slice(0, limit)),
      });
    }
    return new Promise((resolve, reject) => {
      const wake = () => {
        this.#polls.delete(wake);
        signal?.removeEventListener("abort", abort);
        this.#getUpdates(body, signal).then(resolve, reject);
      };
      const abort = () => {
        this.#polls.delete(wake);
        reject(signal?.reason ?? new Error("getUpdates was aborted"));
      };
      if (signal?.aborted) return abort();
      signal?.addEventListener("abort", abort, { once: true });
      this.#polls.add(wake);
    });
  }

  /** The chat a `chat_id` names. */
  /** Whether a chat id names a chat {@linkcode #chatFor} can give. */
  #chatExists(chatId: unknown): boolean {
    if (this.#chats.has(String(chatId))) return true;
    if (typeof chatId === "string" && chatId.startsWith("@")) return true;
    return chatNumber(chatId) !== undefined;
  }

  #chatFor(chatId: unknown): Chat {
    const known = this.#chats.get(String(chatId));
    if (known) return known;
    if (typeof chatId === "string" && chatId.startsWith("@")) {
      let hash = 0;
      for (const char of chatId) hash = (hash * 31 + char.charCodeAt(0)) % 1e9;
      return this.chat({
        id: -1_000_000_000_000 - hash,
        type: "channel",
        title: chatId.slice(1),
        username: chatId.slice(1),
      });
    }
    const id = chatNumber(chatId);
    if (id === undefined) {
      throw new TypeError(`Bad Request: chat not found (chat_id ${chatId})`);
    }
    if (id > 0) {
      const user = this.user(id);
      return {
        id,
        type: "private",
        first_name: user.first_name,
        ...(user.last_name === undefined ? {} : { last_name: user.last_name }),
        ...(user.username === undefined ? {} : { username: user.username }),
      };
    }
    return id < -1_000_000_000_000
      ? { id, type: "supergroup", title: `Chat ${id}` }
      : { id, type: "group", title: `Chat ${id}` };
  }

  #newMessage(
    payload: Record<string, unknown>,
    content: Record<string, unknown>,
  ): Message {
    const chat = this.#chatFor(payload.chat_id);
    const message = {
      message_id: ++this.#messageId,
      date: 1_700_000_000 + this.#messageId,
      chat,
      ...(chat.type === "channel" ? {} : { from: this.bot.botInfo }),
      ...(typeof payload.message_thread_id === "number"
        ? {
          message_thread_id: payload.message_thread_id,
          is_topic_message: true,
        }
        : {}),
      ...content,
      ...(payload.reply_markup !== undefined &&
          (payload.reply_markup as Record<string, unknown>).inline_keyboard
        ? { reply_markup: payload.reply_markup }
        : {}),
    } as unknown as Message;
    this.#messages.set(messageKey(chat.id, message.message_id), message);
    this.#modes.set(messageKey(chat.id, message.message_id), modeOf(payload));
    return structuredClone(message);
  }

  #result(method: string, payload: Record<string, unknown>): unknown {
    if (method === "getMe") return this.bot.botInfo;
    if (ANSWERED_TRUE.has(method)) {
      if (method === "setMyCommands") this.#commands = payload.commands ?? [];
      if (method === "deleteMyCommands") this.#commands = [];
      return true;
    }
    if (method === "sendMediaGroup") {
      const media = (payload.media ?? []) as Record<string, unknown>[];
      return media.map((item) =>
        this.#newMessage(payload, {
          ...(typeof item.caption === "string"
            ? { caption: item.caption }
            : {}),
          [String(item.type)]: [],
        })
      );
    }
    if (SENDS.has(method)) {
      return this.#newMessage(
        payload,
        sentContent(method, payload, this.#messageId + 1),
      );
    }
    if (method === "copyMessage") {
      return { message_id: this.#newMessage(payload, {}).message_id };
    }
    if (method === "copyMessages" || method === "forwardMessages") {
      const ids = (payload.message_ids ?? []) as unknown[];
      return ids.map(() => ({
        message_id: this.#newMessage(payload, {}).message_id,
      }));
    }
    if (EDITS.has(method)) {
      if (payload.inline_message_id !== undefined) return true;
      const chat = this.#chatFor(payload.chat_id);
      const key = messageKey(chat.id, payload.message_id);
      const current = this.#messages.get(key);
      if (current === undefined) {
        // refused before (see #refusal), unless answered with answerNext
        throw new TypeError(
          `Bad Request: message to edit not found (${method} of message ${payload.message_id} in chat ${chat.id}, which the bot did not send)`,
        );
      }
      const edited = {
        ...current,
        edit_date: current.date + 1,
        ...(typeof payload.text === "string" ? { text: payload.text } : {}),
        ...(typeof payload.caption === "string"
          ? { caption: payload.caption }
          : {}),
      } as Message & { reply_markup?: unknown };
      // as on Telegram, an edit without an inline keyboard removes the one
      // the message had
      if (payload.reply_markup) {
        edited.reply_markup = payload.reply_markup as never;
      } else delete edited.reply_markup;
      this.#messages.set(key, edited as Message);
      if (method !== "editMessageReplyMarkup") {
        this.#modes.set(key, modeOf(payload));
      }
      return structuredClone(edited);
    }
    if (method === "getChat") {
      return {
        ...this.#chatFor(payload.chat_id),
        accent_color_id: 0,
        max_reaction_count: 11,
        accepted_gift_types: {
          unlimited_gifts: false,
          limited_gifts: false,
          unique_gifts: false,
          premium_subscription: false,
        },
      };
    }
    if (method === "getChatMember") {
      const id = Number(payload.user_id);
      return id === this.bot.botInfo.id
        ? { status: "member", user: this.bot.botInfo }
        : { status: "member", user: this.user(id) };
    }
    if (method === "getMyCommands") return this.#commands;
    if (method === "getFile") {
      const id = String(payload.file_id);
      return {
        file_id: id,
        file_unique_id: `u${id}`,
        file_path: `files/${id}`,
      };
    }
    if (method === "getWebhookInfo") {
      return {
        url: "",
        has_custom_certificate: false,
        pending_update_count: this.#updates.length,
      };
    }
    throw new Error(
      `The test bot does not model the Bot API method "${method}": give its result with tg.answerNext("${method}", result) (or a failure with tg.failNext)`,
    );
  }
}

/** How the kit names a message: its chat's id and its id in that chat. */
function messageKey(chat: unknown, id: unknown): string {
  return `${chat}:${id}`;
}

/**
 * Telegram's limit on a message's text, in characters (code points) of the
 * text shown (see `shownLength`).
 */
const MAX_TEXT = 4096;
/** Telegram's limit on a media message's caption, counted alike. */
const MAX_CAPTION = 1024;

/** What records the contexts a bot makes, while simulations dispatch. */
interface Recorder {
  /** The bot's own context class, while the recording one stands in. */
  original: unknown;
  /** How many dispatches are recording. */
  active: number;
  /** The context made for each update. */
  readonly contexts: WeakMap<object, unknown>;
}

const recorders = new WeakMap<object, Recorder>();

function recorder(bot: object): Recorder {
  let found = recorders.get(bot);
  if (found === undefined) {
    found = { original: undefined, active: 0, contexts: new WeakMap() };
    recorders.set(bot, found);
  }
  return found;
}

/**
 * Has a bot record the context it makes for each update (a subclass of its
 * own context class, of the same name, stands in) until the returned
 * function is called; with several simulations on one bot at once, the
 * bot's own class comes back when the last one is done.
 */
function record(bot: { ContextConstructor?: unknown }): () => void {
  const found = recorder(bot);
  if (found.active++ === 0) {
    const Made = (bot.ContextConstructor ?? Context) as typeof Context;
    found.original = bot.ContextConstructor;
    const contexts = found.contexts;
    const Recording = class extends Made {
      constructor(update: Update, api: Api, me: UserFromGetMe) {
        super(update, api, me);
        contexts.set(update, this);
      }
    };
    Object.defineProperty(Recording, "name", { value: Made.name });
    bot.ContextConstructor = Recording;
  }
  return () => {
    if (--found.active === 0) bot.ContextConstructor = found.original;
  };
}

/** Telegram's limit on a button's `callback_data`, in bytes (UTF-8). */
const MAX_CALLBACK_DATA = 64;

/**
 * The number a chat id gives: a safe integer other than 0, or a string of
 * one as Telegram reads it (decimal digits, nothing around them).
 */
function chatNumber(chatId: unknown): number | undefined {
  const id = typeof chatId === "string" && /^-?[1-9][0-9]*$/.test(chatId)
    ? Number(chatId)
    : chatId;
  return typeof id === "number" && Number.isSafeInteger(id) && id !== 0
    ? id
    : undefined;
}

/**
 * A text or caption of a call as Telegram shows it (its `parse_mode`
 * applied), or the refusal of its markup; `undefined` when it has none.
 */
function readText(
  value: unknown,
  mode: unknown,
): { text: string; length: number } | { refused: ApiFailure } | undefined {
  if (typeof value !== "string") return undefined;
  if (mode === undefined) return { text: value, length: value.length };
  const parsed = typeof mode === "string"
    ? parseMarkup(value, mode)
    : undefined;
  if (parsed === undefined) {
    return { refused: badRequest("unsupported parse_mode") };
  }
  return "error" in parsed
    ? { refused: badRequest(`can't parse entities: ${parsed.error}`) }
    : parsed;
}

/** A call's parse mode as the server reads it: `""` for none. */
function modeOf(body: Record<string, unknown>): string {
  return typeof body.parse_mode === "string" ? modeName(body.parse_mode) : "";
}

/** The captions of an album's items (`sendMediaGroup`), each read alone. */
function albumCaptions(
  method: string,
  body: Record<string, unknown>,
): ReturnType<typeof readText>[] {
  if (method !== "sendMediaGroup" || !Array.isArray(body.media)) return [];
  return body.media.map((item: Record<string, unknown> | null) =>
    readText(item?.caption, item?.parse_mode)
  );
}

/** A 400 answer. */
function badRequest(what: string): ApiFailure {
  return { error_code: 400, description: `Bad Request: ${what}` };
}

/**
 * Whether an edit leaves the message as it is (Telegram refuses it): the
 * same text or caption, and the same inline keyboard (none given keeps
 * none).
 */
function unchanged(
  method: string,
  body: Record<string, unknown>,
  current: Message,
): boolean {
  const now = current as Message & { reply_markup?: unknown };
  const sameMarkup = body.reply_markup === undefined
    ? now.reply_markup === undefined
    : isDeepStrictEqual(body.reply_markup, now.reply_markup);
  switch (method) {
    case "editMessageText":
      return body.text === current.text && sameMarkup;
    case "editMessageCaption":
      return (body.caption ?? "") === (current.caption ?? "") && sameMarkup;
    case "editMessageReplyMarkup":
      return sameMarkup;
    default:
      return false;
  }
}

/** The kinds of message that may have a caption. */
const CAPTIONED = ["photo", "video", "document", "audio", "animation", "voice"];
/** The kinds of message that have neither text nor caption. */
const UNCAPTIONED = [
  "sticker",
  "location",
  "venue",
  "contact",
  "dice",
  "poll",
  "video_note",
  "game",
];

/**
 * What a message holds, for the edits Telegram allows: text, media that may
 * have a caption, or neither; `undefined` when the kit does not know (a
 * copy or a forward).
 */
function contentKind(
  message: Message,
): "text" | "captioned" | "uncaptioned" | undefined {
  if (typeof message.text === "string") return "text";
  if (CAPTIONED.some((kind) => kind in message)) return "captioned";
  if (UNCAPTIONED.some((kind) => kind in message)) return "uncaptioned";
  return undefined;
}

/** The users' messages an update carries (the bot may delete them). */
function receivedMessages(update: Update): Message[] {
  const found: Message[] = [];
  for (const [key, value] of Object.entries(update)) {
    if (key === "update_id" || value === null || typeof value !== "object") {
      continue;
    }
    const carried = key === "callback_query"
      ? (value as CallbackQuery).message
      : value as Message;
    if (
      carried !== undefined && typeof carried.message_id === "number" &&
      carried.chat !== undefined
    ) found.push(carried as Message);
  }
  return found;
}

/** What a sent message holds, as Telegram answers it. */
function sentContent(
  method: string,
  payload: Record<string, unknown>,
  messageId: number,
): Record<string, unknown> {
  const caption = typeof payload.caption === "string"
    ? { caption: payload.caption }
    : {};
  switch (method) {
    case "sendMessage":
      return { text: payload.text };
    case "sendPhoto":
      return {
        photo: [{
          file_id: "photo",
          file_unique_id: "photo",
          width: 1,
          height: 1,
        }],
        ...caption,
      };
    case "sendLocation":
      return {
        location: { latitude: payload.latitude, longitude: payload.longitude },
      };
    case "sendContact":
      return {
        contact: {
          phone_number: payload.phone_number,
          first_name: payload.first_name,
        },
      };
    case "sendDice":
      return { dice: { emoji: payload.emoji ?? "🎲", value: 1 } };
    case "sendPoll":
      return { poll: sentPoll(payload, messageId) };
    case "sendVenue": {
      const location = {
        latitude: payload.latitude,
        longitude: payload.longitude,
      };
      return {
        venue: { location, title: payload.title, address: payload.address },
        location,
      };
    }
    case "sendInvoice":
      return {
        invoice: {
          title: payload.title,
          description: payload.description,
          start_parameter: payload.start_parameter ?? "",
          currency: payload.currency,
          total_amount: Array.isArray(payload.prices)
            ? (payload.prices as { amount?: unknown }[]).reduce(
              (sum, price) => sum + (Number(price?.amount) || 0),
              0,
            )
            : 0,
        },
      };
    case "sendGame":
      return {
        game: {
          title: String(payload.game_short_name),
          description: "",
          photo: [],
        },
      };
    case "forwardMessage":
      return {
        forward_origin: {
          type: "hidden_user",
          sender_user_name: "",
          date: 1_700_000_000,
        },
      };
    default: {
      // a file: sendAudio, sendDocument, sendVideo, sendAnimation,
      // sendVoice, sendVideoNote, sendSticker
      const kind = method.slice(4).replace(/^[A-Z]/, (c) => c.toLowerCase())
        .replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      return {
        [kind]: { file_id: kind, file_unique_id: kind, ...FILE_FIELDS[kind] },
        ...caption,
      };
    }
  }
}

/** The fields besides the file's ids that Telegram gives each kind of file. */
const FILE_FIELDS: Record<string, Record<string, unknown>> = {
  audio: { duration: 1 },
  video: { width: 1, height: 1, duration: 1 },
  animation: { width: 1, height: 1, duration: 1 },
  voice: { duration: 1 },
  video_note: { length: 1, duration: 1 },
  sticker: {
    type: "regular",
    width: 1,
    height: 1,
    is_animated: false,
    is_video: false,
  },
};

/**
 * The poll a `sendPoll` makes: no votes yet, its options as given, and an id
 * of its own (Telegram's are unique: here, from the message's id).
 */
function sentPoll(
  payload: Record<string, unknown>,
  messageId: number,
): Record<string, unknown> {
  const options = Array.isArray(payload.options) ? payload.options : [];
  const quiz = payload.type === "quiz";
  // correct_option_id before Bot API 9.6, correct_option_ids since
  const correct = Array.isArray(payload.correct_option_ids)
    ? payload.correct_option_ids
    : typeof payload.correct_option_id === "number"
    ? [payload.correct_option_id]
    : undefined;
  return {
    id: String(5_000_000_000_000_000_000n + BigInt(messageId)),
    question: payload.question,
    options: options.map((option, i) => ({
      persistent_id: String(i),
      text: typeof option === "string"
        ? option
        : (option as { text?: unknown } | null)?.text,
      voter_count: 0,
    })),
    total_voter_count: 0,
    is_closed: payload.is_closed === true,
    is_anonymous: payload.is_anonymous !== false,
    type: quiz ? "quiz" : "regular",
    allows_multiple_answers: payload.allows_multiple_answers === true,
    allows_revoting: payload.allows_revoting === true,
    members_only: payload.members_only === true,
    ...(quiz && correct !== undefined ? { correct_option_ids: correct } : {}),
  };
}

// grammY's classes, known by their shape as well: a bot may use another copy
// of grammY than the kit (deno.land/x, a nested npm install), whose classes
// are others.

/** Whether an error is grammY's `BotError`, of any copy of grammY. */
function isBotError(error: unknown): error is BotError {
  return error instanceof BotError ||
    (error instanceof Error && error.name === "BotError" && "error" in error &&
      "ctx" in error);
}

/** Whether a value is grammY's `InputFile`, of any copy of grammY. */
function isInputFile(value: unknown): value is InputFile {
  return value instanceof InputFile ||
    (typeof value === "object" && value !== null &&
      value.constructor?.name === "InputFile" && "fileData" in value);
}

/** A payload as it would go over the wire. */
function toWire(payload: unknown): Record<string, unknown> {
  const text = JSON.stringify(
    filesShown(payload ?? {}),
    (_key, value) => value ?? undefined,
  );
  return JSON.parse(text);
}

/**
 * A copy of a payload with each `InputFile` shown as `{ InputFile: name }`:
 * before `JSON.stringify`, which calls grammY's `InputFile.toJSON` (it
 * throws: a file goes as a multipart upload) before any replacer sees it.
 */
function filesShown(value: unknown, seen = new Set<object>()): unknown {
  if (isInputFile(value)) return { InputFile: value.filename ?? "file" };
  if (value === null || typeof value !== "object" || seen.has(value)) {
    return value;
  }
  if (Array.isArray(value)) {
    seen.add(value);
    return value.map((item) => filesShown(item, seen));
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  seen.add(value);
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    copy[key] = filesShown(item, seen);
  }
  return copy;
}

/** The user an update is from, if any. */
function senderOf(update: Update): number | undefined {
  for (const [key, value] of Object.entries(update)) {
    if (key === "update_id" || value === null || typeof value !== "object") {
      continue;
    }
    const from = (value as { from?: { id?: unknown } }).from?.id;
    if (typeof from === "number") return from;
    const user = (value as { user?: { id?: unknown } }).user?.id;
    if (typeof user === "number") return user;
  }
  return undefined;
}

/** An update as a transcript shows it: no ids or dates. */
function describeUpdate(update: Update): string {
  const kind = Object.keys(update).find((key) => key !== "update_id") ?? "";
  const body = (update as unknown as Record<string, Record<string, unknown>>)[
    kind
  ] ?? {};
  const chat = body.chat as Chat | undefined ??
    (body.message as { chat?: Chat } | undefined)?.chat;
  const where = chat && chat.type !== "private"
    ? ` in ${chat.type} ${chat.id}${
      typeof body.message_thread_id === "number"
        ? ` topic ${body.message_thread_id}`
        : ""
    }`
    : "";
  let what: unknown;
  if (kind === "callback_query") what = body.data;
  else if (kind === "inline_query") what = body.query;
  else if (typeof body.text === "string") what = body.text;
  else {
    const { message_id: _i, date: _d, chat: _c, from: _f, ...rest } = body;
    what = JSON.stringify(rest);
  }
  const text = String(what);
  const plain = kind === "message" && where === "";
  return plain ? quote(text) : `(${kind}${where}) ${quote(text)}`;
}

/**
 * The last update id given out: shared by every builder in the process, so
 * that, as on Telegram, ids keep increasing across bots (a "restarted" test
 * bot sharing a store does not redeliver old ids). Transcripts never show
 * them.
 */
let lastUpdateId = 0;

/**
 * Options of the {@linkcode UpdateBuilder} message builders.
 *
 * @example
 * ```ts ignore
 * const group = tg.chat({ id: -5, type: "group", title: "Lunch" });
 * tg.update.text(tg.user(1), "/menu", { chat: group });
 * ```
 */
export interface MessageOptions {
  /** The chat it is in. Default: the user's private chat with the bot. */
  readonly chat?: Chat | undefined;
  /** The forum topic (a supergroup with topics). */
  readonly threadId?: number | undefined;
}

/**
 * Builds Telegram updates as Telegram sends them, with `update_id`s that
 * increase across all builders of the process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createTestBot } from "@botnodes/core/testing/grammy";
 *
 * const tg = createTestBot();
 * const update = tg.update.text(tg.user(1), "/start\nhello");
 * assert.deepEqual(update.message?.entities, [
 *   { type: "bot_command", offset: 0, length: 6 },
 * ]);
 * ```
 */
export class UpdateBuilder {
  #messageId = 500_000;
  readonly #users: (id: number) => User | undefined;

  /**
   * Made by {@linkcode createTestBot}.
   *
   * @param users Finds a registered user by id.
   */
  constructor(users: (id: number) => User | undefined = () => undefined) {
    this.#users = users;
  }

  /**
   * A text message, in the user's private chat with the bot unless a chat
   * is given, with a `bot_command` entity for each command in it (a `/`
   * word at the start or after a blank, up to the next blank).
   *
   * @param from The user.
   * @param text The text.
   * @param options The chat and topic.
   * @returns The update.
   */
  text(from: User, text: string, options: MessageOptions = {}): Update {
    const entities = commandEntities(text);
    return this.#message("message", from, {
      text,
      ...(entities.length > 0 ? { entities } : {}),
    }, options);
  }

  /**
   * A command (`/name args`), with its `bot_command` entity.
   *
   * @param from The user.
   * @param name The command without `/`.
   * @param args What follows it.
   * @param options The chat and topic.
   * @returns The update.
   */
  command(
    from: User,
    name: string,
    args = "",
    options: MessageOptions = {},
  ): Update {
    return this.text(from, args ? `/${name} ${args}` : `/${name}`, options);
  }

  /**
   * A contact the user shares (their own, by default).
   *
   * @param from The user.
   * @param phone The phone number.
   * @returns The update.
   */
  contact(from: User, phone: string): Update {
    return this.#message("message", from, {
      contact: {
        phone_number: phone,
        first_name: from.first_name,
        user_id: from.id,
      },
    }, {});
  }

  /**
   * The user's message edited to a new text: an `edited_message` update.
   *
   * @param message The user's message (an update's `message`).
   * @param text The new text.
   * @returns The update.
   */
  editedText(message: Message, text: string): Update {
    const entities = commandEntities(text);
    const { entities: _old, ...rest } = message as Message & {
      entities?: unknown;
    };
    return {
      update_id: ++lastUpdateId,
      edited_message: {
        ...rest,
        text,
        ...(entities.length > 0 ? { entities } : {}),
        edit_date: message.date + 1,
      } as Message & Update.Edited & Update.NonChannel,
    };
  }

  /**
   * A post in a channel: a `channel_post` update, with no sender.
   *
   * @param chat The channel.
   * @param text The text.
   * @returns The update.
   */
  channelPost(chat: Chat, text: string): Update {
    return {
      update_id: ++lastUpdateId,
      channel_post: {
        message_id: ++this.#messageId,
        date: 1_700_000_000,
        chat,
        sender_chat: chat,
        text,
      } as unknown as Message & Update.Channel,
    };
  }

  /**
   * An inline query (`@bot query` typed in any chat).
   *
   * @param from The user.
   * @param query What they typed.
   * @returns The update.
   */
  inlineQuery(from: User, query: string): Update {
    const id = ++lastUpdateId;
    return {
      update_id: id,
      inline_query: { id: String(id), from, query, offset: "" },
    };
  }

  /**
   * A press of an inline button with `data`. To press a button of a message
   * the bot really sent, use the test bot's `press`, which checks it.
   *
   * @param from The user.
   * @param data The button's callback data.
   * @param message The message the button is on, or its id in the user's
   * private chat.
   * @returns The update.
   */
  callbackQuery(
    from: User,
    data: string,
    message: number | Message = 1,
  ): Update {
    const id = ++lastUpdateId;
    const on = typeof message === "number"
      ? {
        message_id: message,
        date: 1_700_000_000,
        chat: this.#private(from),
        text: "",
      }
      : message;
    return {
      update_id: id,
      callback_query: {
        id: String(id),
        from,
        chat_instance: String(on.chat.id),
        data,
        message: on as Message & Update.NonChannel,
      },
    };
  }

  #private(from: User): Chat.PrivateChat {
    const user = this.#users(from.id) ?? from;
    return {
      id: from.id,
      type: "private",
      first_name: user.first_name,
      ...(user.username === undefined ? {} : { username: user.username }),
    };
  }

  #message(
    kind: "message",
    from: User,
    content: Record<string, unknown>,
    options: MessageOptions,
  ): Update {
    const chat = options.chat ?? this.#private(from);
    return {
      update_id: ++lastUpdateId,
      [kind]: {
        message_id: ++this.#messageId,
        date: 1_700_000_000,
        chat,
        from,
        ...(options.threadId === undefined
          ? {}
          : { message_thread_id: options.threadId, is_topic_message: true }),
        ...content,
      } as Message & Update.NonChannel,
    } as Update;
  }
}

/** The `bot_command` entities Telegram marks in a text. */
function commandEntities(text: string): MessageEntity[] {
  const entities: MessageEntity[] = [];
  for (
    const match of text.matchAll(
      /(^|\s)(\/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?)(?=\s|$)/g,
    )
  ) {
    entities.push({
      type: "bot_command",
      offset: match.index! + match[1]!.length,
      length: match[2]!.length,
    });
  }
  return entities;
}

/**
 * Makes a {@linkcode TestBot}: a grammY `Bot` with `botInfo` given and every
 * Bot API call answered locally, nothing sent over the network.
 *
 * Answers: sends and `forwardMessage` return a `Message` with an increasing
 * `message_id`, `copyMessage` a new `message_id`, edits the edited `Message`
 * (`true` for inline messages), `getMe` the `botInfo`, `getChat`,
 * `getChatMember`, `getFile`, `getMyCommands` their Telegram shapes, the
 * other modelled calls `true`; a call made to fail with
 * {@linkcode TestBot.failNext} gets its error answer (grammY throws a
 * `GrammyError`). Calls Telegram refuses fail as there, with a 400 and
 * Telegram's description: markup its `parse_mode` cannot parse (or a
 * `parse_mode` Telegram does not know), an empty or blank text, a text over
 * 4096 characters or a caption over 1024 (counted as the server counts the
 * text shown), `callback_data` empty or over 64 bytes, an edit of a message the bot did not send or that changes nothing, of a
 * caption a message cannot have or of a media message's text, deleting a
 * message the bot neither sent nor received, answering a callback query it
 * did not receive or answered already.
 *
 * Records: every call, in order, in `calls` (method, payload, and the
 * failure if it failed). Every call that succeeded in `outbox` too, except
 * the reads (methods starting with `get`): replies (sends, forwards,
 * copies, edits) with `outbox.send`, every other call (`set*`,
 * `sendChatAction`, `answerCallbackQuery`, `deleteMessage`, `logOut`, ...)
 * with `outbox.call`; each with `to` (the payload's `chat_id`), `text`
 * (its `text`, else `caption`, else empty for a reply), `method` and
 * `payload`.
 *
 * @typeParam C The bot's context type.
 * @param options Your bot, its info, the outbox.
 * @returns The test bot.
 *
 * @example
 * ```ts
 * import { createTestBot } from "@botnodes/core/testing/grammy";
 *
 * const tg = createTestBot();
 * tg.bot.on("message:text", (ctx) => ctx.reply(`You said ${ctx.msg.text}`));
 * await tg.bot.handleUpdate(tg.update.text(tg.user(7), "hi"));
 * tg.outbox.take().map((m) => m.text); // ["You said hi"]
 * ```
 */
export function createTestBot<C extends Context = Context>(
  options: TestBotOptions<C> = {},
): TestBot<C> {
  return new TestBot(options);
}

export type { TestBot };
