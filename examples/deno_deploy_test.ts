// The webhook entry point: called with Requests on every runtime (errors,
// the error boundary, the timeout), and served on a loopback port with
// updates posted over HTTP as Telegram would (Deno only: Deno.serve).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Bot, BotError } from "grammy";
import type { Update } from "grammy/types";
import { type Lease, LeaseTimeoutError } from "../mod.ts";
import { MemoryStore } from "../testing/mod.ts";
import { apiErrors, createTestBot } from "../testing/grammy.ts";
import { createWebhookHandler } from "./deno_deploy.ts";

/** A store on which every user stays busy: events fail with LeaseTimeoutError. */
class BusyStore extends MemoryStore {
  override begin(userId: string): Promise<Lease> {
    return Promise.reject(new LeaseTimeoutError(userId, 35_000));
  }
}

function webhook(store = new MemoryStore()) {
  const tg = createTestBot();
  tg.user(5, { first_name: "Eve", username: "eve" });
  const logged: unknown[] = [];
  const handler = createWebhookHandler({
    bot: tg.bot,
    store,
    secretToken: "s3cret",
    logger: { error: (_message, error) => void logged.push(error) },
  });
  const post = (update: Update) =>
    handler(
      new Request("http://bot.test/", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-telegram-bot-api-secret-token": "s3cret",
        },
        body: JSON.stringify(update),
      }),
    );
  return { tg, store, logged, post };
}

describe("examples/deno_deploy.ts: errors under a webhook", () => {
  it("logs an error a resend would repeat (403 in onEnter) and answers 200; the user stays", async () => {
    const { tg, store, logged, post } = webhook();
    tg.failNext("sendMessage", apiErrors.blocked);
    const response = await post(tg.update.text(tg.user(5), "hi"));
    assert.equal(response.status, 200); // Telegram will not send it again
    assert.equal(logged.length, 1);
    assert.equal((logged[0] as { error_code?: number }).error_code, 403);
    assert.equal(await store.get("5"), undefined, "nothing written");
  });

  it("lets a resend fix a busy user: LeaseTimeoutError makes the webhook fail (500)", async () => {
    const { tg, logged, post } = webhook(new BusyStore());
    // the callback rejects (Deno.serve answers 500) with grammY's BotError
    await assert.rejects(
      post(tg.update.text(tg.user(5), "hi")),
      (error: unknown) =>
        error instanceof BotError && error.error instanceof LeaseTimeoutError,
    );
    assert.deepEqual(logged, []);
  });

  it("handles a resend of a committed update once (eventId), answering 200", async () => {
    const { tg, store, post } = webhook();
    const update = tg.update.text(tg.user(5), "hi");
    assert.equal((await post(update)).status, 200);
    const stored = await store.get("5");
    assert.equal((await post(update)).status, 200); // Telegram's resend
    assert.equal(await store.get("5"), stored);
    assert.deepEqual(tg.outbox.take().map((m) => m.text), [
      "Hello, eve! Are you hungry?",
    ]);
  });
});

describe("examples/deno_deploy.ts: the secret token", () => {
  it("refuses a request without the webhook's secret before the bot calls Telegram", async () => {
    const calls: string[] = [];
    // a bot without botInfo: grammY's own callback would call getMe first
    const bot = new Bot("1:token");
    bot.api.config.use((_prev, method) => {
      calls.push(method);
      return Promise.reject(new Error(`no network here (${method})`));
    });
    const handler = createWebhookHandler({
      bot,
      store: new MemoryStore(),
      secretToken: "s3cret",
    });
    const tg = createTestBot();
    for (const secret of [undefined, "wrong", "s3cre", "s3cret0", ""]) {
      const response = await handler(
        new Request("http://bot.test/", {
          method: "POST",
          headers: secret === undefined
            ? {}
            : { "x-telegram-bot-api-secret-token": secret },
          body: JSON.stringify(tg.update.text(tg.user(5), "hi")),
        }),
      );
      assert.equal(response.status, 401, `secret ${secret}`);
      await response.body?.cancel();
    }
    assert.deepEqual(calls, []);
  });
});

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
