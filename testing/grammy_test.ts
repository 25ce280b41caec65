import { describe, it } from "node:test";
import assert, { AssertionError } from "node:assert/strict";
import {
  Bot,
  BotError,
  Context,
  GrammyError,
  InlineKeyboard,
  InputFile,
} from "grammy";
import type { Message, Update } from "grammy/types";
import { Menu } from "@grammyjs/menu";
import { z } from "zod";
import { Node, Nodes, type NodesOptions } from "../mod.ts";
import {
  chatId,
  chatUserId,
  nodesMiddleware,
  privateChatUserId,
  updateId,
} from "../integrations/grammy.ts";
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

/** The counter's nodes, on a store of their own. */
function counterNodes(
  options: Partial<NodesOptions<Shared, Context, number>> = {},
) {
  return new Nodes<Shared, Context, number>({
    store: new MemoryStore(),
    nodes: { counter: Counter },
    start: () => new Counter({ n: 0 }),
    shared: { count: 0 },
    userId: privateChatUserId,
    ...options,
  });
}

function counterBot() {
  const tg = createTestBot();
  const nodes = counterNodes({ eventId: updateId });
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
    const press = tg.update.callbackQuery(tg.user(5), "x");
    await tg.bot.handleUpdate(press); // no handler: not answered yet
    const sent = await tg.bot.api.sendMessage(5, "menu");
    const edited = await tg.bot.api.editMessageText(5, sent.message_id, "new");
    assert.ok(edited !== true && edited.message_id === sent.message_id);
    assert.equal(
      await tg.bot.api.answerCallbackQuery(press.callback_query!.id, {
        text: "ok",
      }),
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
    const said = tg.update.text(tg.user(5), "hi");
    const press = tg.update.callbackQuery(tg.user(5), "x");
    await tg.bot.handleUpdate(said); // no handler: no call
    await tg.bot.handleUpdate(press);
    tg.failNext("sendMessage");
    await assert.rejects(tg.bot.api.sendMessage(5, "lost"), GrammyError);
    await tg.bot.api.getChat(5);
    await tg.bot.api.setMyCommands([{ command: "help", description: "Help" }]);
    await tg.bot.api.deleteWebhook();
    await tg.bot.api.deleteMessage(5, said.message!.message_id);
    await tg.bot.api.answerCallbackQuery(press.callback_query!.id);
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

describe("issue 15: the grammY kit is as strict as Telegram", () => {
  it("4. checks a step whose event is an Update against the update's sender", async () => {
    const { tg, nodes } = counterBot();
    const transcript = await tg.simulator(nodes).simulate(1, [
      { event: tg.update.text(tg.user(3), "hi"), node: "counter", replies: [] },
      {
        event: tg.update.text(tg.user(3), "a"),
        replies: ["n=0 you said a"],
        data: { n: 1 },
      },
    ]);
    assert.deepEqual(transcript.steps.map((s) => s.user), [3, 3]);
  });

  it("7. runs the bot's own API transformers before answering", async () => {
    const bot = new Bot("1:token", { botInfo: createTestBot().bot.botInfo });
    bot.api.config.use((prev, method, payload, signal) =>
      prev(method, { ...payload, parse_mode: "HTML" }, signal)
    );
    const tg = createTestBot({ bot });
    await tg.bot.api.sendMessage(5, "<b>hi</b>");
    assert.equal(tg.calls[0]!.payload.parse_mode, "HTML");
    assert.equal(
      (tg.outbox.take()[0]!.payload as { parse_mode?: string }).parse_mode,
      "HTML",
    );
  });

  it("6. records what goes over the wire: a keyboard changed later does not change the record", async () => {
    const tg = createTestBot();
    const keyboard = new InlineKeyboard().text("Yes", "yes");
    await tg.bot.api.sendMessage(5, "menu", { reply_markup: keyboard });
    keyboard.text("No", "no");
    assert.deepEqual(tg.outbox.take()[0]!.payload, {
      chat_id: 5,
      text: "menu",
      reply_markup: {
        inline_keyboard: [[{ text: "Yes", callback_data: "yes" }]],
      },
    });
  });

  it("9. shows an update step without its update_id, whatever ran before", async () => {
    const { tg, nodes } = counterBot();
    tg.update.text(tg.user(8), "bumps the process-wide update id");
    const transcript = await tg.simulator(nodes).simulate(3, [
      "hi",
      tg.update.text(tg.user(3), "a"),
      tg.update.callbackQuery(tg.user(3), "yes"),
    ]);
    assert.equal(
      transcript.text(),
      [
        "1. 3 > hi",
        '   = counter {"n":0}',
        "2. 3 > a",
        "   < n=0 you said a",
        '   = counter {"n":1}',
        "3. 3 > (callback_query) yes",
        '   = counter {"n":1}',
        "",
      ].join("\n"),
    );
  });

  it("12. answers modelled methods with Telegram's shapes and fails loudly on the others", async () => {
    const tg = createTestBot();
    tg.user(5, { first_name: "Ann", username: "ann" });
    const chat = await tg.bot.api.getChat(5);
    assert.equal(chat.type, "private");
    assert.equal(chat.id, 5);
    const member = await tg.bot.api.getChatMember(5, 5);
    assert.equal(member.status, "member");
    assert.equal(member.user.first_name, "Ann");
    assert.deepEqual(await tg.bot.api.getMyCommands(), []);
    const file = await tg.bot.api.getFile("abc");
    assert.equal(file.file_id, "abc");
    const album = await tg.bot.api.sendMediaGroup(5, [
      { type: "photo", media: "a", caption: "one" },
      { type: "photo", media: "b" },
    ]);
    assert.equal(album.length, 2);
    assert.equal(album[1]!.message_id, album[0]!.message_id + 1);
    const posted = await tg.bot.api.sendMessage("@news", "hello");
    assert.ok(Number.isSafeInteger(posted.chat.id) && posted.chat.id < 0);
    assert.equal(posted.chat.type, "channel");
    tg.chat({ id: -5, type: "group", title: "Lunch" });
    assert.equal((await tg.bot.api.sendMessage(-5, "hi")).chat.type, "group");
    await assert.rejects(
      tg.bot.api.getStarTransactions(),
      /does not model the Bot API method "getStarTransactions": give its result with tg\.answerNext/,
    );
    tg.answerNext("getStarTransactions", { transactions: [] });
    assert.deepEqual(await tg.bot.api.getStarTransactions(), {
      transactions: [],
    });
    assert.throws(() => tg.failNext("sendMesage"), TypeError);
    tg.outbox.take();
    tg.failNext("sendMessage");
    assert.throws(() => tg.reset(), /Unused answers .*sendMessage \(1\)/);
    await tg.bot.api.sendMessage(5, "the failure did not leak");
  });

  it("13. builds what Telegram sends: commands end at a line break; groups, topics, channels, edits, inline queries, presses", async () => {
    const tg = createTestBot();
    const seen: string[] = [];
    tg.bot.command("start", (ctx) => ctx.reply(`started ${ctx.chat.type}`));
    tg.bot.on("channel_post", (ctx) => void seen.push(`post ${ctx.msg.text}`));
    tg.bot.on(
      "edited_message",
      (ctx) => void seen.push(`edit ${ctx.msg.text}`),
    );
    tg.bot.on(
      "inline_query",
      (ctx) => void seen.push(`inline ${ctx.inlineQuery.query}`),
    );
    tg.bot.callbackQuery(
      "yes",
      (ctx) => ctx.answerCallbackQuery("pressed yes"),
    );
    tg.bot.on(
      "message:text",
      (ctx) =>
        ctx.reply(`topic ${ctx.msg.message_thread_id}`, {
          reply_markup: new InlineKeyboard().text("Yes", "yes"),
        }),
    );
    const ann = tg.user(1);
    const sim = tg.simulator({
      route: () => Promise.resolve(),
      user: () => ({ peek: () => Promise.resolve(undefined) }),
      keyOf: () => undefined,
    });
    await sim.simulate(1, [{
      event: "/start\nhello",
      replies: ["started private"],
    }]);
    const group = tg.chat({ id: -5, type: "group", title: "Lunch" });
    await tg.bot.handleUpdate(
      tg.update.command(ann, "start", "", { chat: group }),
    );
    const forum = tg.chat({
      id: -1_000_000_000_007,
      type: "supergroup",
      title: "F",
      is_forum: true,
    });
    await tg.bot.handleUpdate(
      tg.update.text(ann, "in a topic", { chat: forum, threadId: 4 }),
    );
    const channel = tg.chat({
      id: -1_000_000_000_008,
      type: "channel",
      title: "C",
    });
    await tg.bot.handleUpdate(tg.update.channelPost(channel, "news"));
    const typed = tg.update.text(ann, "typo") as Update & { message: Message };
    await tg.bot.handleUpdate(tg.update.editedText(typed.message, "fixed"));
    await tg.bot.handleUpdate(tg.update.inlineQuery(ann, "pizza"));
    assert.deepEqual(
      tg.outbox.take().map(({ to, text }) => [to, text]),
      [[-5, "started group"], [forum.id, "topic 4"]],
    );
    assert.deepEqual(seen, ["post news", "edit fixed", "inline pizza"]);
    const [menu] = tg.messages(forum.id);
    await tg.bot.handleUpdate(tg.press(menu!, "yes", ann));
    assert.deepEqual(tg.outbox.takeCalls().map((c) => [c.method, c.text]), [
      ["answerCallbackQuery", "pressed yes"],
    ]);
    assert.throws(
      () => tg.press(menu!, "no", ann),
      /has no button with that data/,
    );
  });

  it("14. a callback answer is a call, not a reply; reactions are recorded as calls", async () => {
    const tg = createTestBot();
    tg.bot.callbackQuery("yes", async (ctx) => {
      await ctx.answerCallbackQuery();
      await ctx.react("👍");
      await ctx.reply("pressed yes");
    });
    const sim = tg.simulator({
      route: () => Promise.resolve(),
      user: () => ({ peek: () => Promise.resolve(undefined) }),
      keyOf: () => undefined,
    });
    await sim.simulate(2, [{
      event: tg.update.callbackQuery(tg.user(2), "yes"),
      replies: ["pressed yes"],
      calls: ["answerCallbackQuery", "setMessageReaction"],
    }]);
  });

  it("15. drives a polling bot through getUpdates, several updates of one user at once", async () => {
    const { tg, nodes } = counterBot();
    const ann = tg.user(6);
    tg.deliver(tg.update.text(ann, "hi"), tg.update.text(ann, "a"));
    const polling = tg.bot.start();
    await tg.confirmed();
    assert.deepEqual(tg.outbox.take().map((m) => m.text), ["n=0 you said a"]);
    await tg.bot.stop();
    await polling;
    // as @grammyjs/runner does: a batch handled concurrently
    tg.deliver(
      tg.update.text(ann, "b"),
      tg.update.text(ann, "c"),
      tg.update.text(ann, "d"),
    );
    const batch = await tg.bot.api.getUpdates({ offset: 0 });
    assert.equal(batch.length, 3);
    await Promise.all(batch.map((update) => tg.bot.handleUpdate(update)));
    assert.deepEqual(tg.outbox.take().map((m) => m.text), [
      "n=1 you said b",
      "n=2 you said c",
      "n=3 you said d",
    ]);
    assert.deepEqual((await nodes.user(6).node())?.data, { n: 4 });
  });
});

describe("issue 16: callback queries and menus in the kit", () => {
  it("lists the presses left unanswered, and refuses a second answer as Telegram does", async () => {
    const tg = createTestBot();
    tg.bot.callbackQuery("once", (ctx) => ctx.answerCallbackQuery());
    tg.bot.callbackQuery("twice", async (ctx) => {
      await ctx.answerCallbackQuery();
      await ctx.answerCallbackQuery();
    });
    tg.bot.callbackQuery("never", () => {});
    await tg.bot.handleUpdate(tg.update.callbackQuery(tg.user(1), "once"));
    await tg.bot.handleUpdate(tg.update.callbackQuery(tg.user(1), "never"));
    await assert.rejects(
      tg.bot.handleUpdate(tg.update.callbackQuery(tg.user(1), "twice")),
      (error: unknown) =>
        error instanceof BotError && error.error instanceof GrammyError &&
        error.error.error_code === 400,
    );
    assert.deepEqual(
      tg.unansweredCallbackQueries().map((q) => q.data),
      ["never"],
    );
    // presses that came through getUpdates count too
    tg.deliver(tg.update.callbackQuery(tg.user(1), "never"));
    const polling = tg.bot.start();
    await tg.confirmed();
    await tg.bot.stop();
    await polling;
    assert.deepEqual(
      tg.unansweredCallbackQueries().map((q) => q.data),
      ["never", "never"],
    );
    tg.outbox.takeCalls();
    tg.reset();
    assert.deepEqual(tg.unansweredCallbackQueries(), []);
  });

  it("fails a menu sent through bot.api as production does, and renders one sent through ctx", async () => {
    const tg = createTestBot();
    // the menu answers its presses itself (autoAnswer): a handler that
    // answered too would fail here, as it would on Telegram
    const menu = new Menu("m").text("A", () => {});
    tg.bot.use(menu);
    tg.bot.command("menu", (ctx) => ctx.reply("Menu", { reply_markup: menu }));
    await assert.rejects(
      tg.bot.api.sendMessage(1, "Menu", { reply_markup: menu }),
      /Cannot send menu 'm'.*through bot\.api\?/,
    );
    await tg.bot.handleUpdate(tg.update.command(tg.user(1), "menu"));
    const [sent] = tg.outbox.take();
    assert.equal(sent?.text, "Menu");
    const [message] = tg.messages(1);
    const button = message!.reply_markup!.inline_keyboard[0]![0]!;
    assert.ok("callback_data" in button);
    await tg.bot.handleUpdate(tg.press(message!, button.callback_data!));
    assert.deepEqual(tg.unansweredCallbackQueries(), []);
    tg.outbox.takeCalls();
  });
});

describe("outside attacker b: the grammY kit", () => {
  class Lobby
    extends Node<null, Context, number | string, { players: number }> {
    static override schema = z.object({ players: z.number() });
    async onEvent(_chat: number | string, ctx: Context): Promise<Lobby | Game> {
      if (ctx.msg?.text === "/play") {
        await ctx.reply("Game on");
        return new Game({ round: 1 });
      }
      return new Lobby({ players: this.data.players + 1 });
    }
  }
  class Game extends Node<null, Context, number | string, { round: number }> {
    static override schema = z.object({ round: z.number() });
    onEvent(): Game {
      return new Game({ round: this.data.round + 1 });
    }
  }
  function groupBot(key: (ctx: Context) => number | string | undefined) {
    const tg = createTestBot();
    const nodes = new Nodes<null, Context, number | string>({
      store: new MemoryStore(),
      nodes: { lobby: Lobby, game: Game },
      start: () => new Lobby({ players: 0 }),
      shared: null,
      userId: key,
    });
    tg.bot.on("message", nodesMiddleware(nodes));
    const group = tg.chat({ id: -42, type: "group", title: "Game night" });
    return { tg, nodes, group, sim: tg.simulator(nodes) };
  }

  it("1. with chatId, a step checks the group's state, not the sender's", async () => {
    const { tg, group, sim } = groupBot(chatId);
    const ann = tg.user(1);
    await assert.rejects(
      sim.simulate(1, [
        { event: tg.update.text(ann, "join", { chat: group }), node: null },
      ]),
      (error: unknown) =>
        error instanceof AssertionError &&
        /state of user -42\) failed\nnode: expected null, got "lobby"/.test(
          error.message,
        ),
    );
    const transcript = await sim.simulate(1, [
      {
        event: tg.update.text(ann, "/play", { chat: group }),
        node: "game",
        data: { round: 1 },
        replies: [{ to: -42, text: "Game on" }],
      },
    ]);
    assert.match(transcript.text(), /= \(user -42\) game \{"round":1\}\n$/);
  });

  it("1. with chatUserId, a step checks the member's state in that chat", async () => {
    const { tg, group, sim, nodes } = groupBot(chatUserId);
    const ann = tg.user(1);
    await sim.simulate(1, [
      { event: tg.update.text(ann, "join", { chat: group }), node: "lobby" },
      {
        event: tg.update.text(ann, "/play", { chat: group }),
        node: "game",
        replies: [{ to: -42, text: "Game on" }],
      },
      // the same user in private: another state
      { event: "hi", node: "lobby", data: { players: 0 } },
    ]);
    assert.ok((await nodes.user("-42:1").node()) instanceof Game);
  });

  it("5. refuses with Telegram's 400 what Telegram refuses", async () => {
    const tg = createTestBot();
    const refused = (description: string) => (error: unknown) =>
      error instanceof GrammyError && error.error_code === 400 &&
      error.description === `Bad Request: ${description}`;
    await assert.rejects(
      tg.bot.api.sendMessage(1, ""),
      refused("message text is empty"),
    );
    await assert.rejects(
      tg.bot.api.sendMessage(1, " \n"),
      refused("message text is empty"),
    );
    await assert.rejects(
      tg.bot.api.sendMessage(1, "x".repeat(4097)),
      refused("message is too long"),
    );
    await tg.bot.api.sendMessage(1, "x".repeat(4096));
    await assert.rejects(
      tg.bot.api.sendPhoto(1, "file-id", { caption: "x".repeat(1025) }),
      refused("message caption is too long"),
    );
    const captioned = await tg.bot.api.sendPhoto(1, "file-id", {
      caption: "x".repeat(1024),
    });
    await assert.rejects(
      tg.bot.api.editMessageCaption(1, captioned.message_id, {
        caption: "y".repeat(1025),
      }),
      refused("message caption is too long"),
    );
    const keyboard = (data: string) => ({
      reply_markup: new InlineKeyboard().text("b", data),
    });
    await assert.rejects(
      tg.bot.api.sendMessage(1, "b", keyboard("é".repeat(33))), // 66 bytes
      refused("BUTTON_DATA_INVALID"),
    );
    await assert.rejects(
      tg.bot.api.sendMessage(1, "b", keyboard("")), // Telegram wants 1-64
      refused("BUTTON_DATA_INVALID"),
    );
    const sent = await tg.bot.api.sendMessage(
      1,
      "same",
      keyboard("x".repeat(64)),
    );
    await assert.rejects(
      tg.bot.api.editMessageText(
        1,
        sent.message_id,
        "same",
        keyboard("x".repeat(64)),
      ),
      refused(
        "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
      ),
    );
    await assert.rejects(
      tg.bot.api.editMessageReplyMarkup(
        1,
        sent.message_id,
        keyboard("x".repeat(64)),
      ),
      refused(
        "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
      ),
    );
    // a new keyboard, or a new text, is a change
    await tg.bot.api.editMessageText(1, sent.message_id, "same", keyboard("y"));
    await tg.bot.api.editMessageText(
      1,
      sent.message_id,
      "other",
      keyboard("y"),
    );
    await assert.rejects(
      tg.bot.api.editMessageText(1, 987_654, "x"),
      refused("message to edit not found"),
    );
    // a text has no caption to edit, a photo no text
    await assert.rejects(
      tg.bot.api.editMessageCaption(1, sent.message_id, { caption: "c" }),
      refused("there is no caption in the message to edit"),
    );
    const photo = await tg.bot.api.sendPhoto(1, "file-id");
    await assert.rejects(
      tg.bot.api.editMessageText(1, photo.message_id, "t"),
      refused("there is no text in the message to edit"),
    );
    await tg.bot.api.editMessageCaption(1, photo.message_id, { caption: "c" });
    const sticker = await tg.bot.api.sendSticker(1, "sticker-id");
    await assert.rejects(
      tg.bot.api.editMessageCaption(1, sticker.message_id, { caption: "c" }),
      refused("there is no caption in the message to edit"),
    );
    // a copy's content is not kept: its edits are not refused
    const copy = await tg.bot.api.copyMessage(1, 1, sent.message_id);
    await tg.bot.api.editMessageText(1, copy.message_id, "copied, edited");
    await assert.rejects(
      tg.bot.api.editMessageText(2, sent.message_id, "x"),
      refused("message to edit not found"),
    );
    await assert.rejects(
      tg.bot.api.answerCallbackQuery("never-received"),
      refused(
        "query is too old and response timeout expired or query ID is invalid",
      ),
    );
    await assert.rejects(
      tg.bot.api.deleteMessage(1, 987_654),
      refused("message to delete not found"),
    );
    // the bot's own message, and one it received, can be deleted once
    const said = tg.update.text(tg.user(1), "delete me");
    await tg.bot.handleUpdate(said);
    await tg.bot.api.deleteMessage(1, said.message!.message_id);
    await tg.bot.api.deleteMessage(1, sent.message_id);
    await assert.rejects(
      tg.bot.api.deleteMessage(1, sent.message_id),
      refused("message to delete not found"),
    );
    await assert.rejects(
      tg.bot.api.editMessageText(1, sent.message_id, "gone"),
      refused("message to edit not found"),
    );
    assert.deepEqual(
      tg.calls.filter((call) => call.failed !== undefined).length,
      18,
    );
    assert.deepEqual(tg.outbox.take().map((m) => m.text), [
      "x".repeat(4096),
      "x".repeat(1024),
      "same",
      "same",
      "other",
      "", // the photo
      "c",
      "", // the sticker
      "", // the copy
      "copied, edited",
    ]);
    tg.outbox.takeCalls();
  });

  it("5. refuses markup Telegram cannot parse, before it looks at the chat, and limits the text it shows", async () => {
    const tg = createTestBot();
    const refused = (description: string) => (error: unknown) =>
      error instanceof GrammyError && error.error_code === 400 &&
      error.description === `Bad Request: ${description}`;
    const entities = (why: string) => refused(`can't parse entities: ${why}`);
    await assert.rejects(
      tg.bot.api.sendMessage(1, "Total: 10.50", { parse_mode: "MarkdownV2" }),
      entities(
        "Character '.' is reserved and must be escaped with the preceding '\\'",
      ),
    );
    // before the chat: an unknown chat with bad markup is a markup error
    await assert.rejects(
      tg.bot.api.sendMessage("not a chat", "*bold", {
        parse_mode: "MarkdownV2",
      }),
      entities("Can't find end of Bold entity at byte offset 0"),
    );
    await tg.bot.api.sendMessage(1, "*Total:* 10\\.50", {
      parse_mode: "MarkdownV2",
    });
    await assert.rejects(
      tg.bot.api.sendMessage(1, "a<br>b", { parse_mode: "HTML" }),
      entities('Unsupported start tag "br" at byte offset 1'),
    );
    await assert.rejects(
      tg.bot.api.sendMessage(1, "<b>a</i>", { parse_mode: "HTML" }),
      entities(
        'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"',
      ),
    );
    await assert.rejects(
      tg.bot.api.sendMessage(1, "a", { parse_mode: "Markdown2" as never }),
      refused("unsupported parse_mode"),
    );
    // the limits are on the text shown, without its markup
    await assert.rejects(
      tg.bot.api.sendMessage(1, "<b></b>", { parse_mode: "HTML" }),
      refused("message text is empty"),
    );
    await tg.bot.api.sendMessage(1, `<b>${"x".repeat(4096)}</b>`, {
      parse_mode: "HTML",
    });
    await assert.rejects(
      tg.bot.api.sendMessage(1, `<b>${"x".repeat(4097)}</b>`, {
        parse_mode: "HTML",
      }),
      refused("message is too long"),
    );
    // captions, an edit's text, an album's captions
    await assert.rejects(
      tg.bot.api.sendPhoto(1, "file-id", {
        caption: "(1)",
        parse_mode: "MarkdownV2",
      }),
      entities(
        "Character '(' is reserved and must be escaped with the preceding '\\'",
      ),
    );
    await assert.rejects(
      tg.bot.api.sendPhoto(1, "file-id", {
        caption: `<i>${"c".repeat(1025)}</i>`,
        parse_mode: "HTML",
      }),
      refused("message caption is too long"),
    );
    const sent = await tg.bot.api.sendMessage(1, "plain.");
    await assert.rejects(
      tg.bot.api.editMessageText(1, sent.message_id, "edited.", {
        parse_mode: "MarkdownV2",
      }),
      entities(
        "Character '.' is reserved and must be escaped with the preceding '\\'",
      ),
    );
    await assert.rejects(
      tg.bot.api.sendMediaGroup(1, [
        { type: "photo", media: "a", caption: "fine" },
        { type: "photo", media: "b", caption: "<x>", parse_mode: "HTML" },
      ]),
      entities('Unsupported start tag "x" at byte offset 0'),
    );
    // nothing refused was recorded as sent
    assert.deepEqual(tg.outbox.take().map((m) => m.text), [
      "*Total:* 10\\.50",
      `<b>${"x".repeat(4096)}</b>`,
      "plain.",
    ]);
  });

  it("5. counts a text as Telegram does: cleaned, trimmed, in characters; blank by Telegram's list; None and an empty text parse nothing", async () => {
    const tg = createTestBot();
    const refused = (description: string) => (error: unknown) =>
      error instanceof GrammyError && error.error_code === 400 &&
      error.description === `Bad Request: ${description}`;
    // what the server removes before it counts: a final line break, \r
    await tg.bot.api.sendMessage(1, "a".repeat(4096) + "\n");
    await tg.bot.api.sendMessage(1, "a\r\n".repeat(2048));
    await tg.bot.api.sendPhoto(1, "file-id", {
      caption: "c".repeat(1024) + "\n",
    });
    // characters, not UTF-16 units
    await tg.bot.api.sendMessage(1, "😀".repeat(4096));
    await assert.rejects(
      tg.bot.api.sendMessage(1, "😀".repeat(4097)),
      refused("message is too long"),
    );
    // blank for Telegram, not for String.prototype.trim
    for (const blank of ["\u2800", "\u200B", "\u0001 \u200E"]) {
      await assert.rejects(
        tg.bot.api.sendMessage(1, blank),
        refused("message text is empty"),
      );
    }
    await assert.rejects(
      tg.bot.api.sendMessage(1, "&#8203;", { parse_mode: "HTML" }),
      refused("message text is empty"),
    );
    // "None" parses nothing; an empty text is not parsed, whatever the mode
    await tg.bot.api.sendMessage(1, "1.5 (a)", { parse_mode: "None" as never });
    await tg.bot.api.sendPhoto(1, "file-id", {
      caption: "",
      parse_mode: "Markdown2" as never,
    });
    await assert.rejects(
      tg.bot.api.sendMessage(1, "", { parse_mode: "Markdown2" as never }),
      refused("message text is empty"),
    );
    // the same markup in another mode is another text
    const sent = await tg.bot.api.sendMessage(1, "<b>Done</b>");
    await tg.bot.api.editMessageText(1, sent.message_id, "<b>Done</b>", {
      parse_mode: "HTML",
    });
    await assert.rejects(
      tg.bot.api.editMessageText(1, sent.message_id, "<b>Done</b>", {
        parse_mode: "html" as never,
      }),
      refused(
        "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
      ),
    );
    tg.outbox.take();
  });
});

describe("outside attacker f: what the kit's sends answer", () => {
  it("answers a poll with its id, question and options, each poll an id of its own", async () => {
    const tg = createTestBot();
    const quiz = await tg.bot.api.sendPoll(1, "2 + 2?", [
      { text: "3" },
      { text: "4" },
    ], { type: "quiz", correct_option_ids: [1], is_anonymous: false });
    assert.deepEqual(
      { ...quiz.poll, id: typeof quiz.poll.id },
      {
        id: "string",
        question: "2 + 2?",
        options: [
          { persistent_id: "0", text: "3", voter_count: 0 },
          { persistent_id: "1", text: "4", voter_count: 0 },
        ],
        total_voter_count: 0,
        is_closed: false,
        is_anonymous: false,
        type: "quiz",
        allows_multiple_answers: false,
        allows_revoting: false,
        members_only: false,
        correct_option_ids: [1],
      },
    );
    const other = await tg.bot.api.sendPoll(
      1,
      "Lunch?",
      ["Yes", "No"] as never,
    );
    assert.notEqual(other.poll.id, quiz.poll.id);
    assert.deepEqual(other.poll.options.map((o) => o.text), ["Yes", "No"]);
    assert.equal(other.poll.is_anonymous, true);
  });

  it("answers a venue with its location, title and address, and a file with its kind's fields", async () => {
    const tg = createTestBot();
    const venue = await tg.bot.api.sendVenue(1, 52.5, 13.4, "Cafe", "Main St");
    assert.deepEqual(venue.venue, {
      location: { latitude: 52.5, longitude: 13.4 },
      title: "Cafe",
      address: "Main St",
    });
    assert.deepEqual(venue.location, { latitude: 52.5, longitude: 13.4 });
    const audio = await tg.bot.api.sendAudio(1, "audio-id");
    assert.equal(typeof audio.audio.duration, "number");
    const note = await tg.bot.api.sendVideoNote(1, "note-id");
    assert.equal(typeof note.video_note.length, "number");
    const sticker = await tg.bot.api.sendSticker(1, "sticker-id");
    assert.equal(sticker.sticker.type, "regular");
    const invoice = await tg.bot.api.sendInvoice(
      1,
      "Pizza",
      "Large",
      "order-1",
      "EUR",
      [{ label: "Pizza", amount: 900 }, { label: "Delivery", amount: 200 }],
    );
    assert.equal(invoice.invoice.total_amount, 1_100);
    assert.equal(invoice.invoice.title, "Pizza");
  });

  it("refuses a chat id that names no chat with Telegram's 400, not a TypeError", async () => {
    const tg = createTestBot();
    for (const chat of [0, "", "abc", 1.5, "5e3", "0x10", " 5 ", "-0"]) {
      await assert.rejects(
        tg.bot.api.sendMessage(chat as number, "hi"),
        (error: unknown) =>
          error instanceof GrammyError && error.error_code === 400 &&
          error.description === "Bad Request: chat not found",
        String(chat),
      );
    }
    await tg.bot.api.sendMessage("@news", "hi");
    await tg.bot.api.sendMessage("7", "hi");
    await tg.bot.api.sendMessage("-1001234567890", "hi");
  });
});

describe("outside attacker c: the grammY simulator", () => {
  type C = Context & { tenant?: string };
  class Desk extends Node<null, C, string, { n: number }> {
    override async onEnter(_user: string, _shared: null, ctx?: C) {
      await ctx?.reply(`desk ${this.data.n}`);
    }
    onEvent(_user: string, ctx: C): Desk {
      if (ctx.msg?.text === "bug") {
        // an engine-worded TypeError: each engine says it its own way
        (undefined as unknown as { foo: { bar: number } }).foo.bar;
      }
      return new Desk({ n: this.data.n + 1 });
    }
  }
  function tenantBot() {
    const tg = createTestBot<C>();
    const nodes = new Nodes<null, C, string>({
      store: new MemoryStore(),
      nodes: { desk: Desk },
      start: () => new Desk({ n: 0 }),
      shared: null,
      // keyed by what a middleware before the nodes set
      userId: (ctx) =>
        ctx.from ? `${ctx.tenant ?? "none"}:${ctx.from.id}` : undefined,
    });
    tg.bot.use((ctx, next) => {
      ctx.tenant = "acme";
      return next();
    });
    tg.bot.use(nodesMiddleware(nodes));
    return { tg, nodes };
  }

  it("checks the user the bot's middleware keyed the update by", async () => {
    const { tg, nodes } = tenantBot();
    const transcript = await tg.simulator(nodes).simulate(1, [
      { event: "hi", node: "desk", data: { n: 0 }, replies: ["desk 0"] },
      { event: "again", node: "desk", data: { n: 1 }, replies: ["desk 1"] },
    ]);
    assert.equal(transcript.steps[1]!.stateOf, "acme:1");
    assert.deepEqual((await nodes.user("acme:1").node())?.data, { n: 1 });
    await assert.rejects(
      tg.simulator(nodes).simulate(2, [{ event: "hi", node: null }]),
      (error: Error) =>
        error.message.startsWith(
          'Step 1 (user 2, event "hi", state of user acme:2) failed',
        ),
    );
  });

  it("renders an engine error inside grammY's BotError the same on every engine", async () => {
    const { tg, nodes } = tenantBot();
    const transcript = await tg.simulator(nodes).simulate(1, [
      { event: "hi" },
      { event: "bug", throws: TypeError },
    ]);
    assert.match(
      transcript.text(),
      /^ {3}! BotError: TypeError in middleware$/m,
    );
  });

  it("gives the bot its own context class back once every simulation on it is done", async () => {
    class Mine extends Context {}
    const bot = new Bot<Mine>("1:t", {
      botInfo: createTestBot().bot.botInfo,
      ContextConstructor: Mine,
    });
    const names: string[] = [];
    bot.use((ctx, next) => {
      assert.ok(ctx instanceof Mine);
      names.push(ctx.constructor.name);
      return next();
    });
    const nodes = new Nodes<null, Mine, number>({
      store: new MemoryStore(),
      nodes: { desk: Desk as never },
      start: () => new Desk({ n: 0 }) as never,
      shared: null,
      userId: (ctx) => ctx.from?.id,
    });
    bot.use(nodesMiddleware(nodes));
    // two test bots on one bot, simulating at once
    const [one, two] = [createTestBot({ bot }), createTestBot({ bot })];
    await Promise.all([
      one.simulator(nodes).simulate(1, [{ event: "hi", node: "desk" }]),
      two.simulator(nodes).simulate(2, [{ event: "hi", node: "desk" }]),
    ]);
    assert.equal(
      (bot as unknown as { ContextConstructor: unknown }).ContextConstructor,
      Mine,
    );
    assert.deepEqual(names, ["Mine", "Mine"]);
  });

  it("removes a message's inline keyboard when an edit gives none, as Telegram does", async () => {
    const tg = createTestBot();
    const sent = await tg.bot.api.sendMessage(1, "Order?", {
      reply_markup: new InlineKeyboard().text("Yes", "yes"),
    });
    await tg.bot.api.editMessageText(1, sent.message_id, "Ordered");
    const [now] = tg.messages(1);
    assert.equal(
      (now as { reply_markup?: unknown }).reply_markup,
      undefined,
    );
    assert.throws(() => tg.press(sent, "yes"), /has no button with that data/);
    // an edit with the same text, and still no keyboard, changes nothing
    await assert.rejects(
      tg.bot.api.editMessageText(1, sent.message_id, "Ordered"),
      /message is not modified/,
    );
  });
});

describe("outside attacker i: the test kit", () => {
  it("keeps a press answered when it is delivered again, as Telegram does", async () => {
    const tg = createTestBot();
    const seen = new Set<number>();
    tg.bot.callbackQuery("yes", async (ctx) => {
      // a bot that skips an update it handled (as Nodes with an eventId)
      if (seen.has(ctx.update.update_id)) return;
      seen.add(ctx.update.update_id);
      await ctx.answerCallbackQuery();
    });
    const press = tg.update.callbackQuery(tg.user(1), "yes");
    await tg.bot.handleUpdate(press);
    await tg.bot.handleUpdate(press); // a webhook retry
    assert.deepEqual(tg.unansweredCallbackQueries(), []);
    await assert.rejects(
      tg.bot.api.answerCallbackQuery(press.callback_query!.id),
      (error: unknown) =>
        error instanceof GrammyError && error.error_code === 400,
    );
  });

  it("knows BotError and InputFile of another copy of grammY by their shape", async () => {
    // what a bot on another copy of grammY (deno.land/x, a nested npm
    // install) hands the kit: classes of the same names and shape
    const Other = {
      BotError: class BotError extends Error {
        override name = "BotError";
        constructor(readonly error: unknown, readonly ctx: unknown) {
          super("in middleware");
        }
      },
      InputFile: class InputFile {
        constructor(readonly fileData: unknown, readonly filename?: string) {}
        toJSON(): never {
          throw new Error("InputFile instances must be sent via grammY");
        }
      },
    };
    class OtherBot extends Bot {
      override async handleUpdate(update: Update): Promise<void> {
        try {
          await super.handleUpdate(update);
        } catch (error) {
          throw new Other.BotError(
            error instanceof BotError ? error.error : error,
            undefined,
          );
        }
      }
    }
    const bot = new OtherBot("1:test", {
      botInfo: createTestBot().bot.botInfo,
    });
    const tg = createTestBot({ bot });
    const nodes = counterNodes();
    bot.hears("file", async (ctx) => {
      await ctx.replyWithDocument(
        new Other.InputFile(new Uint8Array([1]), "a.pdf") as never,
      );
    });
    bot.on("message", nodes.route);
    const sim = tg.simulator(nodes);
    await sim.simulate(4, ["hi"]);
    tg.failNext("sendMessage");
    await sim.simulate(4, [{ event: "a", throws: GrammyError }]);
    await tg.bot.handleUpdate(tg.update.text(tg.user(4), "file"));
    assert.deepEqual(tg.calls.at(-1)?.payload, {
      chat_id: 4,
      document: { InputFile: "a.pdf" },
    });
  });

  it("takes files uploaded as InputFile, recording each by its name", async () => {
    const tg = createTestBot();
    tg.user(5);
    const bytes = new Uint8Array([1, 2, 3]);
    const photo = await tg.bot.api.sendPhoto(5, new InputFile(bytes, "a.png"), {
      caption: "look",
    });
    assert.equal(photo.caption, "look");
    assert.ok(Array.isArray(photo.photo));
    tg.bot.on(
      "message",
      (ctx) => ctx.replyWithDocument(new InputFile(bytes, "menu.pdf")),
    );
    await tg.bot.handleUpdate(tg.update.text(tg.user(5), "menu"));
    assert.deepEqual(
      tg.calls.map((call) => [call.method, call.payload, call.failed]),
      [
        [
          "sendPhoto",
          { chat_id: 5, photo: { InputFile: "a.png" }, caption: "look" },
          undefined,
        ],
        [
          "sendDocument",
          { chat_id: 5, document: { InputFile: "menu.pdf" } },
          undefined,
        ],
      ],
    );
  });
});
