/**
 * botnodes with grammY: user ids from grammY contexts, and how the pieces fit.
 *
 * grammY and botnodes both have a "ctx", and they are different things:
 *
 * | botnodes                          | grammY                          |
 * | --------------------------------- | ------------------------------- |
 * | the event (`onEvent`'s 2nd arg)   | `ctx`, the per-update `Context` |
 * | the shared ctx (`Nodes` `ctx`)    | (none: your services, `bot.api`) |
 *
 * In the examples the grammY context is called `update` inside nodes and the
 * shared context `shared`, so a reader never mixes them up.
 *
 * `nodes.route` is a bound function, so it installs as middleware as is:
 * `bot.on("message", nodes.route)`. Handlers registered **before** it play the
 * part of the Python seed's "default router accessible from any state": a
 * `bot.command("help", ...)` registered first answers `/help` whatever node a
 * user is on, and since it does not call `next()`, the user's node never sees
 * the command.
 *
 * This module imports nothing from grammY: it declares the two fields it
 * reads.
 *
 * @example A grammY bot with state in Redis
 * ```ts ignore
 * import { Bot, type Context } from "grammy";
 * import { Redis } from "ioredis";
 * import { Nodes, RedisStore } from "@botnodes/core";
 * import { privateChatUserId, updateId } from "@botnodes/core/grammy";
 *
 * const bot = new Bot(process.env.BOT_TOKEN!);
 * const nodes = new Nodes<Shared, Context, number>({
 *   store: new RedisStore(new Redis(process.env.REDIS_URL!)),
 *   nodes: { start: Start, hungry: Hungry, hold: Hold },
 *   start: (update) => new Start(update.from?.first_name, true),
 *   ctx: { api: bot.api, foodApi, logger: console },
 *   userId: privateChatUserId,
 *   eventId: updateId, // a redelivered update is handled once
 * });
 * bot.command("help", (ctx) => ctx.reply("Type anything")); // any state
 * bot.on("message", nodes.route);
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
 * import type { GrammyContextLike } from "@botnodes/core/grammy";
 *
 * const ctx: GrammyContextLike = { from: { id: 1 }, chat: { type: "private" } };
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
 * import { userId } from "@botnodes/core/grammy";
 *
 * userId({ from: { id: 42 } }); // 42
 * userId({}); // undefined
 * ```
 */
export function userId(ctx: GrammyContextLike): number | undefined {
  return ctx.from?.id;
}

/**
 * The id of the user an update is from, only in a private chat with the bot
 * (as the seed's `IsPrivateChatMessage` filter); group updates are left to
 * other handlers.
 *
 * @param ctx A grammY context.
 * @returns The user id, or `undefined` outside private chats.
 *
 * @example
 * ```ts
 * import { privateChatUserId, updateId } from "@botnodes/core/grammy";
 *
 * privateChatUserId({ from: { id: 42 }, chat: { type: "private" } }); // 42
 * privateChatUserId({ from: { id: 42 }, chat: { type: "group" } }); // undefined
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
 * import { updateId } from "@botnodes/core/grammy";
 *
 * updateId({ update: { update_id: 901 } }); // 901
 * ```
 */
export function updateId(ctx: GrammyContextLike): number | undefined {
  return ctx.update?.update_id;
}
