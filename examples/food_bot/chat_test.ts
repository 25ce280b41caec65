// `deno task chat` driven by piped input, in memory and in Redis.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import {
  randomPrefix,
  REDIS_URL,
  redisSkip,
} from "../../test_support/redis.ts";

const skipRedis = await redisSkip();

const root = fileURLToPath(new URL("../../", import.meta.url));

function chat(
  input: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(`${root}node_modules/.bin/deno`, ["task", "chat"], {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", ...env },
    });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, out }));
    child.stdin.end(input);
  });
}

const replies = (out: string) =>
  out.split("\n").filter((line) => line.startsWith("bot: ")).map((line) =>
    line.slice(5)
  );

describe("deno task chat", () => {
  it("prints the seed's replies in order and exits 0 at the end of input", async () => {
    const { code, out } = await chat("hi\nYes\npizza\nFinish\n", {
      REDIS_URL: "",
    });
    assert.equal(code, 0, out);
    assert.deepEqual(replies(out), [
      "Hello, friend! Are you hungry?",
      "No worries, I've got you back!",
      "What are you gonna order? Cart: Empty",
      "Added pizza",
      "What are you gonna order? Cart: pizza",
      "Ordering pizza",
      "Ordered!",
      "Again main menu! Are you hungry?",
    ]);
    assert.match(out, /\[hungry\]\n[\s\S]*\[start\]\n$/);
  });

  it("lets time pass with /wait: one reminder, then the cart is dropped", async () => {
    const { code, out } = await chat(
      "hi\nYes\npizza\n/wait 9\n/wait 1\n/wait 60\n",
      { REDIS_URL: "" },
    );
    assert.equal(code, 0, out);
    assert.deepEqual(replies(out).slice(-4), [
      "What are you gonna order? Cart: pizza",
      "Still there? Your cart: pizza. Write Finish to order it.",
      "I dropped your cart (pizza) after an hour of silence.",
      "Again main menu! Are you hungry?",
    ]);
    assert.match(out, /\[start\]\n$/);
  });

  it("reports an event that fails and goes on with the next line", async () => {
    // a 2 MB order is over the state's 1 MiB limit: StateTooLargeError
    const { code, out } = await chat(
      `hi\nYes\n${"x".repeat(2_000_000)}\npizza\n`,
      {
        REDIS_URL: "",
      },
    );
    assert.equal(code, 0, out.slice(-500));
    assert.match(out, /\(error\) .*over the limit|\(error\) .*1048576/);
    assert.deepEqual(replies(out).slice(-2), [
      "Added pizza",
      "What are you gonna order? Cart: pizza",
    ]);
  });

  it("reports each event while Redis is unreachable, and ends at the end of input", async () => {
    const { code, out } = await chat("hi\nYes\n", {
      REDIS_URL: "redis://127.0.0.1:1",
    });
    assert.equal(code, 0, out);
    assert.equal(out.match(/\(error\) Cannot begin/g)?.length, 2, out);
    assert.deepEqual(replies(out), []);
  });

  it("refuses a REDIS_URL that is not a URL, without showing it", async () => {
    const { code, out } = await chat("hi\n", {
      REDIS_URL: "redis://:secret@127.0.0.1:99999",
    });
    assert.equal(code, 2, out);
    assert.match(out, /REDIS_URL is not a URL/);
    assert.ok(!out.includes("secret"), out);
  });

  it(
    "keeps state across two runs with REDIS_URL set",
    { skip: skipRedis },
    async () => {
      const env = { REDIS_URL, CHAT_PREFIX: randomPrefix("chat") };
      const first = await chat("hi\nYes\npizza\n", env);
      assert.equal(first.code, 0, first.out);
      const second = await chat("sushi\nFinish\n", env);
      assert.equal(second.code, 0, second.out);
      assert.deepEqual(replies(second.out), [
        "Added sushi",
        "What are you gonna order? Cart: pizza, sushi",
        "Ordering pizza, sushi",
        "Ordered!",
        "Again main menu! Are you hungry?",
      ]);
      const redis = new Redis(REDIS_URL);
      await redis.del(`${env.CHAT_PREFIX}:{1}`);
      redis.disconnect();
    },
  );
});
