// The generic harness and the grammY preset under vitest: no runner-specific
// import in either, failures are node:assert AssertionErrors.
import { AssertionError } from "node:assert";
import { expect, test, vi } from "vitest";
import { MemoryStore } from "./mod.ts";
import { createTestBot } from "./grammy.ts";
import { createFoodNodes, foodApiStub } from "../examples/food_bot/bot.ts";

function foodBot() {
  const tg = createTestBot();
  tg.user(1, { first_name: "Ann", username: "ann" });
  const nodes = createFoodNodes(new MemoryStore(), {
    api: tg.bot.api,
    foodApi: foodApiStub,
    logger: console,
  });
  tg.bot.on("message", nodes.route);
  return tg.simulator(nodes);
}

test("simulate passes a right conversation under vitest", async () => {
  const transcript = await foodBot().simulate(1, [
    { event: "hi", node: "start", replies: ["Hello, ann! Are you hungry?"] },
    { event: "Yes", node: "hungry" },
  ]);
  expect(transcript.nodes).toEqual(["start", "hungry"]);
});

test("simulate fails a wrong expectation naming the step under vitest", async () => {
  const error = await foodBot()
    .simulate(1, ["hi", { event: "No", node: "hungry" }])
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(AssertionError);
  expect((error as Error).message).toMatch(
    /^Step 2 \(user 1, event "No"\) failed\nnode: expected "hungry", got "hold"/,
  );
});

test(
  "simulate settles while the test fakes the timers (vi.useFakeTimers)",
  async () => {
    vi.useFakeTimers();
    try {
      const transcript = await foodBot().simulate(1, [
        {
          event: "hi",
          node: "start",
          replies: ["Hello, ann! Are you hungry?"],
        },
        { event: "Yes", node: "hungry" },
      ]);
      expect(transcript.nodes).toEqual(["start", "hungry"]);
    } finally {
      vi.useRealTimers();
    }
  },
  10_000,
);
