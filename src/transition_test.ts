// Transition listeners: the exact transitions of a small bot, and listeners
// that throw.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Transition } from "../mod.ts";
import {
  type Event,
  observedBot,
  script,
} from "../test_support/observed_bot.ts";

describe("nodes.observe", () => {
  it("reports every outcome with node keys and times", async () => {
    const bot = observedBot();
    const seen: Transition<Event, number>[] = [];
    bot.nodes.observe((t) => void seen.push(t));
    await script(bot);
    const boom = seen[3]?.error;
    assert.ok(boom instanceof Error);
    assert.equal(boom.message, "the kitchen is on fire");
    assert.deepEqual(seen, [
      {
        kind: "event",
        outcome: "committed",
        userId: 1,
        eventId: "1",
        event: { from: 1, id: 1, text: "hi" },
        to: "menu",
        leaseWait: 1,
        handlerTime: 0,
        storeTime: 2,
        duration: 3,
      },
      {
        kind: "event",
        outcome: "committed",
        userId: 1,
        eventId: "2",
        event: { from: 1, id: 2, text: "order" },
        from: "menu",
        to: "order",
        leaseWait: 1,
        handlerTime: 3,
        storeTime: 2,
        duration: 6,
      },
      {
        kind: "event",
        outcome: "duplicate",
        userId: 1,
        eventId: "2",
        event: { from: 1, id: 2, text: "order" },
        leaseWait: 1,
        handlerTime: 0,
        storeTime: 0,
        duration: 1,
      },
      {
        kind: "event",
        outcome: "failed",
        userId: 1,
        eventId: "3",
        event: { from: 1, id: 3, text: "boom" },
        from: "order",
        error: boom,
        leaseWait: 1,
        handlerTime: 0,
        storeTime: 0,
        duration: 1,
      },
      {
        kind: "event",
        outcome: "committed",
        userId: 2,
        eventId: "4",
        event: { from: 2, id: 4, text: "hi" },
        to: "menu",
        invalid: "unparseable",
        leaseWait: 1,
        handlerTime: 0,
        storeTime: 2,
        duration: 3,
      },
      {
        kind: "event",
        outcome: "not-ours",
        userId: undefined,
        event: { id: 5, text: "in a channel" },
        leaseWait: 0,
        handlerTime: 0,
        storeTime: 0,
        duration: 0,
      },
      {
        kind: "timeout",
        outcome: "committed",
        userId: 1,
        from: "order",
        to: "menu",
        leaseWait: 1,
        handlerTime: 0,
        storeTime: 2,
        duration: 3,
      },
      {
        kind: "to",
        outcome: "committed",
        userId: 2,
        from: "menu",
        to: "order",
        leaseWait: 1,
        handlerTime: 0,
        storeTime: 2,
        duration: 3,
      },
      {
        kind: "reset",
        outcome: "committed",
        userId: 2,
        from: "order",
        leaseWait: 1,
        handlerTime: 0,
        storeTime: 2,
        duration: 3,
      },
    ]);
    // the only warning is the unreadable state's, not a listener's
    assert.equal(bot.warnings.length, 1);
    assert.match(String(bot.warnings[0]?.[0]), /Cannot restore the state/);
  });

  it("never lets a throwing listener break a transition: the logger hears it", async () => {
    const bot = observedBot();
    const thrown = new Error("listener bug");
    const rejected = new Error("async listener bug");
    const seen: string[] = [];
    bot.nodes.observe(() => {
      throw thrown;
    });
    bot.nodes.observe(() => Promise.reject(rejected));
    bot.nodes.observe((t) => void seen.push(`${t.to}: ${t.outcome}`));
    const result = await bot.nodes.route({ from: 1, id: 1, text: "hi" });
    assert.ok(result.handled && result.key === "menu");
    // the rejected promise is reported a few microtasks later
    for (let turn = 0; turn < 100 && bot.warnings.length < 2; turn++) {
      await Promise.resolve();
    }
    assert.deepEqual(seen, ["menu: committed"]);
    assert.deepEqual(bot.warnings, [
      ["A transition listener threw; the transition is not affected", thrown],
      [
        "A transition listener threw; the transition is not affected",
        rejected,
      ],
    ]);
    assert.equal(await bot.store.get("1"), '{"v":1,"node":"menu","data":null}');
  });

  it("stops a listener, and reports a failure before the user is known", async () => {
    const bot = observedBot();
    const seen: string[] = [];
    const stop = bot.nodes.observe((t) =>
      void seen.push(`${t.outcome} ${String(t.userId)}`)
    );
    await assert.rejects(
      bot.nodes.route({ from: 1.5, id: 1, text: "hi" }),
      TypeError,
    );
    stop();
    stop(); // twice: nothing more
    await bot.nodes.route({ from: 1, id: 2, text: "hi" });
    assert.deepEqual(seen, ["failed undefined"]);
  });
});
