// The menu bot: a real @grammyjs/menu sent from onEnter through ctx, presses
// answered once, pass() and ctx.nodes, through a real grammY Bot.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BotError } from "grammy";
import { Menu } from "@grammyjs/menu";
import type { Message } from "grammy/types";
import { Nodes } from "../mod.ts";
import { MemoryStore } from "../testing/mod.ts";
import { createTestBot, type TestBot } from "../testing/grammy.ts";
import { nodesMiddleware, userId } from "../integrations/grammy.ts";
import {
  installMenuBot,
  type MenuContext,
  Ordering,
  type Shared,
} from "./menu_bot.ts";

const ANN = 1;

function setup() {
  const tg = createTestBot<MenuContext>();
  const nodes = installMenuBot(tg.bot, new MemoryStore());
  const say = (text: string) =>
    tg.bot.handleUpdate(tg.update.text(tg.user(ANN), text));
  return { tg, nodes, say };
}

/** The bot's last message to Ann with a menu, and its buttons by text. */
function menuOf(tg: TestBot<MenuContext>): {
  message: Message;
  button: (text: string) => string;
} {
  const message = tg.messages(ANN).findLast((m) => m.reply_markup);
  assert.ok(message, "a message with a menu");
  return {
    message,
    button: (text) => {
      const button = message.reply_markup!.inline_keyboard.flat()
        .find((b) => b.text === text);
      assert.ok(button && "callback_data" in button, `a button "${text}"`);
      return button.callback_data!;
    },
  };
}

describe("examples/menu_bot.ts", () => {
  it("sends the menu from onEnter through ctx, and each press moves the node", async () => {
    const { tg, nodes, say } = setup();
    await say("hi"); // a new user: Idle
    await say("/order");
    assert.deepEqual(tg.outbox.take().map((m) => m.text), [
      "Send /order to order food",
      "Cart: empty",
    ]);
    for (const item of ["Pizza", "Salad"]) {
      const { message, button } = menuOf(tg);
      await tg.bot.handleUpdate(tg.press(message, button(item)));
    }
    assert.deepEqual((await nodes.user(ANN).node())?.data, {
      items: ["pizza", "salad"],
    });
    // the menu message was edited in place, its menu rendered again
    assert.deepEqual(
      tg.outbox.take().map((m) => [m.method, m.text]),
      [["editMessageText", "Cart: pizza"], [
        "editMessageText",
        "Cart: pizza, salad",
      ]],
    );
    const { message, button } = menuOf(tg);
    assert.equal(message.text, "Cart: pizza, salad");
    await tg.bot.handleUpdate(tg.press(message, button("Order")));
    assert.deepEqual(tg.outbox.take().map((m) => m.text), [
      "Ordered: pizza, salad",
      "Send /order to order food",
    ]);
    // every press answered after its transition, each exactly once
    assert.deepEqual(tg.unansweredCallbackQueries(), []);
    assert.deepEqual(
      tg.calls.filter((c) => c.method === "answerCallbackQuery")
        .map((c) => c.failed),
      [undefined, undefined, undefined],
    );
    tg.outbox.takeCalls();
  });

  it("a menu sent through bot.api from onEnter fails as in production, and the user stays", async () => {
    // what a node looked like when onEnter had no update: shared.api only
    class ThroughApi extends Ordering {
      override async onEnter(user: number, shared: Shared) {
        await shared.api.sendMessage(user, "Cart", {
          reply_markup: new Menu<MenuContext>("order"),
        });
      }
    }
    const tg = createTestBot<MenuContext>();
    tg.bot.use(new Menu<MenuContext>("order").text("Pizza", () => {}));
    const nodes = new Nodes<Shared, MenuContext, number>({
      store: new MemoryStore(),
      nodes: { ordering: ThroughApi },
      start: () => new ThroughApi([]),
      shared: { api: tg.bot.api },
      userId,
    });
    tg.bot.use(nodesMiddleware(nodes));
    await assert.rejects(
      tg.bot.handleUpdate(tg.update.text(tg.user(ANN), "/order")),
      (error: unknown) =>
        error instanceof BotError &&
        /Cannot send menu 'order'.*through bot\.api\?/.test(
          String((error.error as Error).message),
        ),
    );
    assert.equal(await nodes.user(ANN).node(), undefined, "nothing written");
  });

  it("passes text it does not handle on, and tells the fallback why in ctx.nodes", async () => {
    const { tg, nodes, say } = setup();
    await say("hi");
    await say("/order");
    tg.outbox.take();
    await say("two pizzas please"); // Ordering passes it on
    const group = tg.chat({ id: -5, type: "group", title: "Lunch" });
    await tg.bot.handleUpdate(
      tg.update.text(tg.user(ANN), "/order", { chat: group }),
    );
    assert.deepEqual(tg.outbox.take().map((m) => [m.to, m.text]), [
      [ANN, "Use the buttons, or send /order"],
      [-5, "I only take orders in private chats"],
    ]);
    // passed: the user stayed, nothing entered again
    assert.deepEqual((await nodes.user(ANN).node())?.data, { items: [] });
  });

  it("enters without an update from to(): onEnter writes through shared.api, without a menu", async () => {
    const { tg, nodes } = setup();
    await nodes.user(ANN).to(new Ordering(["pizza"]));
    assert.deepEqual(tg.outbox.take().map((m) => m.text), [
      "Cart: pizza. Send /order for the menu",
    ]);
  });
});
