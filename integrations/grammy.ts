/**
 * botnodes with grammY: the middleware, {@linkcode pass} for updates a node
 * does not handle, the `ctx.nodes` flavor, and user, chat and update ids from
 * grammY contexts.
 *
 * With grammY, the event `Nodes` routes is grammY's per-update `Context`
 * (its `ctx`): `onEvent(userId, ctx, shared)` gets it, and so does
 * `onEnter(userId, shared, ctx)` when an update brought the user (it is
 * `undefined` for `nodes.user(id).to()`, `reset()` and timeouts). Reply
 * through `ctx` when you have it: `ctx.reply`, menus (`@grammyjs/menu`),
 * i18n's `ctx.t`, forum topics and business connections all live on the
 * context, and `bot.api` skips them (a menu sent through `bot.api` throws
 * "Cannot send menu ... through bot.api?"). Keep `bot.api` in `shared` for
 * the entries without an update.
 *
 * Install `Nodes` with {@linkcode nodesMiddleware}, limited to the update
 * kinds it should see with grammY's own filters:
 * `bot.on(["message:text", "callback_query:data"], nodesMiddleware(nodes))`.
 * Updates that are not for `Nodes` (`userId` gave `undefined`) and updates a
 * node passed on with {@linkcode pass} go on to the handlers registered after
 * it; handled updates and redeliveries (`eventId`) end there. Handlers
 * registered **before** it answer whatever node a user is on (the Python
 * seed's "default router").
 *
 * Errors: what `route` throws leaves the middleware unchanged and grammY
 * wraps it in a `BotError` whose `error` is the original. Under long polling
 * (`bot.start()`, or `run()` of `@grammyjs/runner`) the `bot.catch` handler
 * gets it; `bot.handleUpdate`, and so a webhook callback, **rejects** with
 * it instead (the web framework answers Telegram 500 and Telegram sends the
 * update again): under webhooks, catch errors with `bot.errorBoundary`.
 *
 * This module imports nothing from grammY: it declares the few fields and
 * types it uses, which a grammY `Context` and `MiddlewareFn` satisfy.
 *
 * @example A grammY bot with state in Redis
 * ```ts ignore
 * // ignored: needs a bot token and a Redis server; Start, Hungry, Hold,
 * // Shared and foodApi are your bot's (see nodesMiddleware for a run)
 * import { Bot, type Context } from "grammy";
 * import { Redis } from "ioredis";
 * import { Nodes, RedisStore } from "@botnodes/core";
 * import {
 *   nodesMiddleware,
 *   privateChatUserId,
 *   updateId,
 * } from "@botnodes/core/grammy";
 *
 * const bot = new Bot(process.env.BOT_TOKEN!);
 * const nodes = new Nodes<Shared, Context, number>({
 *   store: new RedisStore(new Redis(process.env.REDIS_URL!)),
 *   nodes: { start: Start, hungry: Hungry, hold: Hold },
 *   start: (ctx) => new Start(ctx.from?.first_name, true),
 *   shared: { api: bot.api, foodApi, logger: console },
 *   userId: privateChatUserId,
 *   eventId: updateId, // a redelivered update is handled once
 * });
 * bot.command("help", (ctx) => ctx.reply("Type anything")); // any state
 * bot.on(["message", "callback_query:data"], nodesMiddleware(nodes));
 * bot.on("message", (ctx) => ctx.reply("I only talk in private chats"));
 * bot.catch((error) => console.error(error.error)); // long polling only
 * bot.start();
 * ```
 *
 * @module
 */

/**
 * The part of a grammY `Context` these helpers read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type GrammyContextLike, userId } from "@botnodes/core/grammy";
 *
 * const ctx: GrammyContextLike = { from: { id: 1 }, chat: { type: "private" } };
 * assert.equal(userId(ctx), 1);
 * ```
 */
export interface GrammyContextLike {
  /** The user the update is from. */
  readonly from?: { readonly id: number } | undefined;
  /** The chat the update happened in. */
  readonly chat?:
    | { readonly type: string; readonly id?: number | undefined }
    | undefined;
  /**
   * grammY's `ctx.chatId`: the chat's id, or the user's chat of a business
   * connection.
   */
  readonly chatId?: number | undefined;
  /** The update itself. */
  readonly update?: { readonly update_id: number } | undefined;
  /**
   * grammY's `ctx.pollAnswer`: a vote in a poll, whose user `from` does not
   * give (it has no chat either).
   */
  readonly pollAnswer?:
    | {
      readonly user?: { readonly id: number } | undefined;
      /** The chat that voted (its `user` is then a placeholder account). */
      readonly voter_chat?: unknown;
    }
    | undefined;
  /**
   * grammY's `ctx.senderChat`: the chat a message was sent on behalf of (an
   * anonymous group admin, a channel), whose `from` is a placeholder account
   * Telegram gives all such messages, not a person.
   */
  readonly senderChat?: { readonly id: number } | undefined;
  /**
   * grammY's `ctx.callbackQuery`: a button press, whose `from` is the user
   * who pressed (its message may have been sent on behalf of a chat).
   */
  readonly callbackQuery?: unknown;
  /**
   * grammY's `ctx.businessConnectionId`: set for updates of a business
   * account's chats (a chat between the account and a customer, not with
   * the bot).
   */
  readonly businessConnectionId?: string | undefined;
  /**
   * grammY's `ctx.guestMessage`: a message in a chat where the bot was
   * summoned as a guest (not a chat with the bot, though it may have the id
   * of one).
   */
  readonly guestMessage?: unknown;
  /**
   * grammY's `ctx.msg`, for the marks of a message a guest bot sent (a
   * button under it is pressed in the guest chat).
   */
  readonly msg?: unknown;
}

/**
 * Whether an update is from a chat that is not the bot's own although it
 * may be private: a business account's chat with a customer, or a chat the
 * bot was summoned to as a guest.
 */
function foreignChat(ctx: GrammyContextLike): boolean {
  const msg = ctx.msg as
    | {
      guest_bot_caller_user?: unknown;
      guest_bot_caller_chat?: unknown;
    }
    | null
    | undefined;
  return ctx.businessConnectionId !== undefined ||
    ctx.guestMessage !== undefined ||
    msg?.guest_bot_caller_user !== undefined ||
    msg?.guest_bot_caller_chat !== undefined;
}

/**
 * The person an update is from: `undefined` for a message sent on behalf
 * of a chat (its `from` is a placeholder account shared by every such
 * message: 1087968824 for anonymous admins, 136817688 for channels, 777000
 * for a channel's posts forwarded to its discussion group).
 */
function person(ctx: GrammyContextLike): number | undefined {
  if (ctx.senderChat !== undefined && ctx.callbackQuery === undefined) {
    return undefined;
  }
  const vote = ctx.pollAnswer;
  if (vote !== undefined) {
    return vote.voter_chat === undefined ? vote.user?.id : undefined;
  }
  return ctx.from?.id;
}

/**
 * The id of the user an update is from, in any chat, or `undefined` for
 * updates without a user (channel posts, a vote of a chat in a poll, a
 * message sent on behalf of a chat: an anonymous admin's, a channel's, whose
 * `from` is a placeholder account that every such message shares): the
 * `userId` option of `Nodes` for one state per user, whatever chat they
 * write in. A user's vote in a poll (`poll_answer`, which grammY's
 * `ctx.from` leaves out) is theirs too.
 *
 * @param ctx A grammY context.
 * @returns The user id, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { userId } from "@botnodes/core/grammy";
 *
 * assert.equal(userId({ from: { id: 42 } }), 42);
 * assert.equal(userId({}), undefined); // a channel post
 * ```
 */
export function userId(ctx: GrammyContextLike): number | undefined {
  return person(ctx);
}

/**
 * The id of the user an update is from, only in a private chat with the bot
 * (as the seed's `IsPrivateChatMessage` filter). Group updates are not for
 * `Nodes`: {@linkcode nodesMiddleware} passes them on to the handlers
 * registered after it, and so are those of a business account's chats
 * (private chats between the account and its customers, not with the bot)
 * and of chats the bot was summoned to as a guest.
 *
 * @param ctx A grammY context.
 * @returns The user id, or `undefined` outside private chats.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { privateChatUserId } from "@botnodes/core/grammy";
 *
 * const from = { id: 42 };
 * assert.equal(privateChatUserId({ from, chat: { type: "private" } }), 42);
 * assert.equal(privateChatUserId({ from, chat: { type: "group" } }), undefined);
 * ```
 */
export function privateChatUserId(ctx: GrammyContextLike): number | undefined {
  // a business account's chat with a customer, or a chat the bot was summoned
  // to as a guest, may be private, but is not with the bot
  return ctx.chat?.type === "private" && !foreignChat(ctx)
    ? person(ctx)
    : undefined;
}

/**
 * The id of the chat an update happened in: the `userId` option of `Nodes`
 * for **one state per chat**, shared by every member of a group (a group
 * game, a poll being built together). It is the key grammY's `session()`
 * uses by default (`ctx.chatId`), so a bot moving from `session()` keeps
 * its keys. In a private chat it is the user's id. `undefined` for updates
 * without a chat (inline queries): not for `Nodes`. A business account's
 * chat with a customer has the customer's id, as the customer's own chat
 * with the bot (Telegram gives both that id): a bot that gets business
 * updates shares one state between the two with this key, as `session()`
 * does; use `chatUserId`, or a key of your own for updates with
 * `ctx.businessConnectionId`, to keep them apart.
 *
 * @param ctx A grammY context.
 * @returns The chat id, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chatId } from "@botnodes/core/grammy";
 *
 * const group = { id: -100, type: "group" };
 * assert.equal(chatId({ from: { id: 42 }, chat: group }), -100);
 * assert.equal(chatId({ from: { id: 7 }, chat: group }), -100); // shared
 * assert.equal(chatId({ from: { id: 42 } }), undefined); // an inline query
 * ```
 */
export function chatId(ctx: GrammyContextLike): number | undefined {
  return ctx.chatId ?? ctx.chat?.id;
}

/**
 * The key of a user **in a chat**: the `userId` option of `Nodes` for one
 * state per user per chat (a group bot where each member has their own
 * conversation). In a private chat it is the user's id (as a string), so
 * private conversations keep the keys `userId` and `privateChatUserId`
 * gave them; in a group, in a business account's chat with a customer and in
 * a chat the bot was summoned to as a guest, it is `"<chat id>:<user id>"`. `undefined` without a user (see
 * {@linkcode userId}) or a chat. The `userId` a node gets is then this key:
 * reply through the `ctx` (`ctx.reply` writes to the chat the update came
 * from) rather than `bot.api.sendMessage(userId, ...)`.
 *
 * @param ctx A grammY context.
 * @returns The key, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chatUserId } from "@botnodes/core/grammy";
 *
 * const group = { id: -100, type: "group" };
 * assert.equal(chatUserId({ from: { id: 42 }, chat: group }), "-100:42");
 * assert.equal(chatUserId({ from: { id: 7 }, chat: group }), "-100:7");
 * const dm = { id: 42, type: "private" };
 * assert.equal(chatUserId({ from: { id: 42 }, chat: dm }), "42");
 * ```
 */
export function chatUserId(ctx: GrammyContextLike): string | undefined {
  const user = person(ctx);
  const chat = chatId(ctx);
  if (user === undefined || chat === undefined) return undefined;
  // the user's private chat with the bot: a private chat that is no business
  // account's or guest's, or the chat grammY gives a business connection's
  // own update (its owner's chat with the bot)
  const own = ctx.chat === undefined
    ? chat === user
    : ctx.chat.type === "private" && !foreignChat(ctx);
  return own ? String(user) : `${chat}:${user}`;
}

/**
 * The `update_id` of an update: the `eventId` option of `Nodes`, so that an
 * update Telegram delivers again (a webhook retry after an error or a
 * timeout) is handled once.
 *
 * @param ctx A grammY context.
 * @returns The update id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { updateId } from "@botnodes/core/grammy";
 *
 * assert.equal(updateId({ update: { update_id: 901 } }), 901);
 * ```
 */
export function updateId(ctx: GrammyContextLike): number | undefined {
  return ctx.update?.update_id;
}

/** Marks the signal {@linkcode pass} throws, across copies of this module. */
// the mark Nodes knows too: it reports the outcome "passed", not "failed"
const PASS = Symbol.for("@botnodes/core.pass");

/**
 * Passes the update a node is handling on to the handlers registered after
 * {@linkcode nodesMiddleware}: the node does not handle it, so the user
 * stays where they are, nothing is written and no `onEnter` runs. Call it as
 * `return pass()` from `onEvent`, or from the `start` option (then a new
 * user gets no state until an update they start with, such as `/start`).
 * Call it before any side effect: what the node did before it stays done.
 *
 * It throws a signal that `nodesMiddleware` catches (after the user's lease
 * is released) before calling `next()`. Elsewhere, such as under
 * `bot.on("message", nodes.route)` or in `onTimeout`, the signal is an
 * `Error` saying that `pass()` needs `nodesMiddleware`.
 *
 * @returns Never: it throws.
 *
 * @example A node that only understands buttons lets a fallback answer text
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Context } from "grammy";
 * import { Node, Nodes } from "@botnodes/core";
 * import { nodesMiddleware, pass, userId } from "@botnodes/core/grammy";
 * import { MemoryStore } from "@botnodes/core/testing";
 * import { createTestBot } from "@botnodes/core/testing/grammy";
 *
 * class Vote extends Node<null, Context, number, { yes: number }> {
 *   onEvent(_user: number, ctx: Context): Vote {
 *     if (ctx.callbackQuery?.data !== "yes") return pass();
 *     return new Vote({ yes: this.data.yes + 1 });
 *   }
 * }
 *
 * const tg = createTestBot();
 * const nodes = new Nodes<null, Context, number>({
 *   store: new MemoryStore(),
 *   nodes: { vote: Vote },
 *   start: () => new Vote({ yes: 0 }),
 *   shared: null,
 *   userId,
 * });
 * tg.bot.use(nodesMiddleware(nodes));
 * tg.bot.on("message", (ctx) => ctx.reply("Use the buttons"));
 *
 * await tg.bot.handleUpdate(tg.update.text(tg.user(1), "/start"));
 * await tg.bot.handleUpdate(tg.update.text(tg.user(1), "maybe?"));
 * assert.deepEqual(tg.outbox.take().map((m) => m.text), ["Use the buttons"]);
 * assert.deepEqual((await nodes.user(1).node())?.data, { yes: 0 });
 * ```
 */
export function pass(): never {
  const signal = new Error(
    "Cannot pass the update on: pass() works under nodesMiddleware(nodes) only",
  );
  signal.name = "PassSignal";
  Object.defineProperty(signal, PASS, { value: true });
  throw signal;
}

/** Whether `error` is the signal of {@linkcode pass}. */
function isPass(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { [PASS]?: unknown })[PASS] === true;
}

/**
 * What {@linkcode nodesMiddleware} needs of a `Nodes`: its `route`.
 *
 * @typeParam C The grammY context type (the event type of the `Nodes`).
 *
 * @example Anything with a `route` fits: here a stand-in that handles nothing
 * ```ts
 * import assert from "node:assert/strict";
 * import { nodesMiddleware, type RoutingNodes } from "@botnodes/core/grammy";
 *
 * const nobody: RoutingNodes<{ text: string }> = {
 *   route: () => Promise.resolve({ handled: false, reason: "not-ours" }),
 * };
 * let passedOn = false;
 * await nodesMiddleware(nobody)({ text: "hi" }, async () => {
 *   passedOn = true;
 * });
 * assert.ok(passedOn); // not ours: the next handler gets the update
 * ```
 */
export interface RoutingNodes<C> {
  /** Handles one update; see `Nodes.route`. */
  route(event: C): Promise<{
    readonly handled: boolean;
    readonly reason?: string | undefined;
    readonly userId?: string | number | undefined;
    readonly key?: string | undefined;
  }>;
}

/**
 * A grammY middleware function: what {@linkcode nodesMiddleware} returns.
 * It is grammY's `MiddlewareFn<C>`, declared here so that this module does
 * not import grammY; pass it to `bot.use`, `bot.on`, `composer.use`, ...
 *
 * @typeParam C The grammY context type.
 *
 * @example grammY takes it where it takes its own middleware
 * ```ts
 * import { Bot, type Context } from "grammy";
 * import { Node, Nodes } from "@botnodes/core";
 * import {
 *   type NodesMiddleware,
 *   nodesMiddleware,
 *   userId,
 * } from "@botnodes/core/grammy";
 * import { MemoryStore } from "@botnodes/core/testing";
 *
 * class Start extends Node<null, Context, number, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   onEvent(): Start {
 *     return new Start();
 *   }
 * }
 *
 * const nodes = new Nodes<null, Context, number>({
 *   store: new MemoryStore(),
 *   nodes: { start: Start },
 *   start: () => new Start(),
 *   shared: null,
 *   userId,
 * });
 * const middleware: NodesMiddleware<Context> = nodesMiddleware(nodes);
 * const bot = new Bot("<token>"); // makes no request until it handles updates
 * bot.on(["message", "callback_query:data"], middleware);
 * ```
 */
export type NodesMiddleware<C> = (
  ctx: C,
  next: () => Promise<void>,
) => Promise<void>;

/**
 * Options of {@linkcode nodesMiddleware}.
 *
 * @example Nodes that answer every button press themselves
 * ```ts
 * import type { NodesMiddlewareOptions } from "@botnodes/core/grammy";
 *
 * const options: NodesMiddlewareOptions = { autoAnswer: false };
 * ```
 */
export interface NodesMiddlewareOptions {
  /**
   * Answer a callback query (a button press) after its transition was
   * committed, when nothing answered it through the update's `ctx`
   * (`ctx.answerCallbackQuery`): the user's client
   * stops showing its spinner. Not for updates passed on or not handled
   * (the handler that gets them answers), nor for redeliveries.
   *
   * Only answers made through `ctx` after the middleware started are seen.
   * A plugin that answers in parallel before it, as the menu plugin does
   * with its own `autoAnswer`, or an answer through `bot.api`, makes this
   * second answer fail: Telegram refuses it with 400, which the middleware
   * ignores (as it ignores the 400 of a press too old to answer), at the
   * cost of one request. With the menu plugin, turn one of them off:
   * `new Menu(id, { autoAnswer: false })` (the press is answered once the
   * transition is committed) or `nodesMiddleware(nodes, { autoAnswer:
   * false })` (answered at once, whatever the node does). Default `true`.
   *
   * The answer never fails the update (its transition is committed, and a
   * resend would be skipped as a duplicate): an error other than that 400
   * (a 429, a network error) goes to `logger`.
   */
  readonly autoAnswer?: boolean | undefined;
  /**
   * Where an automatic answer that failed is reported (`warn`). Default
   * `console`.
   */
  readonly logger?:
    | { warn(message: string, ...details: unknown[]): void }
    | undefined;
}

/**
 * What {@linkcode nodesMiddleware} did with an update: `ctx.nodes` (see
 * {@linkcode NodesFlavor}).
 *
 * @example
 * ```ts
 * import type { NodesOutcome } from "@botnodes/core/grammy";
 *
 * const passed: NodesOutcome = { handled: false, reason: "passed" };
 * const handled: NodesOutcome = { handled: true, userId: 42, key: "menu" };
 * ```
 */
export interface NodesOutcome {
  /** The transition was committed. */
  readonly handled: boolean;
  /**
   * Why it was not: `"not-ours"` (`userId` gave `undefined`), `"passed"`
   * (a node called {@linkcode pass}) or `"duplicate"` (a redelivery).
   */
  readonly reason?: "not-ours" | "passed" | "duplicate" | undefined;
  /** The user, when the update was handled or a duplicate. */
  readonly userId?: string | number | undefined;
  /** The registry key of the node the user is on now, when handled. */
  readonly key?: string | undefined;
}

/**
 * grammY context flavor for {@linkcode nodesMiddleware}: `ctx.nodes` says
 * what the nodes did with the update, so the handlers registered after the
 * middleware can tell a group message (`"not-ours"`) from one a node passed
 * on (`"passed"`). It is set when the middleware has routed the update:
 * `undefined` in handlers that run before it. To read a user's node from
 * any handler, use `await nodes.user(id).node()` (a snapshot, no lease).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Context } from "grammy";
 * import { Node, Nodes } from "@botnodes/core";
 * import {
 *   type NodesFlavor,
 *   nodesMiddleware,
 *   pass,
 *   privateChatUserId,
 * } from "@botnodes/core/grammy";
 * import { MemoryStore } from "@botnodes/core/testing";
 * import { createTestBot } from "@botnodes/core/testing/grammy";
 *
 * type MyContext = Context & NodesFlavor;
 *
 * class Quiet extends Node<null, MyContext, number, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   onEvent(): Quiet {
 *     return pass(); // lets every update go on
 *   }
 * }
 *
 * const tg = createTestBot<MyContext>();
 * const nodes = new Nodes<null, MyContext, number>({
 *   store: new MemoryStore(),
 *   nodes: { quiet: Quiet },
 *   start: () => new Quiet(),
 *   shared: null,
 *   userId: privateChatUserId,
 * });
 * tg.bot.on("message", nodesMiddleware(nodes));
 * tg.bot.on("message", (ctx) => ctx.reply(`${ctx.nodes?.reason}`));
 *
 * await tg.bot.handleUpdate(tg.update.text(tg.user(1), "hi")); // enters Quiet
 * await tg.bot.handleUpdate(tg.update.text(tg.user(1), "hello"));
 * const group = tg.chat({ id: -5, type: "group", title: "Lunch" });
 * await tg.bot.handleUpdate(tg.update.text(tg.user(1), "all", { chat: group }));
 * assert.deepEqual(tg.outbox.take().map((m) => m.text), ["passed", "not-ours"]);
 * ```
 */
export interface NodesFlavor {
  /** What `nodesMiddleware` did with this update, once it ran. */
  nodes?: NodesOutcome | undefined;
}

/** The parts of a grammY `Context` the middleware uses for button presses. */
interface CallbackContext {
  readonly callbackQuery: { readonly id: string };
  readonly api: {
    readonly config: {
      use(
        transformer: (
          prev: (method: string, payload: unknown, signal?: unknown) => unknown,
          method: string,
          payload: unknown,
          signal?: unknown,
        ) => unknown,
      ): unknown;
    };
  };
  answerCallbackQuery(): Promise<unknown>;
}

/** The context, when it is a button press the middleware can answer. */
function pressOf(ctx: unknown): CallbackContext | undefined {
  const press = ctx as Partial<CallbackContext> | null;
  return typeof press?.callbackQuery?.id === "string" &&
      typeof press.api?.config?.use === "function" &&
      typeof press.answerCallbackQuery === "function"
    ? press as CallbackContext
    : undefined;
}

/** Sets `ctx.nodes`, when the context is an object that can take it. */
function flavor(ctx: unknown, outcome: NodesOutcome): void {
  if (typeof ctx === "object" && ctx !== null && Object.isExtensible(ctx)) {
    (ctx as NodesFlavor).nodes = outcome;
  }
}

/**
 * grammY middleware that routes each update to `nodes` and passes on, by
 * calling `next()`, the updates that are not for it.
 *
 * For each update it awaits `nodes.route(ctx)`, sets `ctx.nodes` (see
 * {@linkcode NodesFlavor}), then:
 * - the update was handled (the transition is committed): answers it if it
 *   is a callback query nothing answered through `ctx` (see
 *   {@linkcode NodesMiddlewareOptions.autoAnswer}), and does **not** call
 *   `next()`: the update ends here, as with any grammY handler;
 * - `{ handled: false, reason: "not-ours" }` (`userId` gave `undefined`,
 *   such as a group message with {@linkcode privateChatUserId}), or a node
 *   called {@linkcode pass} (the user stays, nothing written): calls
 *   `next()`, so the handlers registered after it see the update;
 * - a redelivery skipped as a duplicate (`eventId`): ends here;
 * - `route` throws: the error propagates unchanged and `next()` is not
 *   called; grammY wraps it in a `BotError` (see the module's notes on
 *   `bot.catch` and webhooks).
 *
 * Limit it to the updates the nodes should see with grammY's filters:
 * `bot.on(["message:text", "callback_query:data"], nodesMiddleware(nodes))`
 * (or `bot.chatType("private").on(...)`); grammY passes the other updates
 * on. `bot.use(nodesMiddleware(nodes))` gives the nodes every update whose
 * `userId` is an id (edited messages, chat member updates, ...).
 *
 * `nodes.route` installed directly (`bot.on("message", nodes.route)`) works
 * too, but never calls `next()` and knows nothing of `pass()`.
 *
 * @typeParam C The grammY context type (the event type of the `Nodes`).
 * @param nodes The `Nodes` to route updates to.
 * @param options Whether to answer callback queries (default: yes).
 * @returns The middleware.
 *
 * @example Private chats go to the nodes, group messages to a later handler
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Context } from "grammy";
 * import { Node, Nodes } from "@botnodes/core";
 * import { nodesMiddleware, privateChatUserId } from "@botnodes/core/grammy";
 * import { MemoryStore } from "@botnodes/core/testing";
 * import { createTestBot } from "@botnodes/core/testing/grammy";
 *
 * class Echo extends Node<null, Context, number, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   async onEvent(_user: number, update: Context): Promise<Echo> {
 *     await update.reply(`echo: ${update.msg?.text}`);
 *     return new Echo();
 *   }
 * }
 *
 * const tg = createTestBot();
 * const nodes = new Nodes<null, Context, number>({
 *   store: new MemoryStore(),
 *   nodes: { echo: Echo },
 *   start: () => new Echo(),
 *   shared: null,
 *   userId: privateChatUserId,
 * });
 * tg.bot.on("message", nodesMiddleware(nodes));
 * tg.bot.on("message", (ctx) => ctx.reply("only groups get this"));
 *
 * await tg.bot.handleUpdate(tg.update.text(tg.user(1), "hi")); // enters Echo
 * await tg.bot.handleUpdate(tg.update.text(tg.user(1), "hello"));
 * assert.deepEqual(tg.outbox.take().map((m) => m.text), ["echo: hello"]);
 * ```
 *
 * @example A button press answered for the node
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Context } from "grammy";
 * import { Node, Nodes } from "@botnodes/core";
 * import { nodesMiddleware, userId } from "@botnodes/core/grammy";
 * import { MemoryStore } from "@botnodes/core/testing";
 * import { createTestBot } from "@botnodes/core/testing/grammy";
 *
 * class Counter extends Node<null, Context, number, { n: number }> {
 *   onEvent(): Counter {
 *     return new Counter({ n: this.data.n + 1 }); // does not answer
 *   }
 * }
 *
 * const tg = createTestBot();
 * const nodes = new Nodes<null, Context, number>({
 *   store: new MemoryStore(),
 *   nodes: { counter: Counter },
 *   start: () => new Counter({ n: 0 }),
 *   shared: null,
 *   userId,
 * });
 * tg.bot.on("callback_query:data", nodesMiddleware(nodes));
 * await tg.bot.handleUpdate(tg.update.callbackQuery(tg.user(1), "+1"));
 * await tg.bot.handleUpdate(tg.update.callbackQuery(tg.user(1), "+1"));
 * assert.deepEqual(tg.unansweredCallbackQueries(), []);
 * assert.deepEqual(tg.outbox.takeCalls().map((c) => c.method), [
 *   "answerCallbackQuery",
 *   "answerCallbackQuery",
 * ]);
 * ```
 */
export function nodesMiddleware<C>(
  nodes: RoutingNodes<C>,
  options: NodesMiddlewareOptions = {},
): NodesMiddleware<C> {
  const autoAnswer = options.autoAnswer ?? true;
  const logger = options.logger ?? console;
  return async (ctx, next) => {
    const press = autoAnswer ? pressOf(ctx) : undefined;
    let answered = false;
    // sees the answers made through this update's ctx.api, from here on
    press?.api.config.use((prev, method, payload, signal) => {
      if (
        method === "answerCallbackQuery" &&
        (payload as { callback_query_id?: unknown } | undefined)
            ?.callback_query_id === press.callbackQuery.id
      ) answered = true;
      return prev(method, payload, signal);
    });
    let result: Awaited<ReturnType<RoutingNodes<C>["route"]>>;
    try {
      result = await nodes.route(ctx);
    } catch (error) {
      if (!isPass(error)) throw error;
      flavor(ctx, { handled: false, reason: "passed" });
      return next();
    }
    const { handled, reason, userId, key } = result;
    flavor(ctx, {
      handled,
      ...(reason === "not-ours" || reason === "duplicate" ? { reason } : {}),
      ...(userId === undefined ? {} : { userId }),
      ...(key === undefined ? {} : { key }),
    });
    if (handled) {
      if (press && !answered) await answer(press, logger);
    } else if (reason === "not-ours") await next();
  };
}

/**
 * Answers a press, best effort: Telegram refuses (400) an answer to a query
 * answered already (by a plugin before the middleware saw it, or through
 * `bot.api`) or too old (a press that waited for a busy user), and either
 * way there is nothing left to do. Any other error is reported, never
 * thrown: the transition is committed, so failing the update would only
 * make a resend that is skipped.
 */
async function answer(
  press: CallbackContext,
  logger: { warn(message: string, ...details: unknown[]): void },
): Promise<void> {
  try {
    await press.answerCallbackQuery();
  } catch (error) {
    if ((error as { error_code?: unknown } | null)?.error_code !== 400) {
      logger.warn(
        `Cannot answer the button press ${press.callbackQuery.id} after its transition; the user's client shows a spinner until it times out`,
        error,
      );
    }
  }
}
