import { describe, it } from "node:test";
import assert, { AssertionError } from "node:assert/strict";
import { BotError, type Context, GrammyError } from "grammy";
import { z } from "zod";
import { Node, Nodes } from "../mod.ts";
import { privateChatUserId, updateId } from "../integrations/grammy.ts";
import { MemoryStore } from "./mod.ts";
import { apiErrors, createTestBot } from "./grammy.ts";

type Shared = { count: number };

class Counter extends Node<Shared, Context, number, { n: number }> {
  static override schema = z.object({ n: z.number() });
  override async onEnter(_user: number, _shared: Shared) {}
  async onEvent(_user: number, update: Context): Promise<Counter> {
    await update.reply(`n=${this.data.n} you said ${update.msg?.text}`);
    return new Counter({ n: this.data.n + 1 });
  }
}

function counterBot() {
  const tg = createTestBot();
  const nodes = new Nodes<Shared, Context, number>({
    store: new MemoryStore(),
    nodes: { counter: Counter },
    start: () => new Counter({ n: 0 }),
    shared: { count: 0 },
    userId: privateChatUserId,
    eventId: updateId,
  });
  // registered first: answers in any state, the node never sees it
  tg.bot.command("help", (ctx) => ctx.reply("Help text"));
  tg.bot.on("message", nodes.route);
  return { tg, nodes };
}

describe("createTestBot", () => {
  it("answers sendMessage with increasing message ids and records it", async () => {
    const tg = createTestBot();
    const first = await tg.bot.api.sendMessage(5, "one");
    const second = await tg.bot.api.sendMessage(5, "two");
    assert.equal(second.message_id, first.message_id + 1);
    assert.equal(first.text, "one");
    assert.equal(first.chat.id, 5);
    assert.deepEqual(
      tg.outbox.take().map(({ to, text, method }) => ({ to, text, method })),
      [
        { to: 5, text: "one", method: "sendMessage" },
        { to: 5, text: "two", method: "sendMessage" },
      ],
    );
  });

  it("records sends and edits as replies, callback answers and chat actions as calls", async () => {
    const tg = createTestBot();
    const sent = await tg.bot.api.sendMessage(5, "menu");
    const edited = await tg.bot.api.editMessageText(5, sent.message_id, "new");
    assert.ok(edited !== true && edited.message_id === sent.message_id);
    assert.equal(
      await tg.bot.api.answerCallbackQuery("1", { text: "ok" }),
      true,
    );
    assert.equal(await tg.bot.api.sendChatAction(5, "typing"), true);
    assert.deepEqual(tg.calls.map((c) => c.method), [
      "sendMessage",
      "editMessageText",
      "answerCallbackQuery",
      "sendChatAction",
    ]);
    assert.deepEqual(tg.outbox.take().map((m) => m.text), ["menu", "new"]);
    assert.deepEqual(
      tg.outbox.takeCalls().map(({ method, text }) => ({ method, text })),
      [
        { method: "answerCallbackQuery", text: "ok" },
        { method: "sendChatAction", text: undefined },
      ],
    );
  });

  it("records every call in calls; in outbox, replies apart from other calls, reads in neither", async () => {
    const tg = createTestBot();
    tg.failNext("sendMessage");
    await assert.rejects(tg.bot.api.sendMessage(5, "lost"), GrammyError);
    await tg.bot.api.getChat(5);
    await tg.bot.api.setMyCommands([{ command: "help", description: "Help" }]);
    await tg.bot.api.deleteWebhook();
    await tg.bot.api.deleteMessage(5, 1);
    await tg.bot.api.answerCallbackQuery("7");
    await tg.bot.api.copyMessage(6, 5, 1, { caption: "copied" });
    assert.deepEqual(
      tg.calls.map((c) => [c.method, c.failed?.error_code]),
      [
        ["sendMessage", 403],
        ["getChat", undefined],
        ["setMyCommands", undefined],
        ["deleteWebhook", undefined],
        ["deleteMessage", undefined],
        ["answerCallbackQuery", undefined],
        ["copyMessage", undefined],
      ],
    );
    assert.deepEqual(
      tg.outbox.take().map(({ to, text, method }) => ({ to, text, method })),
      [{ to: 6, text: "copied", method: "copyMessage" }],
    );
    assert.deepEqual(tg.outbox.takeCalls().map((c) => [c.method, c.to]), [
      ["setMyCommands", undefined],
      ["deleteWebhook", undefined],
      ["deleteMessage", 5],
      ["answerCallbackQuery", undefined],
    ]);
  });

  it("makes chosen calls fail as Telegram would", async () => {
    const tg = createTestBot();
    tg.failNext("sendMessage", apiErrors.blocked);
    tg.failNext("sendMessage", apiErrors.tooManyRequests(7));
    await assert.rejects(
      tg.bot.api.sendMessage(5, "x"),
      (e: unknown) => e instanceof GrammyError && e.error_code === 403,
    );
    await assert.rejects(
      tg.bot.api.sendMessage(5, "x"),
      (e: unknown) =>
        e instanceof GrammyError && e.parameters.retry_after === 7,
    );
    await tg.bot.api.sendMessage(5, "works again");
    assert.deepEqual(tg.outbox.take().map((m) => m.text), ["works again"]);
  });

  it("builds text, command, callback query and contact updates", async () => {
    const tg = createTestBot();
    const seen: string[] = [];
    tg.bot.command("start", (ctx) => void seen.push(`start ${ctx.match}`));
    tg.bot.callbackQuery(
      /^buy:/,
      (ctx) => void seen.push(ctx.callbackQuery.data),
    );
    tg.bot.on(
      "message:contact",
      (ctx) => void seen.push(ctx.msg.contact.phone_number),
    );
    tg.bot.on(
      "message:text",
      (ctx) => void seen.push(`${ctx.from.first_name}: ${ctx.msg.text}`),
    );
    const ann = tg.user(1, { first_name: "Ann", username: "ann" });
    await tg.bot.handleUpdate(tg.update.command(ann, "start", "ref42"));
    await tg.bot.handleUpdate(tg.update.callbackQuery(ann, "buy:1"));
    await tg.bot.handleUpdate(tg.update.contact(ann, "+100"));
    await tg.bot.handleUpdate(tg.update.text(tg.user(1), "hi"));
    assert.deepEqual(seen, ["start ref42", "buy:1", "+100", "Ann: hi"]);
  });
});

describe("grammY with Nodes", () => {
  it("installs nodes.route as middleware and simulates through handleUpdate", async () => {
    const { tg, nodes } = counterBot();
    await tg.simulator(nodes).simulate(3, [
      { event: "hi", node: "counter", replies: [], data: { n: 0 } },
      { event: "a", replies: ["n=0 you said a"], data: { n: 1 } },
      { event: "/help", replies: ["Help text"], data: { n: 1 } },
      {
        event: "b",
        replies: [{ to: 3, text: "n=1 you said b" }],
        data: { n: 2 },
      },
    ]);
  });

  it("lets a failing API call reach the caller as a BotError, the state as it was", async () => {
    const { tg, nodes } = counterBot();
    const sim = tg.simulator(nodes);
    await sim.simulate(4, ["hi", { event: "a", data: { n: 1 } }]);
    tg.failNext("sendMessage");
    await sim.simulate(4, [{
      event: "b",
      throws: (e) =>
        e instanceof BotError && e.error instanceof GrammyError &&
        e.error.error_code === 403,
      replies: [],
      data: { n: 1 },
    }]);
    await sim.simulate(4, [{
      event: "c",
      replies: ["n=1 you said c"],
      data: { n: 2 },
    }]);
  });

  it("matches a step's throws against the error inside grammY's BotError", async () => {
    const { tg, nodes } = counterBot();
    const sim = tg.simulator(nodes);
    await sim.simulate(4, ["hi"]);
    tg.failNext("sendMessage");
    const transcript = await sim.simulate(4, [
      { event: "a", throws: GrammyError, data: { n: 0 } },
    ]);
    assert.ok(transcript.steps[0]!.error instanceof BotError, "as thrown");
    tg.failNext("sendMessage");
    await sim.simulate(4, [{ event: "b", throws: BotError }]); // or the wrapper
    tg.failNext("sendMessage");
    await assert.rejects(
      sim.simulate(4, [{ event: "c", throws: TypeError }]),
      (error: unknown) => {
        assert.ok(error instanceof AssertionError);
        assert.match(
          error.message,
          /^Step 1 \(user 4, event "c"\) failed\nthrew BotError: .* around GrammyError: .*403.*, which is not the expected error/,
        );
        return true;
      },
    );
  });

  it("handles an update delivered twice, or twice at once, only once", async () => {
    const { tg, nodes } = counterBot();
    const ann = tg.user(4);
    await tg.bot.handleUpdate(tg.update.text(ann, "hi"));
    const update = tg.update.text(ann, "once");
    await tg.bot.handleUpdate(update);
    await tg.bot.handleUpdate(structuredClone(update)); // a webhook retry
    const twice = tg.update.text(ann, "twice");
    await Promise.all([
      tg.bot.handleUpdate(twice),
      tg.bot.handleUpdate(structuredClone(twice)),
    ]);
    assert.deepEqual(tg.outbox.take().map((m) => m.text), [
      "n=0 you said once",
      "n=1 you said twice",
    ]);
    assert.deepEqual((await nodes.user(4).node())?.data, { n: 2 });
  });

  it("ignores updates from groups with privateChatUserId", async () => {
    const { tg, nodes } = counterBot();
    const update = tg.update.text(tg.user(9), "in a group");
    (update.message as { chat: unknown }).chat = {
      id: -5,
      type: "group",
      title: "G",
    };
    await tg.bot.handleUpdate(update);
    assert.equal(await nodes.user(9).node(), undefined);
  });
});
