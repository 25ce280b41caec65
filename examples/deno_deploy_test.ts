// The webhook entry point served on a loopback port, updates posted over
// HTTP as Telegram would. Deno only: it serves with Deno.serve.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MemoryStore } from "../testing/mod.ts";
import { createTestBot } from "../testing/grammy.ts";
import { createWebhookHandler } from "./deno_deploy.ts";

const onDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

describe("examples/deno_deploy.ts", {
  skip: onDeno ? false : "Deno.serve is Deno's",
}, () => {
  it("answers updates posted to the webhook and refuses a wrong secret", async () => {
    const tg = createTestBot();
    tg.user(5, { first_name: "Eve", username: "eve" });
    const handler = createWebhookHandler({
      bot: tg.bot,
      store: new MemoryStore(),
      secretToken: "s3cret",
    });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      handler,
    );
    const url = `http://127.0.0.1:${server.addr.port}/`;
    const post = (body: unknown, secret = "s3cret") =>
      fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-telegram-bot-api-secret-token": secret,
        },
        body: JSON.stringify(body),
      });
    try {
      for (const text of ["hi", "Yes", "pizza"]) {
        const response = await post(tg.update.text(tg.user(5), text));
        assert.equal(response.status, 200);
        await response.body?.cancel();
      }
      const inGroup = tg.update.text(tg.user(5), "hello group");
      const group = await post({
        ...inGroup,
        message: {
          ...inGroup.message!,
          chat: { id: -100, type: "group", title: "Group" },
        },
      });
      assert.equal(group.status, 200);
      await group.body?.cancel();
      const refused = await post(tg.update.text(tg.user(5), "Finish"), "wrong");
      assert.equal(refused.status, 401);
      await refused.body?.cancel();
      assert.deepEqual(tg.outbox.take().map((m) => [m.to, m.text]), [
        [5, "Hello, eve! Are you hungry?"],
        [5, "No worries, I've got you back!"],
        [5, "What are you gonna order? Cart: Empty"],
        [5, "Added pizza"],
        [5, "What are you gonna order? Cart: pizza"],
        [-100, "I only take orders in private chats."], // passed on
      ]);
    } finally {
      await server.shutdown();
    }
  });
});
