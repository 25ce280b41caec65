/**
 * botnodes with grammY: the middleware, and user and update ids from grammY
 * contexts.
 *
 * With grammY, the event `Nodes` routes is grammY's per-update `Context`
 * (its `ctx`), and the `shared` option holds your services (`bot.api`, a
 * database, a logger).
 *
 * Install `Nodes` with {@linkcode nodesMiddleware}:
 * `bot.on("message", nodesMiddleware(nodes))`. Updates that are not for
 * `Nodes` (`userId` gave `undefined`, such as group messages with
 * {@linkcode privateChatUserId}) go on to the handlers registered after it;
 * updates `Nodes` handled, and redeliveries it skipped, stop there. Handlers
 * registered **before** it play the part of the Python seed's "default
 * router accessible from any state": a `bot.command("help", ...)` registered
 * first answers `/help` whatever node a user is on, and since it does not
 * call `next()`, the user's node never sees the command.
 *
 * Errors: what `route` throws (a handler's error, `LeaseTimeoutError`,
 * `StoreError`, ...) leaves the middleware unchanged, and grammY wraps it in a
 * `BotError` whose `error` is the original. `bot.handleUpdate` (and so a
 * webhook callback) rejects with that `BotError`; the error handler set with
 * `bot.catch` runs only for updates fetched by `bot.start()` (long polling).
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
 *   start: (update) => new Start(update.from?.first_name, true),
 *   shared: { api: bot.api, foodApi, logger: console },
 *   userId: privateChatUserId,
 *   eventId: updateId, // a redelivered update is handled once
 * });
 * bot.command("help", (ctx) => ctx.reply("Type anything")); // any state
 * bot.on("message", nodesMiddleware(nodes));
 * bot.on("message", (ctx) => ctx.reply("I only talk in private chats"));
 * bot.catch((error) => console.error(error.error));
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
  readonly chat?: { readonly type: string } | undefined;
  /** The update itself. */
  readonly update?: { readonly update_id: number } | undefined;
}

/**
 * The id of the user an update is from, in any chat, or `undefined` for
 * updates without a user (channel posts): the `userId` option of `Nodes`.
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
  return ctx.from?.id;
}

/**
 * The id of the user an update is from, only in a private chat with the bot
 * (as the seed's `IsPrivateChatMessage` filter). Group updates are not for
 * `Nodes`: {@linkcode nodesMiddleware} passes them on to the handlers
 * registered after it.
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
  return ctx.chat?.type === "private" ? ctx.from?.id : undefined;
}

/**
 * The `update_id` of an update: the `eventId` option of `Nodes`, so that an
 * update Telegram delivers again (a webhook retry after a timeout) is handled
 * once.
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
 * bot.on("message", middleware);
 * ```
 */
export type NodesMiddleware<C> = (
  ctx: C,
  next: () => Promise<void>,
) => Promise<void>;

/**
 * grammY middleware that routes each update to `nodes` and passes on, by
 * calling `next()`, the updates that are not for it.
 *
 * For each update it awaits `nodes.route(ctx)`, then:
 * - `{ handled: false, reason: "not-ours" }` (`userId` gave `undefined`,
 *   such as a group message with {@linkcode privateChatUserId}): calls
 *   `next()`, so the handlers registered after it see the update;
 * - the update was handled (the transition is committed), or it is a
 *   redelivery skipped as a duplicate (`eventId`): does **not** call
 *   `next()`; the update ends here, as with any grammY handler that does not
 *   call `next()`;
 * - `route` throws: the error propagates unchanged and `next()` is not
 *   called; grammY wraps it in a `BotError` (`bot.handleUpdate` rejects with
 *   it; under `bot.start()` the `bot.catch` handler gets it).
 *
 * With `bot.use(nodesMiddleware(nodes))` every kind of update with a user
 * (messages, edited messages, callback queries, chat member changes, ...)
 * reaches the nodes; `bot.on("message", nodesMiddleware(nodes))` gives them
 * messages only, and grammY passes the other updates on.
 *
 * `nodes.route` installed directly (`bot.on("message", nodes.route)`) works
 * too, but never calls `next()`: updates that are not for `Nodes` end there.
 *
 * @typeParam C The grammY context type (the event type of the `Nodes`).
 * @param nodes The `Nodes` to route updates to.
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
 */
export function nodesMiddleware<C>(nodes: RoutingNodes<C>): NodesMiddleware<C> {
  return async (ctx, next) => {
    const result = await nodes.route(ctx);
    if (!result.handled && result.reason === "not-ours") await next();
  };
}
