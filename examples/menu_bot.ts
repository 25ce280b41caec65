// A grammY bot whose nodes show a real @grammyjs/menu, sent from onEnter
// through the update's ctx: a menu (like i18n's ctx.t, forum topics and
// business connections) lives on the context, and bot.api cannot send it
// ("Cannot send menu ... through bot.api?").
//
//   BOT_TOKEN=... deno run -A examples/menu_bot.ts   (state in memory)
//
// What it shows:
// - onEnter(userId, shared, ctx): ctx is the update that brought the user,
//   undefined for nodes.user(id).to(), reset() and timeouts (then only
//   shared.api, which is bot.api, can write: no menu);
// - the menu's buttons pass the press on (`next()`) to the nodes, which
//   decide the transition from `ctx.match` (the button's payload), and
//   nodesMiddleware answers the press after the transition;
// - pass(): a node that does not handle an update lets it go on to the
//   handlers after the nodes, which read why in ctx.nodes.
import process from "node:process";
import { type Api, Bot, type Context } from "grammy";
import { Menu } from "@grammyjs/menu";
import { z } from "zod";
import { Node, Nodes, type StateStore } from "../mod.ts";
import {
  type NodesFlavor,
  nodesMiddleware,
  pass,
  privateChatUserId,
  updateId,
} from "../integrations/grammy.ts";

/** The bot's context: grammY's, with `ctx.nodes`. */
export type MenuContext = Context & NodesFlavor;
/** Your services: `bot.api` for the entries without an update. */
export type Shared = { readonly api: Api };
type Next = Node<Shared, MenuContext, number>;

/**
 * The order menu. Its buttons hand the press on to the nodes, which answer
 * it once the transition is committed (so the menu does not answer too: it
 * would answer in parallel, before the nodes could see it).
 */
export const orderMenu: Menu<MenuContext> = new Menu<MenuContext>("order", {
  autoAnswer: false,
})
  .text({ text: "Pizza", payload: "pizza" }, (_ctx, next) => next())
  .text({ text: "Salad", payload: "salad" }, (_ctx, next) => next())
  .row()
  .text({ text: "Order", payload: "order" }, (_ctx, next) => next());

/** Waiting for `/order`. */
export class Idle
  extends Node<Shared, MenuContext, number, Record<string, never>> {
  static override schema = z.object({});
  constructor() {
    super({});
  }
  override async onEnter(user: number, shared: Shared, ctx?: MenuContext) {
    const text = "Send /order to order food";
    if (ctx) await ctx.reply(text);
    else await shared.api.sendMessage(user, text);
  }
  onEvent(_user: number, ctx: MenuContext): Next {
    if (ctx.hasCommand("order")) return new Ordering([]);
    return pass(); // not ours to answer: the handlers after the nodes do
  }
}

/** Choosing with the menu. */
export class Ordering
  extends Node<Shared, MenuContext, number, { items: string[] }> {
  static override schema = z.object({ items: z.array(z.string()) });
  constructor(items: string[]) {
    super({ items });
  }
  override async onEnter(user: number, shared: Shared, ctx?: MenuContext) {
    const text = `Cart: ${this.data.items.join(", ") || "empty"}`;
    if (ctx === undefined) {
      // moved here by nodes.user(id).to(): no update, so no menu
      await shared.api.sendMessage(user, `${text}. Send /order for the menu`);
    } else if (ctx.callbackQuery) {
      await ctx.editMessageText(text, { reply_markup: orderMenu });
    } else {
      await ctx.reply(text, { reply_markup: orderMenu });
    }
  }
  async onEvent(_user: number, ctx: MenuContext): Promise<Next> {
    if (ctx.hasCommand("order")) return new Ordering(this.data.items);
    const choice = ctx.callbackQuery ? ctx.match : undefined;
    if (choice === "pizza" || choice === "salad") {
      return new Ordering([...this.data.items, choice]);
    }
    if (choice === "order") {
      await ctx.reply(`Ordered: ${this.data.items.join(", ") || "nothing"}`);
      return new Idle();
    }
    return pass(); // text while choosing: the handlers after the nodes
  }
}

/**
 * Installs the menu and the nodes on `bot`.
 *
 * @param bot The bot.
 * @param store Where state lives.
 * @returns The nodes.
 */
export function installMenuBot(
  bot: Bot<MenuContext>,
  store: StateStore,
): Nodes<Shared, MenuContext, number> {
  const nodes = new Nodes<Shared, MenuContext, number>({
    store,
    nodes: { idle: Idle, ordering: Ordering },
    start: () => new Idle(),
    shared: { api: bot.api },
    userId: privateChatUserId,
    eventId: updateId,
  });
  bot.use(orderMenu); // before the nodes: renders menus, reads the presses
  bot.on(["message:text", "callback_query:data"], nodesMiddleware(nodes));
  bot.on("message", (ctx) =>
    ctx.reply(
      ctx.nodes?.reason === "passed"
        ? "Use the buttons, or send /order"
        : "I only take orders in private chats",
    ));
  return nodes;
}

if (import.meta.main) {
  const { MemoryStore } = await import("../testing/mod.ts");
  const token = process.env.BOT_TOKEN;
  if (!token) throw new Error("Set BOT_TOKEN");
  const bot = new Bot<MenuContext>(token);
  installMenuBot(bot, new MemoryStore());
  bot.catch((error) => console.error("Update failed:", error.error));
  await bot.start();
}
