// The food bot's conversation map: its conversations are walked through a
// real grammY Bot, the map is drawn from the transitions, and MAP.md (and
// map.svg, rendered by beautiful-mermaid without a browser) must match.
// Regenerate both after changing the bot or these conversations:
//   UPDATE_MAP=1 node_modules/.bin/deno test -A examples/food_bot/map_test.ts
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { renderMermaidSVG } from "beautiful-mermaid";
import { ConversationMap, MemoryStore, NO_STATE } from "../../testing/mod.ts";
import { createTestBot } from "../../testing/grammy.ts";
import { nodesMiddleware } from "../../integrations/grammy.ts";
import { createFoodNodes, foodApiStub, foodNodes } from "./bot.ts";

const MAP_MD = new URL("./MAP.md", import.meta.url);
const MAP_SVG = new URL("./map.svg", import.meta.url);

/** The transitions the food bot is meant to have. */
const expected = {
  [NO_STATE]: ["start"],
  start: ["start", "hungry", "hold"],
  hungry: ["hungry", "start"],
  hold: ["start"],
};

/** The conversations whose transitions the map shows. */
const conversations: string[][] = [
  ["hi", "Yes", "pizza", "sushi", "Finish"], // the happy path
  ["hi", "Yes", "Finish"], // an empty order
  ["hi", "Yes", "ramen", "Cancel"],
  ["hi", "No", "I'm back"],
  ["hi", "Maybe"],
];

async function walk(map: ConversationMap): Promise<void> {
  for (const [i, texts] of conversations.entries()) {
    const tg = createTestBot();
    const user = i + 1;
    tg.user(user, { first_name: `User ${user}` });
    const nodes = createFoodNodes(new MemoryStore(), {
      api: tg.bot.api,
      foodApi: foodApiStub,
      logger: { error: () => {} },
    });
    tg.bot.on("message", nodesMiddleware(nodes));
    const sim = tg.simulator(nodes);
    const stop = map.watch(nodes);
    try {
      await sim.simulate(user, texts);
    } finally {
      stop();
    }
  }
}

describe("the food bot's map", () => {
  it("is up to date in MAP.md and map.svg", async () => {
    const map = new ConversationMap({ nodes: foodNodes, expected });
    await walk(map);
    const markdown = map.markdown({
      title: "The food bot's conversation map",
      generatedBy:
        "examples/food_bot/map_test.ts (UPDATE_MAP=1 to regenerate; map.svg beside it)",
    });
    const svg = renderMermaidSVG(map.mermaid());
    if (process.env.UPDATE_MAP === "1") {
      writeFileSync(MAP_MD, markdown);
      writeFileSync(MAP_SVG, svg);
    }
    assert.equal(
      readFileSync(MAP_MD, "utf8"),
      markdown,
      "examples/food_bot/MAP.md is stale: regenerate it with UPDATE_MAP=1 (see map_test.ts)",
    );
    assert.equal(
      readFileSync(MAP_SVG, "utf8"),
      svg,
      "examples/food_bot/map.svg is stale: regenerate it with UPDATE_MAP=1 (see map_test.ts)",
    );
    // README.md shows the same map
    const readme = readFileSync(
      new URL("../../README.md", import.meta.url),
      "utf8",
    );
    assert.ok(
      readme.includes("```mermaid\n" + map.mermaid() + "```\n"),
      "README.md's food bot map differs from MAP.md: copy MAP.md's diagram into README.md's \"A map of the conversation\"",
    );
    // every node and every declared transition is walked
    assert.deepEqual(map.coverage(), {
      neverEntered: [],
      neverWalked: [],
      undeclared: [],
      failed: [],
    });
  });
});
