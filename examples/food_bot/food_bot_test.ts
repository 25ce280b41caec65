// The seed's food bot, every branch, through a real grammY Bot.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { StateStore } from "../../mod.ts";
import { FakeClock, MemoryStore } from "../../testing/mod.ts";
import { createTestBot } from "../../testing/grammy.ts";
import { nodesMiddleware } from "../../integrations/grammy.ts";
import { createFoodNodes, foodApiStub } from "./bot.ts";
import type { FoodApi } from "./types.ts";
import { DROP_AFTER, REMIND_AFTER } from "./hungry.ts";

const ANN = 1;

function setup(
  store: StateStore = new MemoryStore(),
  foodApi: FoodApi = foodApiStub,
) {
  const tg = createTestBot();
  tg.user(ANN, { first_name: "Ann", username: "ann" });
  const logged: string[] = [];
  const nodes = createFoodNodes(store, {
    api: tg.bot.api,
    foodApi,
    logger: { error: (message) => void logged.push(message) },
  });
  tg.bot.on("message", nodesMiddleware(nodes));
  return { tg, nodes, sim: tg.simulator(nodes), logged, store };
}

const MENU = "Again main menu! Are you hungry?";

describe("food bot", () => {
  it("greets a new user by name in the main menu", async () => {
    const { sim } = setup();
    await sim.simulate(ANN, [
      { event: "hi", node: "start", replies: ["Hello, ann! Are you hungry?"] },
    ]);
  });

  it("Yes: goes hungry with an empty cart", async () => {
    const { sim } = setup();
    await sim.simulate(ANN, [
      "hi",
      {
        event: "Yes",
        node: "hungry",
        replies: [
          "No worries, I've got you back!",
          "What are you gonna order? Cart: Empty",
        ],
        data: { order: [] },
      },
    ]);
  });

  it("No: holds, and any message brings the main menu back", async () => {
    const { sim } = setup();
    await sim.simulate(ANN, [
      "hi",
      {
        event: "No",
        node: "hold",
        replies: ["Write me when you are ready then!"],
      },
      { event: "I'm back", node: "start", replies: [MENU] },
    ]);
  });

  it("anything else: asks again and stays in the main menu", async () => {
    const { sim } = setup();
    await sim.simulate(ANN, [
      "hi",
      { event: "Maybe", node: "start", replies: ["Say what?", MENU] },
    ]);
  });

  it("adds items to the cart and orders them", async () => {
    const ordered: string[][] = [];
    const { sim } = setup(undefined, {
      orderFood: (items) => (ordered.push([...items]), Promise.resolve()),
    });
    await sim.simulate(ANN, [
      "hi",
      "Yes",
      {
        event: "pizza",
        node: "hungry",
        replies: ["Added pizza", "What are you gonna order? Cart: pizza"],
      },
      {
        event: "sushi",
        replies: [
          "Added sushi",
          "What are you gonna order? Cart: pizza, sushi",
        ],
        data: { order: ["pizza", "sushi"] },
      },
      {
        event: "Finish",
        node: "start",
        replies: ["Ordering pizza, sushi", "Ordered!", MENU],
      },
    ]);
    assert.deepEqual(ordered, [["pizza", "sushi"]]);
  });

  it("Finish with an empty cart: says so and stays hungry", async () => {
    const { sim } = setup();
    await sim.simulate(ANN, [
      "hi",
      "Yes",
      {
        event: "Finish",
        node: "hungry",
        replies: [
          "Cart is empty! Write Cancel to cancel the order",
          "What are you gonna order? Cart: Empty",
        ],
        data: { order: [] },
      },
    ]);
  });

  it("the food API failing: logs it, says Error, back to the main menu", async () => {
    const { sim, logged } = setup(undefined, {
      orderFood: () => Promise.reject(new Error("kitchen closed")),
    });
    await sim.simulate(ANN, [
      "hi",
      "Yes",
      "ramen",
      {
        event: "Finish",
        node: "start",
        replies: ["Ordering ramen", "Error", MENU],
      },
    ]);
    assert.equal(logged.length, 1);
    assert.match(
      logged[0]!,
      /Order for 1 failed due to Error: kitchen closed \| order=\["ramen"\]/,
    );
  });

  it("Cancel: drops the cart and goes back to the main menu", async () => {
    const { sim } = setup();
    await sim.simulate(ANN, [
      "hi",
      "Yes",
      "pizza",
      {
        event: "Cancel",
        node: "start",
        replies: ["Order cancelled!", MENU],
        data: {},
      },
      {
        event: "Yes",
        replies: [
          "No worries, I've got you back!",
          "What are you gonna order? Cart: Empty",
        ],
      },
    ]);
  });

  it("a returning user finds their cart after a restart (a new bot on the same store)", async () => {
    const store = new MemoryStore();
    await setup(store).sim.simulate(ANN, ["hi", "Yes", "pizza"]);
    const { sim } = setup(store); // the process restarted
    await sim.simulate(ANN, [
      {
        event: "cola",
        node: "hungry",
        replies: ["Added cola", "What are you gonna order? Cart: pizza, cola"],
      },
    ]);
  });

  it("keeps two users' conversations apart", async () => {
    const { sim, tg } = setup();
    tg.user(2, { first_name: "Bo", username: "bo" });
    await sim.simulate(ANN, [
      { event: "hi", replies: ["Hello, ann! Are you hungry?"] },
      {
        user: 2,
        event: "hi",
        replies: [{ to: 2, text: "Hello, bo! Are you hungry?" }],
      },
      { event: "Yes", node: "hungry" },
      { user: 2, event: "No", node: "hold" },
      { event: "tea", data: { order: ["tea"] } },
    ]);
  });

  it("matches the golden transcript of the happy path", async () => {
    const { sim } = setup();
    const golden = readFileSync(
      new URL("./testdata/happy_path.txt", import.meta.url),
      "utf8",
    );
    await sim.simulate(ANN, ["hi", "Yes", "pizza", "Finish"], {
      transcript: golden,
    });
  });
});

describe("food bot reminders", () => {
  const timed = () => {
    const clock = new FakeClock();
    const { tg, nodes } = setup(new MemoryStore({ clock }));
    return tg.simulator(nodes, { clock });
  };

  it("reminds once about a full cart, then drops it after a longer silence", async () => {
    await timed().simulate(ANN, [
      "hi",
      "Yes",
      "pizza",
      { wait: REMIND_AFTER - 1, replies: [] },
      {
        wait: 1,
        node: "hungry",
        replies: ["Still there? Your cart: pizza. Write Finish to order it."],
        data: { order: ["pizza"], reminded: true },
      },
      { wait: DROP_AFTER - 1, replies: [] },
      {
        wait: 1,
        node: "start",
        replies: [
          "I dropped your cart (pizza) after an hour of silence.",
          MENU,
        ],
      },
      { wait: 10 * DROP_AFTER, node: "start", replies: [] },
    ]);
  });

  it("starts the wait again at each answer; an empty cart waits forever", async () => {
    await timed().simulate(ANN, [
      "hi",
      "Yes",
      { wait: 10 * REMIND_AFTER, node: "hungry", replies: [] },
      "pizza",
      { wait: REMIND_AFTER - 1, replies: [] },
      "cola",
      { wait: REMIND_AFTER - 1, replies: [] },
      {
        wait: 1,
        replies: [
          "Still there? Your cart: pizza, cola. Write Finish to order it.",
        ],
      },
      {
        event: "Finish",
        node: "start",
        replies: ["Ordering pizza, cola", "Ordered!", MENU],
      },
      { wait: 10 * DROP_AFTER, replies: [] },
    ]);
  });
});
