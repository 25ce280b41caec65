// A webhook whose answer is lost: grammY's webhookCallback gives up on a slow
// update (Telegram would see a timeout and send the update again) while the
// handler still runs. The resend reaches a second instance of the bot on the
// same store; whatever the order, the update changes the user's state once.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Context, webhookCallback } from "grammy";
import type { Update } from "grammy/types";
import { Node, Nodes, type StateStore } from "../mod.ts";
import { type Clock, systemClock } from "../store/mod.ts";
import { MemoryStore } from "../testing/mod.ts";
import { createTestBot } from "../testing/grammy.ts";
import { delegate } from "../test_support/delegate.ts";
import {
  type NodesFlavor,
  nodesMiddleware,
  privateChatUserId,
  updateId,
} from "./grammy.ts";

type Ctx = Context & NodesFlavor;

/** What the test controls: when a handler may go on, and which run fails. */
interface Gate {
  open: Promise<void>;
  failRun: number;
  runs: number;
}

class Counter extends Node<Gate, Ctx, number, { n: number }> {
  async onEvent(_user: number, ctx: Ctx, gate: Gate): Promise<Counter> {
    const run = ++gate.runs;
    await gate.open;
    if (run === gate.failRun) throw new Error("handler failed");
    await ctx.reply(`n = ${this.data.n + 1}`);
    return new Counter({ n: this.data.n + 1 });
  }
}

/** A clock that says when a store first waits for a busy user's lease. */
function watchedClock() {
  let waiting!: () => void;
  const waited = new Promise<void>((resolve) => waiting = resolve);
  const clock: Clock = {
    now: () => systemClock.now(),
    sleep: (ms) => {
      waiting();
      return systemClock.sleep(ms);
    },
  };
  return { clock, waited };
}

/**
 * One instance of the bot: its own Bot and Nodes, on the shared store (a
 * store object of its own, as in another process: `Nodes` on one store
 * object share one queue per user).
 */
function instance(store: StateStore, gate: Gate) {
  const tg = createTestBot<Ctx>();
  tg.user(5, { first_name: "Eve" });
  const nodes = new Nodes<Gate, Ctx, number>({
    store,
    nodes: { counter: Counter },
    start: () => new Counter({ n: 0 }),
    shared: gate,
    userId: privateChatUserId,
    eventId: updateId,
  });
  let outcome: NodesFlavor["nodes"];
  const errors: unknown[] = [];
  tg.bot.use(async (ctx, next) => {
    await next();
    outcome = ctx.nodes;
  });
  // As README advises for webhooks: errors end in the boundary, logged.
  tg.bot.errorBoundary((error) => void errors.push(error.error))
    .use(nodesMiddleware(nodes));
  return { tg, nodes, errors, outcome: () => outcome };
}

function request(update: Update): Request {
  return new Request("http://bot.test/", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(update),
  });
}

async function setup(failRun = 0) {
  const { clock, waited } = watchedClock();
  const store = new MemoryStore({ clock });
  let release!: () => void;
  const gate: Gate = {
    open: new Promise((resolve) => release = resolve),
    failRun: 0,
    runs: 0,
  };
  const first = instance(store, gate);
  const second = instance(delegate(store), gate);
  // The user enters the start node (n = 0) before the slow update.
  await first.tg.bot.handleUpdate(first.tg.update.text(first.tg.user(5), "a"));
  gate.runs = 0;
  gate.failRun = failRun;
  gate.open = new Promise((resolve) => release = resolve);
  first.tg.outbox.take();
  const slow = first.tg.update.text(first.tg.user(5), "b");
  // grammY answers the webhook with an error after 1 ms: Telegram will resend.
  const callback = webhookCallback(first.tg.bot, "std/http", {
    timeoutMilliseconds: 1,
    onTimeout: "throw",
  });
  await assert.rejects(callback(request(slow)), /timed out/);
  assert.equal(gate.runs, 1, "the first delivery's handler is running");
  // Telegram's resend reaches the second instance while the first still runs.
  const resend = second.tg.bot.handleUpdate(slow);
  await waited; // it waits for the user's lease
  return { store, gate, release, first, second, resend };
}

describe("a webhook that times out while its handler runs", () => {
  it("commits the update once: the resend waits, then finds it done", async () => {
    const { store, gate, release, first, second, resend } = await setup();
    release();
    await resend;
    assert.equal(gate.runs, 1, "the handler ran once");
    assert.equal(second.outcome()?.reason, "duplicate");
    assert.deepEqual(first.tg.outbox.take().map((m) => m.text), ["n = 1"]);
    assert.deepEqual(second.tg.outbox.take(), []);
    assert.deepEqual(await first.nodes.user(5).peek(), new Counter({ n: 1 }));
    assert.match(await store.get("5") ?? "", /"n":1/);
  });

  it("runs the update again when the first delivery failed: nothing lost", async () => {
    const { gate, release, first, second, resend } = await setup(1);
    release();
    await resend;
    assert.equal(gate.runs, 2, "the resend ran the handler again");
    assert.deepEqual(
      first.errors.map((error) => (error as Error).message),
      ["handler failed"],
    );
    assert.equal(second.outcome()?.handled, true);
    assert.deepEqual(first.tg.outbox.take(), []);
    assert.deepEqual(second.tg.outbox.take().map((m) => m.text), ["n = 1"]);
    assert.deepEqual(await second.nodes.user(5).peek(), new Counter({ n: 1 }));
  });
});
