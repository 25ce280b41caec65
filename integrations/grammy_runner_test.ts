// What order botnodes keeps under grammY's runner (`run()`, concurrent) with
// and without `sequentialize`, and under `bot.start()`, driven through the
// test kit's getUpdates. A middleware before the nodes takes longer for the
// earlier updates (microtask turns, not timers), as an async lookup would.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Context } from "grammy";
import { run, sequentialize } from "@grammyjs/runner";
import { Node, Nodes } from "../mod.ts";
import { MemoryStore } from "../testing/mod.ts";
import { createTestBot } from "../testing/grammy.ts";
import { nodesMiddleware, privateChatUserId, updateId } from "./grammy.ts";

const TEXTS = ["a", "b", "c", "d", "e", "f", "g", "h"];

type Shared = { active: number; most: number };

/** Keeps every text it gets, in the order it got them. */
class Log extends Node<Shared, Context, number, { texts: string[] }> {
  async onEvent(_user: number, ctx: Context, shared: Shared): Promise<Log> {
    shared.active++;
    shared.most = Math.max(shared.most, shared.active);
    await Promise.resolve(); // a handler that awaits something
    shared.active--;
    return new Log({ texts: [...this.data.texts, ctx.msg?.text ?? "?"] });
  }
}

/**
 * A bot whose nodes log one user's texts, with `before` installed first;
 * `handled` resolves when all of TEXTS went through the whole stack.
 */
function setup(before: (bot: ReturnType<typeof createTestBot>["bot"]) => void) {
  const tg = createTestBot();
  const shared: Shared = { active: 0, most: 0 };
  const nodes = new Nodes<Shared, Context, number>({
    store: new MemoryStore(),
    nodes: { log: Log },
    // the first event enters the start node: it is the first text logged
    start: (ctx) => new Log({ texts: [ctx.msg?.text ?? "?"] }),
    shared,
    userId: privateChatUserId,
    eventId: updateId,
  });
  let done = 0;
  let finish!: () => void;
  const handled = new Promise<void>((resolve) => (finish = resolve));
  tg.bot.use(async (_ctx, next) => {
    await next();
    if (++done === TEXTS.length) finish();
  });
  before(tg.bot);
  // an async middleware before the nodes: earlier updates take longer
  tg.bot.use(async (ctx, next) => {
    const turns = (TEXTS.length - TEXTS.indexOf(ctx.msg?.text ?? "")) * 20;
    for (let i = 0; i < turns; i++) await null;
    await next();
  });
  tg.bot.on("message", nodesMiddleware(nodes));
  tg.deliver(...TEXTS.map((text) => tg.update.text(tg.user(1), text)));
  const logged = async (): Promise<string[]> => {
    const node = await nodes.user(1).node();
    assert.ok(node instanceof Log);
    return node.data.texts;
  };
  return { tg, shared, handled, logged };
}

describe("order of one user's updates under grammY", () => {
  it("run() without sequentialize: one at a time and none lost, but not in Telegram's order", async () => {
    const { tg, shared, handled, logged } = setup(() => {});
    const runner = run(tg.bot);
    await handled;
    await runner.stop();
    const texts = await logged();
    assert.deepEqual([...texts].sort(), TEXTS, "each applied once");
    assert.equal(shared.most, 1, "never two at a time");
    // the updates reach the nodes in the order the middleware before them
    // lets them go: "h" became the user's first event, "a" their last
    assert.deepEqual(texts, [...TEXTS].reverse());
  });

  it("run() with sequentialize by the nodes' key first: Telegram's order", async () => {
    const { tg, shared, handled, logged } = setup((bot) =>
      bot.use(
        sequentialize((ctx: Context) => privateChatUserId(ctx)?.toString()),
      )
    );
    const runner = run(tg.bot);
    await handled;
    await runner.stop();
    assert.deepEqual(await logged(), TEXTS);
    assert.equal(shared.most, 1);
  });

  it("bot.start() (one update at a time): Telegram's order", async () => {
    const { tg, handled, logged } = setup(() => {});
    const polling = tg.bot.start();
    await handled;
    await tg.confirmed();
    await tg.bot.stop();
    await polling;
    assert.deepEqual(await logged(), TEXTS);
  });
});
