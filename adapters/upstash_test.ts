// The Upstash adapter against a local server that speaks Upstash's REST
// protocol by forwarding each command to the real Redis, so scripts run.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { Redis as UpstashRedis } from "@upstash/redis";
import { Redis } from "ioredis";
import { storeContract } from "../store/mod.ts";
import {
  randomPrefix,
  REDIS_URL,
  redisHarness,
  redisSkip,
} from "../test_support/redis.ts";
import { RedisStore } from "../src/redis_store.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";
import { fromUpstash, type UpstashLike } from "./upstash.ts";

const skipRedis = await redisSkip();

const TOKEN = "test-token";

/** Encodes every string of a reply in base64, as Upstash does on request. */
function base64(reply: unknown): unknown {
  if (typeof reply === "string") {
    return btoa(String.fromCharCode(...new TextEncoder().encode(reply)));
  }
  return Array.isArray(reply) ? reply.map(base64) : reply;
}

/** A local Upstash REST endpoint in front of the real Redis. */
async function upstashServer(): Promise<
  { url: string; close(): Promise<void> }
> {
  const redis = new Redis(REDIS_URL);
  const server: Server = createServer(async (request, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    const send = (status: number, payload: unknown) => {
      // one request per connection: no reuse of a keep-alive socket the
      // server may be closing (a request stalled for minutes on a loaded
      // machine once; there are no retries here)
      response.writeHead(status, {
        "content-type": "application/json",
        connection: "close",
      });
      response.end(JSON.stringify(payload));
    };
    if (request.headers.authorization !== `Bearer ${TOKEN}`) {
      return send(401, { error: "Unauthorized" });
    }
    const encoded = request.headers["upstash-encoding"] === "base64";
    const run = async ([command, ...args]: unknown[]) => {
      try {
        const reply = await redis.call(String(command), ...args.map(String));
        return { result: encoded ? base64(reply) : reply };
      } catch (error) {
        return { error: (error as Error).message };
      }
    };
    const parsed = JSON.parse(body) as unknown[];
    if (
      request.url?.endsWith("/pipeline") || request.url?.endsWith("/multi-exec")
    ) {
      // a pipeline: one reply per command, errors inline
      const replies = [];
      for (const command of parsed as unknown[][]) {
        replies.push(await run(command));
      }
      return send(200, replies);
    }
    const reply = await run(parsed);
    send("error" in reply ? 400 : 200, reply);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      redis.disconnect();
    },
  };
}

const client = (url: string, automaticDeserialization = false) =>
  new UpstashRedis({
    url,
    token: TOKEN,
    automaticDeserialization,
    retry: false,
  });

if (!skipRedis) {
  storeContract("RedisStore on @upstash/redis", async (options) => {
    const server = await upstashServer();
    const admin = new Redis(REDIS_URL);
    return redisHarness(
      fromUpstash(client(server.url)),
      admin,
      options,
      async () => {
        admin.disconnect();
        await server.close();
      },
    );
  }, { describe, it });
}

describe("fromUpstash", { skip: skipRedis }, () => {
  let server: { url: string; close(): Promise<void> };
  before(async () => {
    server = await upstashServer();
  });
  after(() => server.close());

  it("runs a bot over HTTP and survives SCRIPT FLUSH", async () => {
    const upstash = client(server.url);
    const typed: UpstashLike = upstash;
    const store = new RedisStore(fromUpstash(typed), {
      prefix: randomPrefix("upstash"),
    });
    const bot = appendBot(store);
    await bot.route({ user: "ü", id: "1" });
    await upstash.scriptFlush();
    await bot.route({ user: "ü", id: "2" });
    assert.deepEqual(await appended(store, "ü"), ["1", "2"]);
    await upstash.del(...store.keys("ü"));
  });

  it("refuses at once a client made to decode JSON, saying how to fix it", () => {
    for (const decoding of [true, undefined]) {
      const made = new UpstashRedis({
        url: server.url,
        token: TOKEN,
        retry: false,
        ...(decoding === undefined ? {} : { automaticDeserialization: true }),
      });
      assert.throws(
        () => fromUpstash(made),
        (error: unknown) =>
          error instanceof TypeError &&
          /automaticDeserialization: false/.test(error.message),
      );
    }
    assert.ok(fromUpstash(client(server.url)));
    // another client's options are not taken for Upstash's
    const other = {
      opts: { timeout: 5_000 },
      eval: () => Promise.resolve(null),
      evalsha: () => Promise.resolve(null),
    };
    assert.ok(fromUpstash(other));
  });

  it("refuses a reply decoded from JSON, saying how to fix it", async () => {
    // a client that keeps no options, but decodes
    const decoding = client(server.url, true);
    const hidden: UpstashLike = {
      eval: (...args) => decoding.eval(...args),
      evalsha: (...args) => decoding.evalsha(...args),
    };
    const store = new RedisStore(fromUpstash(hidden), {
      prefix: randomPrefix("upstash"),
    });
    const bot = appendBot(store);
    await bot.route({ user: "u", id: "1" }); // a new user: nothing decoded yet
    await assert.rejects(
      bot.route({ user: "u", id: "2" }),
      (error: unknown) =>
        error instanceof Error &&
        /automaticDeserialization: false/.test(
          String((error.cause as Error)?.message),
        ),
    );
    await client(server.url).del(...store.keys("u"));
  });
});
