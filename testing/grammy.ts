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

import { Bot, BotError, type Context } from "grammy";
import type { Chat, Message, Update, User, UserFromGetMe } from "grammy/types";
import { Outbox } from "./outbox.ts";
import {
  createSimulator,
  type SimulatedNodes,
  type Simulator,
} from "./simulate.ts";

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
 * ```ts ignore
 * tg.failNext("sendMessage", apiErrors.blocked);
 * ```
 */
export const apiErrors: {
  readonly blocked: ApiFailure;
  tooManyRequests(retryAfter: number): ApiFailure;
} = {
  blocked: {
    error_code: 403,
    description: "Forbidden: bot was blocked by the user",
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
 * ```ts ignore
 * tg.calls.at(-1)?.method; // "sendMessage"
 * ```
 */
export interface ApiCall {
  /** The method. */
  readonly method: string;
  /** Its payload. */
  readonly payload: Record<string, unknown>;
  /** The failure it was answered with, if it was made to fail. */
  readonly failed?: ApiFailure | undefined;
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
   * Your bot, to test it with its own middleware; its API calls are
   * answered locally from now on and its `botInfo` is set if it was not.
   * Default: a new `Bot`.
   */
  readonly bot?: Bot<C> | undefined;
  /** The bot's own user. Default: a bot named "TestBot". */
  readonly botInfo?: UserFromGetMe | undefined;
  /** Where outgoing messages are recorded. Default: a new `Outbox`. */
  readonly outbox?: Outbox | undefined;
}

/** Methods that only read, and chat actions: not recorded as replies. */
const QUIET =
  /^(get|set|delete(MyCommands|Webhook)|sendChatAction$|logOut$|close$)/;

/**
 * A grammY `Bot` whose API is local. Made by {@linkcode createTestBot}, the
 * way in (the class itself is exported as a type only).
 *
 * @typeParam C The bot's context type.
 *
 * @example
 * ```ts ignore
 * const tg = createTestBot();
 * await tg.bot.handleUpdate(tg.update.text(tg.user(1), "hi"));
 * tg.outbox.take();
 * ```
 */
class TestBot<C extends Context = Context> {
  /** The grammY bot. */
  readonly bot: Bot<C>;
  /**
   * Calls that succeeded, but for reads, settings and chat actions (see
   * {@linkcode createTestBot}): the bot's replies.
   */
  readonly outbox: Outbox;
  /** Every API call, in order, failed ones included. */
  readonly calls: ApiCall[] = [];
  /** Builds updates. */
  readonly update: UpdateBuilder;
  readonly #users = new Map<number, User>();
  readonly #failures = new Map<string, ApiFailure[]>();
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
    this.update = new UpdateBuilder();
    this.bot.api.config.use((_prev, method, payload) => {
      const failure = this.#failures.get(method)?.shift();
      const body = (payload ?? {}) as Record<string, unknown>;
      this.calls.push({ method, payload: body, failed: failure });
      if (failure) {
        // deno-lint-ignore no-explicit-any
        return Promise.resolve({ ok: false, ...failure } as any);
      }
      if (!QUIET.test(method)) {
        this.outbox.send({
          to: body.chat_id as number | string | undefined,
          text: String(body.text ?? body.caption ?? ""),
          method,
          payload: body,
        });
      }
      return Promise.resolve(
        // deno-lint-ignore no-explicit-any
        { ok: true, result: this.#result(method, body) } as any,
      );
    });
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
   * Makes the next call(s) of `method` fail with `failure` (grammY throws a
   * `GrammyError`).
   *
   * @param method The Bot API method, e.g. `"sendMessage"`.
   * @param failure The error answer. Default: the user blocked the bot.
   * @param times How many calls in a row fail. Default 1.
   */
  failNext(
    method: string,
    failure: ApiFailure = apiErrors.blocked,
    times = 1,
  ): void {
    const queue = this.#failures.get(method) ?? [];
    for (let i = 0; i < times; i++) queue.push(failure);
    this.#failures.set(method, queue);
  }

  /**
   * A simulator whose steps go through `bot.handleUpdate`. A step's event is
   * a text (a command when it starts with `/`) from the step's user, or a
   * whole `Update`. grammY wraps what middleware throws in a `BotError`: a
   * step's `throws` matches the `BotError` or the error inside it, so
   * `throws: LeaseTimeoutError` works as it does without grammY.
   *
   * @param nodes The `Nodes` the bot routes to.
   * @returns The simulator.
   */
  simulator(nodes: SimulatedNodes<number>): Simulator<number, string | Update> {
    return createSimulator<number, string | Update, Update>({
      nodes,
      outbox: this.outbox,
      event: (user, input) => {
        if (typeof input !== "string") return input;
        const from = this.user(user);
        if (input.startsWith("/")) {
          const [name = "", ...args] = input.slice(1).split(" ");
          return this.update.command(from, name, args.join(" "));
        }
        return this.update.text(from, input);
      },
      dispatch: (update) => this.bot.handleUpdate(update),
      unwrapError: (error) => error instanceof BotError ? error.error : error,
    });
  }

  #result(method: string, payload: Record<string, unknown>): unknown {
    if (method === "getMe") return this.bot.botInfo;
    const sends = /^(send(?!ChatAction)|forwardMessage$)/.test(method);
    const edits = /^edit(Message|Message(Text|Caption|Media|ReplyMarkup))/.test(
      method,
    );
    if (method === "copyMessage") return { message_id: ++this.#messageId };
    if (edits && payload.inline_message_id !== undefined) return true;
    if (!sends && !edits) return true;
    const chatId = Number(payload.chat_id);
    const user = this.#users.get(chatId);
    const chat = {
      id: chatId,
      type: "private",
      first_name: user?.first_name ?? `User${chatId}`,
    } as Chat.PrivateChat;
    const message = {
      message_id: edits ? Number(payload.message_id) : ++this.#messageId,
      date: 1_700_000_000 + this.#messageId,
      chat,
      from: this.bot.botInfo,
      ...(typeof payload.text === "string" ? { text: payload.text } : {}),
      ...(typeof payload.caption === "string"
        ? { caption: payload.caption }
        : {}),
      ...(payload.reply_markup ? { reply_markup: payload.reply_markup } : {}),
    } as unknown as Message;
    return message;
  }
}

/**
 * The last update id given out: shared by every builder in the process, so
 * that, as on Telegram, ids keep increasing across bots (a "restarted" test
 * bot does not redeliver old ids).
 */
let lastUpdateId = 0;

/**
 * Builds Telegram updates from a user, with `update_id`s that increase
 * across all builders of the process.
 *
 * @example
 * ```ts ignore
 * const update = tg.update.callbackQuery(tg.user(1), "buy:42");
 * await tg.bot.handleUpdate(update);
 * ```
 */
export class UpdateBuilder {
  #messageId = 500_000;

  /**
   * A text message in the user's private chat with the bot.
   *
   * @param from The user.
   * @param text The text.
   * @returns The update.
   */
  text(from: User, text: string): Update {
    return this.#message(from, { text });
  }

  /**
   * A command (`/name args`), with its `bot_command` entity.
   *
   * @param from The user.
   * @param name The command without `/`.
   * @param args What follows it.
   * @returns The update.
   */
  command(from: User, name: string, args = ""): Update {
    const text = args ? `/${name} ${args}` : `/${name}`;
    return this.#message(from, {
      text,
      entities: [{ type: "bot_command", offset: 0, length: name.length + 1 }],
    });
  }

  /**
   * A contact the user shares (their own, by default).
   *
   * @param from The user.
   * @param phone The phone number.
   * @returns The update.
   */
  contact(from: User, phone: string): Update {
    return this.#message(from, {
      contact: {
        phone_number: phone,
        first_name: from.first_name,
        user_id: from.id,
      },
    });
  }

  /**
   * A press of an inline button with `data`, on a message of the bot.
   *
   * @param from The user.
   * @param data The button's callback data.
   * @param messageId The message the button is on.
   * @returns The update.
   */
  callbackQuery(from: User, data: string, messageId = 1): Update {
    return {
      update_id: ++lastUpdateId,
      callback_query: {
        id: String(lastUpdateId),
        from,
        chat_instance: String(from.id),
        data,
        message: {
          message_id: messageId,
          date: 1_700_000_000,
          chat: this.#chat(from),
          text: "",
        } as Message & Update.NonChannel,
      },
    };
  }

  #chat(from: User): Chat.PrivateChat {
    return {
      id: from.id,
      type: "private",
      first_name: from.first_name,
      ...(from.username === undefined ? {} : { username: from.username }),
    };
  }

  #message(from: User, content: Record<string, unknown>): Update {
    return {
      update_id: ++lastUpdateId,
      message: {
        message_id: ++this.#messageId,
        date: 1_700_000_000 + lastUpdateId,
        chat: this.#chat(from),
        from,
        ...content,
      } as Message & Update.NonChannel,
    };
  }
}

/**
 * Makes a {@linkcode TestBot}: a grammY `Bot` with `botInfo` given and every
 * Bot API call answered locally, nothing sent over the network.
 *
 * Answers: sends and `forwardMessage` return a `Message` with an increasing
 * `message_id`, `copyMessage` a new `message_id`, edits the edited `Message`
 * (`true` for inline messages), `getMe` the `botInfo`, every other call
 * `true`; a call made to fail with {@linkcode TestBot.failNext} gets its
 * error answer (grammY throws a `GrammyError`).
 *
 * Records: every call, in order, in `calls` (method, payload, and the
 * failure if it was made to fail). Every call that succeeded in `outbox`
 * too, except those that only read or configure: methods starting with
 * `get` or `set`, `deleteWebhook`, `deleteMyCommands`, `sendChatAction`,
 * `logOut` and `close`. So `outbox` holds sends, forwards, copies, edits,
 * `answerCallbackQuery`, `deleteMessage` and the like, each with `to` (the
 * payload's `chat_id`), `text` (its `text`, else `caption`, else empty),
 * `method` and `payload`.
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
