// The grammY entry: the middleware form of Nodes, with a real grammY Bot.
import { describe, it } from "node:test";
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";
import {
  type Api,
  BotError,
  type Context,
  Context as GrammyContext,
} from "grammy";
import { Menu, type MenuFlavor } from "@grammyjs/menu";
import type { Update } from "grammy/types";
import { Node, Nodes } from "../mod.ts";
import { MemoryStore } from "../testing/mod.ts";
import { apiErrors, createTestBot, type TestBot } from "../testing/grammy.ts";
import {
  chatId,
  chatUserId,
  type NodesFlavor,
  nodesMiddleware,
  type NodesMiddlewareOptions,
  type NodesOutcome,
  pass,
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
    // a vote in a poll: its user, whom ctx.from leaves out, is the user
    const vote = {
      update_id: press.update_id + 2_000_000,
      poll_answer: {
        poll_id: "5000000000000000001",
        user: tg.user(3),
        option_ids: [0],
        option_persistent_ids: ["0"],
      },
    };
    await tg.bot.handleUpdate(vote);
    assert.deepEqual(seen, [press.update_id, vote.update_id]);
    // a vote of a chat (an anonymous admin) has no user: it goes on
    await tg.bot.handleUpdate({
      update_id: press.update_id + 3_000_000,
      poll_answer: {
        poll_id: "5000000000000000001",
        voter_chat: { id: -300, type: "supergroup", title: "Club" },
        option_ids: [1],
        option_persistent_ids: ["1"],
      },
    });
    assert.deepEqual(later, ["later", "later"]);
  });
});

/** A node for button presses: "+" counts, "ask" answers itself, "pass" passes. */
class Tally extends Node<{ api: Api }, Context & NodesFlavor, number, {
  n: number;
}> {
  static entered = 0;
  override onEnter() {
    Tally.entered++;
  }
  async onEvent(
    _user: number,
    ctx: Context,
    shared: { api: Api },
  ): Promise<Tally> {
    const data = ctx.callbackQuery?.data ?? ctx.msg?.text;
    if (data === "pass") return pass();
    if (data === "fail") throw new Error("handler failed");
    if (data === "ask") await ctx.answerCallbackQuery({ text: "Counted" });
    if (data === "api") {
      await shared.api.answerCallbackQuery(ctx.callbackQuery!.id);
    }
    return new Tally({ n: this.data.n + 1 });
  }
}

function tallyBot(options: NodesMiddlewareOptions = {}) {
  const tg = createTestBot<Context & NodesFlavor>();
  const nodes = new Nodes<{ api: Api }, Context & NodesFlavor, number>({
    store: new MemoryStore(),
    nodes: { tally: Tally },
    start: (ctx) =>
      ctx.msg?.text === "/start" || ctx.callbackQuery
        ? new Tally({ n: 0 })
        : pass(),
    shared: { api: tg.bot.api },
    userId: privateChatUserId,
    eventId: updateId,
  });
  const outcomes: (NodesOutcome | undefined)[] = [];
  // a middleware around the nodes reads what they did, after next()
  tg.bot.use(async (ctx, next) => {
    await next();
    outcomes.push(ctx.nodes);
  });
  tg.bot.on(
    ["message:text", "callback_query:data"],
    nodesMiddleware(nodes, options),
  );
  const later: string[] = [];
  tg.bot.use((ctx) => {
    later.push(ctx.callbackQuery?.data ?? ctx.msg?.text ?? "?");
  });
  const press = (data: string) =>
    tg.bot.handleUpdate(tg.update.callbackQuery(tg.user(1), data));
  const say = (text: string) =>
    tg.bot.handleUpdate(tg.update.text(tg.user(1), text));
  return { tg, nodes, outcomes, later, press, say };
}

describe("@botnodes/core/grammy", () => {
  it("exports exactly its API, and imports nothing at run time", async () => {
    const entry = await import("./grammy.ts");
    assert.deepEqual(Object.keys(entry).sort(), [
      "chatId",
      "chatUserId",
      "nodesMiddleware",
      "pass",
      "privateChatUserId",
      "updateId",
      "userId",
    ]);
    const source = readFileSync(new URL("./grammy.ts", import.meta.url), "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "");
    assert.doesNotMatch(source, /^\s*import\s/m);
  });
});

describe("nodesMiddleware: filter queries, pass() and ctx.nodes", () => {
  it("sees only the update kinds of grammY's filter; the others go on", async () => {
    const { tg, nodes, later, say } = tallyBot();
    await say("/start");
    const sent = tg.update.text(tg.user(1), "typo");
    await tg.bot.handleUpdate(sent);
    await tg.bot.handleUpdate(tg.update.editedText(sent.message!, "fixed"));
    await tg.bot.handleUpdate(tg.update.contact(tg.user(1), "+100"));
    assert.deepEqual(later, ["fixed", "?"]); // the edit and the contact
    assert.deepEqual((await nodes.user(1).node())?.data, { n: 1 });
  });

  it("pass() from onEvent: the user stays, nothing entered or written, later handlers get it", async () => {
    const { nodes, later, outcomes, say } = tallyBot();
    await say("/start");
    const entered = Tally.entered;
    const seen: unknown[] = [];
    nodes.observe((t) => void seen.push([t.outcome, t.from, t.to]));
    await say("pass");
    await say("pass"); // a second time: passed again, not a duplicate
    assert.deepEqual(later, ["pass", "pass"]);
    assert.equal(Tally.entered, entered, "no onEnter");
    assert.deepEqual((await nodes.user(1).node())?.data, { n: 0 });
    assert.deepEqual(outcomes.slice(1), [
      { handled: false, reason: "passed" },
      { handled: false, reason: "passed" },
    ]);
    // listeners (and so OpenTelemetry and the map) see no failure
    assert.deepEqual(seen, [
      ["passed", "tally", undefined],
      ["passed", "tally", undefined],
    ]);
  });

  it("pass() from start: a new user gets no state until the update they start with", async () => {
    const { nodes, later, outcomes, say } = tallyBot();
    await say("hello");
    assert.equal(await nodes.user(1).peek(), undefined);
    await say("/start");
    assert.deepEqual(later, ["hello"]);
    assert.deepEqual(outcomes, [
      { handled: false, reason: "passed" },
      { handled: true, userId: 1, key: "tally" },
    ]);
  });

  it("pass() without the middleware is an error saying so, and nothing is written", async () => {
    const { nodes } = tallyBot();
    const tg = createTestBot<Context & NodesFlavor>();
    tg.bot.on("message", nodes.route);
    await assert.rejects(
      tg.bot.handleUpdate(tg.update.text(tg.user(1), "hello")),
      (error: unknown) =>
        error instanceof BotError &&
        /pass\(\) works under nodesMiddleware/.test(
          (error.error as Error).message,
        ),
    );
    assert.equal(await nodes.user(1).peek(), undefined);
  });

  it("ctx.nodes tells a group message (not-ours) from a duplicate", async () => {
    const { tg, outcomes, say } = tallyBot();
    await say("/start");
    const update = tg.update.text(tg.user(1), "+");
    await tg.bot.handleUpdate(update);
    await tg.bot.handleUpdate(update);
    await tg.bot.handleUpdate(groupText(tg, 1, "hi all"));
    assert.deepEqual(outcomes.slice(1), [
      { handled: true, userId: 1, key: "tally" },
      { handled: false, reason: "duplicate", userId: 1 },
      { handled: false, reason: "not-ours" },
    ]);
  });
});

describe("nodesMiddleware: callback queries", () => {
  it("answers a press after its transition when the node did not", async () => {
    const { tg, nodes, press } = tallyBot();
    await press("+"); // a new user
    await press("+");
    assert.deepEqual(tg.unansweredCallbackQueries(), []);
    assert.deepEqual(
      tg.outbox.takeCalls().map((c) => [c.method, c.text]),
      [["answerCallbackQuery", undefined], [
        "answerCallbackQuery",
        undefined,
      ]],
    );
    assert.deepEqual((await nodes.user(1).node())?.data, { n: 1 });
  });

  it("does not answer again a press the node answered through ctx", async () => {
    const { tg, press } = tallyBot();
    await press("+");
    tg.outbox.takeCalls();
    await press("ask");
    assert.deepEqual(
      tg.calls.filter((c) => c.method === "answerCallbackQuery")
        .map((c) => [c.payload.text, c.failed]),
      [[undefined, undefined], ["Counted", undefined]],
    );
    tg.outbox.takeCalls();
  });

  it("leaves passed presses, failed transitions and autoAnswer: false unanswered", async () => {
    const { tg, press } = tallyBot();
    await press("+");
    await press("pass"); // the handler after the nodes forgets to answer
    await assert.rejects(press("fail"), BotError);
    assert.deepEqual(
      tg.unansweredCallbackQueries().map((q) => q.data),
      ["pass", "fail"],
    );
    tg.outbox.takeCalls();
    const off = tallyBot({ autoAnswer: false });
    await off.press("+");
    assert.deepEqual(off.tg.unansweredCallbackQueries().map((q) => q.data), [
      "+",
    ]);
  });

  it("ignores Telegram's 400 when the press was answered through bot.api or is too old", async () => {
    const warned: [string, unknown][] = [];
    const { tg, nodes, press } = tallyBot({
      logger: { warn: (message, error) => void warned.push([message, error]) },
    });
    await press("+");
    await press("api"); // answered through shared.api: the middleware cannot see it
    tg.failNext("answerCallbackQuery", apiErrors.queryTooOld);
    await press("+"); // waited too long for a busy user
    assert.deepEqual((await nodes.user(1).node())?.data, { n: 2 });
    assert.deepEqual(
      tg.calls.filter((c) => c.method === "answerCallbackQuery")
        .map((c) => c.failed?.error_code),
      [undefined, undefined, 400, 400],
    );
    assert.equal(warned.length, 0);
    // any other failure of the answer is reported, and the update succeeds:
    // the transition is committed (a resend would be skipped as a duplicate)
    tg.failNext("answerCallbackQuery", apiErrors.tooManyRequests(1));
    await press("+");
    assert.deepEqual((await nodes.user(1).node())?.data, { n: 3 });
    assert.equal(warned.length, 1);
    const [message, error] = warned[0]!;
    assert.match(String(message), /Cannot answer the button press/);
    assert.equal((error as { error_code?: number }).error_code, 429);
    tg.outbox.takeCalls();
  });

  it("with @grammyjs/menu answering too, the second answer's 400 is ignored", async () => {
    const tg = createTestBot<Context & NodesFlavor>();
    const menu = new Menu<Context & NodesFlavor>("m").text(
      { text: "+", payload: "+" },
      (_ctx, next) => next(),
    );
    tg.bot.use(menu);
    const nodes = new Nodes<null, Context & NodesFlavor, number>({
      store: new MemoryStore(),
      nodes: { menu: MenuNode },
      start: () => new MenuNode({ n: 0 }),
      shared: null,
      userId,
    });
    MenuNode.menu = menu;
    // the filter's check lets the menu's answer go out before the nodes run
    tg.bot.on(["message", "callback_query:data"], nodesMiddleware(nodes));
    await tg.bot.handleUpdate(tg.update.text(tg.user(1), "hi"));
    const [message] = tg.messages(1);
    const data = message!.reply_markup!.inline_keyboard[0]![0]!;
    assert.ok("callback_data" in data);
    await tg.bot.handleUpdate(tg.press(message!, data.callback_data!));
    assert.deepEqual((await nodes.user(1).node())?.data, { n: 1 });
    assert.deepEqual(tg.unansweredCallbackQueries(), []);
    assert.deepEqual(
      tg.calls.filter((c) => c.method === "answerCallbackQuery")
        .map((c) => c.failed?.error_code),
      [undefined, 400], // the menu's, then the middleware's, refused
    );
    tg.outbox.take();
    tg.outbox.takeCalls();
  });
});

/** Shows a menu from onEnter, through the update's ctx. */
class MenuNode
  extends Node<null, Context & NodesFlavor, number, { n: number }> {
  static menu: Menu<Context & NodesFlavor>;
  override async onEnter(_user: number, _shared: null, ctx?: Context) {
    if (!ctx?.callbackQuery) {
      await ctx?.reply(`n=${this.data.n}`, { reply_markup: MenuNode.menu });
    }
  }
  onEvent(_user: number, ctx: Context & MenuFlavor): MenuNode {
    return new MenuNode({ n: this.data.n + (ctx.match === "+" ? 1 : 0) });
  }
}

/** Echo, for string keys. */
class KeyedEcho extends Node<null, Context, string, { n: number }> {
  override async onEnter(_key: string, _shared: null, ctx?: Context) {
    if (this.data.n === 0) await ctx?.reply("welcome");
  }
  async onEvent(_key: string, ctx: Context): Promise<KeyedEcho> {
    await ctx.reply(`n=${this.data.n}`);
    return new KeyedEcho({ n: this.data.n + 1 });
  }
}

describe("userId helpers for groups", () => {
  it("chatUserId: one state per member of a group, private chats as userId", async () => {
    const tg = createTestBot();
    const nodes = new Nodes<null, Context, string>({
      store: new MemoryStore(),
      nodes: { echo: KeyedEcho },
      start: () => new KeyedEcho({ n: 0 }),
      shared: null,
      userId: chatUserId,
    });
    tg.bot.on("message", nodesMiddleware(nodes));
    const group = tg.chat({ id: -100, type: "group", title: "Lunch" });
    for (const [user, times] of [[1, 3], [2, 1]] as const) {
      for (let i = 0; i < times; i++) {
        await tg.bot.handleUpdate(
          tg.update.text(tg.user(user), "x", { chat: group }),
        );
      }
    }
    await tg.bot.handleUpdate(tg.update.text(tg.user(1), "dm"));
    assert.deepEqual((await nodes.user("-100:1").node())?.data, { n: 2 });
    assert.deepEqual((await nodes.user("-100:2").node())?.data, { n: 0 });
    assert.deepEqual((await nodes.user("1").node())?.data, { n: 0 });
    // onEnter and onEvent reply through ctx: to the chat the update came from
    assert.deepEqual(tg.outbox.take().map((m) => [m.to, m.text]), [
      [-100, "welcome"],
      [-100, "n=0"],
      [-100, "n=1"],
      [-100, "welcome"],
      [1, "welcome"],
    ]);
  });

  it("chatId: one state per chat, shared by its members (session()'s default key)", async () => {
    const tg = createTestBot();
    const nodes = new Nodes<null, Context, number>({
      store: new MemoryStore(),
      nodes: { echo: Echo },
      start: () => new Echo({ n: 0 }),
      shared: null,
      userId: chatId,
    });
    tg.bot.on("message", nodesMiddleware(nodes));
    const group = tg.chat({ id: -100, type: "group", title: "Lunch" });
    for (const user of [1, 2, 3]) {
      await tg.bot.handleUpdate(
        tg.update.text(tg.user(user), "x", { chat: group }),
      );
    }
    assert.deepEqual((await nodes.user(-100).node())?.data, { n: 2 });
    tg.outbox.take();
  });
});

describe("outside attacker h: whose update it is", () => {
  const me = {
    id: 1,
    is_bot: true,
    first_name: "Bot",
    username: "bot",
  } as ConstructorParameters<typeof GrammyContext>[2];
  const ctx = (update: Record<string, unknown>) =>
    new GrammyContext(
      { update_id: 1, ...update } as Update,
      {} as Api,
      me,
    );
  const person = (id: number) => ({ id, is_bot: false, first_name: "P" });
  const helpers = { userId, privateChatUserId, chatUserId, chatId };
  const keys = (update: Record<string, unknown>) =>
    Object.fromEntries(
      Object.entries(helpers).map((
        [name, helper],
      ) => [name, helper(ctx(update))]),
    );

  it("keys a business account's chats apart from its owner's and customers' chats with the bot", () => {
    const customer = { id: 8, type: "private", first_name: "A" };
    const fromOwner = {
      message_id: 5,
      date: 0,
      business_connection_id: "conn",
      chat: customer,
      from: person(9),
      text: "hello A",
    };
    assert.deepEqual(keys({ business_message: fromOwner }), {
      userId: 9,
      privateChatUserId: undefined,
      chatUserId: "8:9",
      chatId: 8,
    });
    assert.deepEqual(
      keys({ business_message: { ...fromOwner, from: person(8) } }),
      { userId: 8, privateChatUserId: undefined, chatUserId: "8:8", chatId: 8 },
    );
    // the owner's and the customer's own chats with the bot
    for (const id of [8, 9]) {
      assert.deepEqual(
        keys({
          message: {
            message_id: 1,
            date: 0,
            chat: { id, type: "private", first_name: "P" },
            from: person(id),
            text: "hi",
          },
        }),
        {
          userId: id,
          privateChatUserId: id,
          chatUserId: String(id),
          chatId: id,
        },
      );
    }
    // the connection's own update: its owner's chat with the bot
    assert.deepEqual(
      keys({
        business_connection: {
          id: "conn",
          user: person(9),
          user_chat_id: 9,
          date: 0,
          is_enabled: true,
        },
      }),
      { userId: 9, privateChatUserId: undefined, chatUserId: "9", chatId: 9 },
    );
  });

  it("keys a chat the bot was summoned to as a guest apart from chats with the bot", () => {
    const chat = { id: 20, type: "private", first_name: "B" };
    const guest = {
      message_id: 3,
      date: 0,
      chat,
      from: person(10),
      text: "@bot what is 2 + 2?",
    };
    assert.deepEqual(keys({ guest_message: guest }), {
      userId: 10,
      privateChatUserId: undefined,
      chatUserId: "20:10",
      chatId: 20,
    });
    // a button under the bot's answer there is pressed in that chat too
    const answer = {
      message_id: 4,
      date: 0,
      chat,
      from: { id: 1, is_bot: true, first_name: "Bot" },
      guest_bot_caller_user: person(10),
      text: "4",
    };
    assert.deepEqual(
      keys({
        callback_query: {
          id: "q",
          from: person(10),
          chat_instance: "i",
          message: answer,
          data: "more",
        },
      }),
      {
        userId: 10,
        privateChatUserId: undefined,
        chatUserId: "20:10",
        chatId: 20,
      },
    );
  });

  it("keys no person for a poll vote cast by a chat, the voter's own otherwise", () => {
    const vote = { poll_id: "p", option_ids: [0] };
    assert.equal(
      userId(ctx({ poll_answer: { ...vote, user: person(5) } })),
      5,
    );
    const channel = { id: -300, type: "channel", title: "C" };
    const placeholder = { id: 136817688, is_bot: true, first_name: "Channel" };
    assert.equal(
      userId(
        ctx({
          poll_answer: { ...vote, voter_chat: channel, user: placeholder },
        }),
      ),
      undefined,
    );
  });

  it("keys no person for a message sent on behalf of a chat, but the user who presses its button", () => {
    const group = { id: -100, type: "supergroup", title: "G" };
    const anonymous = {
      message_id: 1,
      date: 0,
      chat: group,
      from: { id: 1087968824, is_bot: true, first_name: "Group" },
      sender_chat: group,
      text: "as the group",
    };
    assert.deepEqual(keys({ message: anonymous }), {
      userId: undefined,
      privateChatUserId: undefined,
      chatUserId: undefined,
      chatId: -100,
    });
    const forwarded = {
      ...anonymous,
      from: { id: 777000, is_bot: false, first_name: "Telegram" },
      sender_chat: { id: -200, type: "channel", title: "C" },
      is_automatic_forward: true,
    };
    assert.equal(userId(ctx({ message: forwarded })), undefined);
    assert.deepEqual(
      keys({
        callback_query: {
          id: "q",
          from: person(5),
          chat_instance: "i",
          message: anonymous,
          data: "yes",
        },
      }),
      {
        userId: 5,
        privateChatUserId: undefined,
        chatUserId: "-100:5",
        chatId: -100,
      },
    );
  });
});
