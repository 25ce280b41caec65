// The grammY entry: the middleware form of Nodes, with a real grammY Bot.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BotError, type Context } from "grammy";
import type { Update } from "grammy/types";
import { Node, Nodes } from "../mod.ts";
import { MemoryStore } from "../testing/mod.ts";
import { createTestBot, type TestBot } from "../testing/grammy.ts";
import {
  nodesMiddleware,
  privateChatUserId,
  updateId,
  userId,
} from "./grammy.ts";

class Echo extends Node<null, Context, number, { n: number }> {
  async onEvent(_user: number, update: Context): Promise<Echo> {
    if (update.msg?.text === "fail") throw new Error("handler failed");
    await update.reply(`node: ${update.msg?.text}`);
    return new Echo({ n: this.data.n + 1 });
  }
}

function echoNodes() {
  return new Nodes<null, Context, number>({
    store: new MemoryStore(),
    nodes: { echo: Echo },
    start: () => new Echo({ n: 0 }),
    shared: null,
    userId: privateChatUserId,
    eventId: updateId,
  });
}

/** A bot with the nodes' middleware, then a handler that records what reaches it. */
function setup() {
  const tg = createTestBot();
  const nodes = echoNodes();
  const later: string[] = [];
  tg.bot.on("message", nodesMiddleware(nodes));
  tg.bot.on("message", (ctx) => void later.push(ctx.msg.text ?? ""));
  return { tg, nodes, later };
}

/** A text message from `user` in a group chat. */
function groupText(tg: TestBot, user: number, text: string): Update {
  const update = tg.update.text(tg.user(user), text);
  return {
    ...update,
    message: {
      ...update.message!,
      chat: { id: -100, type: "group", title: "Group" },
    },
  };
}

describe("nodesMiddleware", () => {
  it("passes a group message on to the handlers registered after it", async () => {
    const { tg, nodes, later } = setup();
    await tg.bot.handleUpdate(groupText(tg, 1, "in the group"));
    assert.deepEqual(later, ["in the group"]);
    assert.equal(await nodes.user(1).node(), undefined, "nodes untouched");
  });

  it("ends the chain at a private message the nodes handled", async () => {
    const { tg, nodes, later } = setup();
    await tg.bot.handleUpdate(tg.update.text(tg.user(1), "hi"));
    await tg.bot.handleUpdate(tg.update.text(tg.user(1), "again"));
    assert.deepEqual(later, []);
    assert.deepEqual((await nodes.user(1).node())?.data, { n: 1 });
    assert.deepEqual(tg.outbox.take().map((m) => m.text), ["node: again"]);
  });

  it("ends the chain at a redelivered update too", async () => {
    const { tg, nodes, later } = setup();
    const update = tg.update.text(tg.user(1), "hi");
    await tg.bot.handleUpdate(update);
    await tg.bot.handleUpdate(update); // Telegram delivers it again
    assert.deepEqual(later, []);
    assert.deepEqual((await nodes.user(1).node())?.data, { n: 0 });
  });

  it("lets a handler's error reach handleUpdate in a BotError, next not called", async () => {
    const { tg, nodes, later } = setup();
    const caught: unknown[] = [];
    tg.bot.catch((error) => void caught.push(error)); // bot.start() only
    await tg.bot.handleUpdate(tg.update.text(tg.user(1), "hi"));
    await assert.rejects(
      tg.bot.handleUpdate(tg.update.text(tg.user(1), "fail")),
      (error: unknown) =>
        error instanceof BotError && error.error instanceof Error &&
        error.error.message === "handler failed",
    );
    assert.deepEqual(later, []);
    assert.deepEqual(caught, [], "bot.catch does not run for handleUpdate");
    assert.deepEqual((await nodes.user(1).node())?.data, { n: 0 });
  });

  it("sends every kind of update to the nodes under bot.use", async () => {
    const tg = createTestBot();
    const seen: number[] = [];
    const nodes = new Nodes<null, Context, number>({
      store: new MemoryStore(),
      nodes: { echo: Echo },
      start: (ctx) => {
        seen.push(ctx.update.update_id);
        return new Echo({ n: 0 });
      },
      shared: null,
      userId,
    });
    const later: string[] = [];
    tg.bot.use(nodesMiddleware(nodes));
    tg.bot.use(() => void later.push("later"));
    const press = tg.update.callbackQuery(tg.user(2), "buy:1");
    await tg.bot.handleUpdate(press);
    assert.deepEqual(seen, [press.update_id]);
    // an update without a user is not ours: it goes on
    await tg.bot.handleUpdate({
      update_id: press.update_id + 1_000_000,
      channel_post: {
        message_id: 1,
        date: 1_700_000_000,
        chat: { id: -200, type: "channel", title: "News" },
        text: "post",
      },
    });
    assert.deepEqual(later, ["later"]);
  });
});
