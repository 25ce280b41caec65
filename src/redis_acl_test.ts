// Least privilege: the ACL user the README documents runs the whole store
// contract and nothing else; no secret reaches an error or a warning.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { inspect } from "node:util";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { Redis as UpstashRedis } from "@upstash/redis";
import { storeContract } from "./store_contract.ts";
import {
  randomPrefix,
  REDIS_URL,
  redisHarness,
  redisSkip,
} from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import type { RedisLike } from "./redis_store.ts";
import { StoreError } from "./errors.ts";
import { Nodes } from "./nodes.ts";
import { appended, Appending } from "../test_support/append_bot.ts";
import { fromNodeRedis } from "../adapters/node_redis.ts";
import { fromUpstash } from "../adapters/upstash.ts";

const skipRedis = await redisSkip();

/** The ACL line of the README, for `prefix` and `password`. */
function documentedAcl(prefix: string, password: string): string[] {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const line = /^ACL SETUSER mybot .*$/m.exec(readme)?.[0];
  assert.ok(line, "README.md shows the ACL line for the prefix mybot");
  return line.split(/\s+/).slice(2).map((word) =>
    word === "mybot"
      ? prefix
      : word === "~mybot:{*"
      ? `~${prefix}:{*`
      : word.startsWith(">")
      ? `>${password}`
      : word
  );
}

const user = `botnodes-acl-${crypto.randomUUID().slice(0, 8)}`;
const password = crypto.randomUUID();
const prefix = randomPrefix("acl");

/** Creates the documented user (again: each contract case makes a client). */
async function withUser(admin: Redis): Promise<void> {
  const [, ...rules] = documentedAcl(prefix, password);
  await admin.call("ACL", "SETUSER", user, ...rules);
}

function asUser(): Redis {
  const url = new URL(REDIS_URL);
  return new Redis({
    host: url.hostname,
    port: Number(url.port || 6379),
    username: user,
    password,
    enableReadyCheck: false,
  });
}

if (!skipRedis) {
  storeContract("RedisStore as the documented ACL user", async (options) => {
    const admin = new Redis(REDIS_URL);
    await withUser(admin);
    const client = asUser();
    return redisHarness(
      client,
      admin,
      options,
      () => {
        client.disconnect();
        admin.disconnect();
        return Promise.resolve();
      },
      false,
      prefix,
    );
  }, { describe, it });
}

describe("the documented ACL user", { skip: skipRedis }, () => {
  let admin: Redis;
  let client: Redis;
  before(async () => {
    admin = new Redis(REDIS_URL);
    await withUser(admin);
    client = asUser();
  });
  after(async () => {
    client.disconnect();
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.call("ACL", "DELUSER", user);
    admin.disconnect();
  });

  it("runs every script path: dedupe, idle TTL, foreign values, reset", async () => {
    // the ACL's prefix is the store's: prefix-specific keys only
    const store = new RedisStore(client, { prefix, ttl: 60_000 });
    const [state, leaseKey] = store.keys("u");
    await admin.set(state, "foreign");
    await admin.hset(leaseKey, "f", "a foreign lease");
    const nodes = new Nodes({
      store,
      nodes: { appending: Appending },
      start: (event: { user: string; id: string }) =>
        new Appending({ events: [event.id] }),
      shared: { during: () => {} },
      userId: (event) => event.user,
      eventId: (event) => event.id,
      logger: { warn: () => {} },
    });
    await nodes.route({ user: "u", id: "1" });
    await nodes.route({ user: "u", id: "2" });
    assert.deepEqual(await nodes.route({ user: "u", id: "2" }), {
      handled: false,
      reason: "duplicate",
      userId: "u",
    });
    assert.deepEqual(await appended(store, "u"), ["1", "2"]);
    assert.deepEqual(await nodes.user("u").aside(), ["foreign"]);
    await admin.rpush(store.keys("v")[0], "a list");
    await nodes.route({ user: "v", id: "1" });
    await nodes.user("u").reset();
    assert.equal(await store.get("u"), undefined);
    const lease = await store.begin("w");
    assert.equal(await store.renew(lease), true);
    await store.release(lease);
  });

  it("cannot read or write another bot's keys, directly or by a script", async () => {
    const other = `${randomPrefix("other-bot")}:{1}`;
    await admin.set(other, "theirs");
    try {
      await assert.rejects(client.get(other), /NOPERM/);
      await assert.rejects(client.set(other, "x"), /NOPERM/);
      await assert.rejects(
        client.eval("return redis.call('GET', KEYS[1])", 1, other),
        /NOPERM/,
      );
      await assert.rejects(
        client.eval(`return redis.call('SET', '${other}', 'x')`, 0),
        /can't access|NOPERM/,
      );
      // nor the keys of a bot whose prefix starts with ours
      await assert.rejects(client.get(`${prefix}:other:{1}`), /NOPERM/);
      // a bot on the same Redis cannot go through our store either
      const theirs = new RedisStore(client, { prefix: other.split(":")[0] });
      await assert.rejects(theirs.begin("1"), StoreError);
      assert.equal(await admin.get(other), "theirs");
    } finally {
      await admin.del(other);
    }
  });

  it("fails a scan loudly on a user it cannot read, not leaving the user out", async () => {
    // a user without +type: reading a foreign value at a user's key fails;
    // the scan must fail with it, not skip the user (only a Cluster master's
    // "non local key" is read elsewhere instead)
    const narrow = `${user}-narrow`;
    const [, ...rules] = documentedAcl(prefix, password);
    await admin.call(
      "ACL",
      "SETUSER",
      narrow,
      ...rules.filter((rule) => rule !== "+type"),
    );
    const url = new URL(REDIS_URL);
    const limited = new Redis({
      host: url.hostname,
      port: Number(url.port || 6379),
      username: narrow,
      password,
      enableReadyCheck: false,
    });
    try {
      const store = new RedisStore(limited, { prefix });
      await store.commit(await store.begin("readable"), "state");
      await admin.set(store.keys("foreign")[0], "a foreign string");
      await assert.rejects(
        (async () => {
          for await (const _ of store.scan()) { /* every page */ }
        })(),
        (error: unknown) =>
          error instanceof StoreError && error.operation === "scan",
      );
      await admin.del(...store.keys("readable"), store.keys("foreign")[0]);
    } finally {
      limited.disconnect();
      await admin.call("ACL", "DELUSER", narrow);
    }
  });

  it("cannot run FLUSHALL, KEYS, CONFIG or SCRIPT FLUSH", async () => {
    for (
      const command of [["FLUSHALL"], ["KEYS", "*"], ["CONFIG", "GET", "*"], [
        "SCRIPT",
        "FLUSH",
      ]]
    ) {
      await assert.rejects(
        client.call(command[0]!, ...command.slice(1)),
        /NOPERM/,
        command.join(" "),
      );
    }
  });
});

describe("no secret in an error or a warning", () => {
  const secret = "hunter2-" + crypto.randomUUID();
  const botToken = "123456789:AAH" + "x".repeat(32);

  /** Everything an error would show when logged: message, stack, causes. */
  function shown(error: unknown): string {
    return inspect(error, { depth: Infinity }) + "\n" + chain(error);
  }

  function chain(error: unknown): string {
    const parts: string[] = [];
    for (let e = error, i = 0; e !== undefined && i < 10; i++) {
      if (e instanceof Error) {
        parts.push(e.message, e.stack ?? "");
        e = e.cause;
      } else {
        parts.push(String(e));
        break;
      }
    }
    return parts.join("\n");
  }

  /** Routes one event through `store`; returns the error and the warnings. */
  async function fail(store: RedisStore) {
    const warnings: string[] = [];
    const nodes = new Nodes({
      store,
      nodes: { appending: Appending },
      start: () => new Appending({ events: [] }),
      shared: { during: () => {} },
      userId: (event: { user: string; id: string }) => event.user,
      logger: {
        warn: (message, ...details) =>
          void warnings.push(message, ...details.map(shown)),
      },
    });
    const error = await nodes.route({ user: "u", id: "1" }).then(
      () => assert.fail("the event should fail"),
      (error: unknown) => error,
    );
    assert.ok(error instanceof StoreError, shown(error));
    return { error, text: shown(error) + warnings.join("\n") };
  }

  it("redacts what a client puts in its own error", async () => {
    const leaky: RedisLike = {
      eval: () => Promise.reject(new Error("x")),
      evalsha: () =>
        Promise.reject(
          new Error(
            `connect failed: rediss://default:${secret}@db.example:6379, Authorization: Bearer ${secret}, url=https://x.example/?token=${secret}&password=${secret} https://api.telegram.org/bot${botToken}/getMe {"password":"${secret}"}`,
            { cause: new Error(`inner redis://:${secret}@host`) },
          ),
        ),
    };
    const { error, text } = await fail(new RedisStore(leaky));
    assert.ok(!text.includes(secret), text);
    assert.ok(!text.includes(botToken), text);
    assert.match(error.message, /rediss:\/\/\*\*\*@db\.example/);
    assert.match(error.message, /Bearer \*\*\*/);
  });

  it("keeps what explains an error and holds no secret", () => {
    for (
      const text of [
        "NOAUTH Authentication required.",
        "WRONGPASS invalid username-password pair or user is disabled.",
        "NOPERM No permissions to access a key: bot:{HELLO}",
        "ERR unknown command 'evalsha'",
        "bypass: cache miss",
        // a stack's path (found by a fifth outside attack)
        "at file:///app/node_modules/@upstash/redis/nodejs.mjs:1:2",
      ]
    ) {
      const kept = new StoreError("get", "u", new Error(text)).cause as Error;
      assert.equal(kept.message, text);
    }
    // Node's AggregateError (no message of its own) says what its errors say
    const refused = new AggregateError([
      new Error("connect ECONNREFUSED ::1:6379"),
      new Error("connect ECONNREFUSED 127.0.0.1:6379"),
    ]);
    const error = new StoreError("get", "u", refused);
    assert.match(error.message, /ECONNREFUSED ::1:6379; connect ECONNREFUSED/);
    // a client's error whose message or stack is no string still makes one
    const odd = Object.assign(new Error("x"), { message: undefined, stack: 5 });
    assert.ok(new StoreError("get", "u", odd) instanceof StoreError);
    // an error without a message names its class (node-redis' TimeoutError),
    // and an object that is no Error says its message
    class TimeoutError extends Error {}
    assert.match(
      new StoreError("get", "u", new TimeoutError()).message,
      /the store failed \(TimeoutError, with no message\)$/,
    );
    assert.match(
      new StoreError("get", "u", { message: `down, password=${secret}` })
        .message,
      /the store failed \(down, password=\*\*\*\)$/,
    );
    // a URL's credentials after three slashes (WHATWG reads them so), and
    // in the class name of an error without a message
    assert.doesNotMatch(
      new StoreError("get", "u", new Error(`https:///u:${secret}@x.io`))
        .message,
      new RegExp(secret),
    );
    const Named = class extends Error {};
    Object.defineProperty(Named, "name", { value: `redis://u:${secret}@h` });
    assert.doesNotMatch(
      new StoreError("get", "u", new Named()).message,
      new RegExp(secret),
    );
    const hostile = new Proxy({}, {
      get() {
        throw new Error("no");
      },
    });
    assert.ok(new StoreError("get", "u", hostile) instanceof StoreError);
  });

  it("keeps the client's error name, message and code, in a copy", () => {
    const cause = Object.assign(
      new Error("connect ECONNREFUSED 127.0.0.1:1"),
      { code: "ECONNREFUSED", command: { name: "hello", args: [secret] } },
    );
    const kept = new StoreError("begin", "u", cause).cause as Error & {
      code?: string;
      command?: unknown;
    };
    assert.equal(kept.message, cause.message);
    assert.equal(kept.code, "ECONNREFUSED");
    assert.deepEqual(kept.command, { name: "hello" });
    assert.ok(!inspect(kept, { depth: Infinity }).includes(secret));
  });

  it("redacts passwords holding @ or /, quoted ones, AUTH arguments and secret-named parameters", () => {
    for (
      const text of [
        `redis://user:p@ss@${secret}@host:6379`,
        `rediss://:pa/ss${secret}@host`,
        `password: '${secret}'`,
        `{"password": "${secret}"}`,
        `ERR in HELLO 3 AUTH someone ${secret}`,
        `AUTH ${secret}`,
        // found by an outside attack
        `https://example.upstash.io/?access_token=${secret}`,
        `client_secret=${secret}`,
        `{"password":"two ${secret}"}`,
        `password=abc;${secret}`,
        `X-Api-Key: ${secret}`,
        `hello 3 auth default ${secret}`,
        `ERR unknown command 'auth', with args beginning with: 'default' '${secret}'`,
        `UpstashError: WRONGPASS, command was: ["auth","default","${secret}"]`,
        // found by a third outside attack
        `UpstashError: x, command was: ["evalsha","1","[1]","${secret}"]`,
        `auth default ${secret}`,
        `{"password": "two ${secret}`,
        `Authorization: Token ${secret}`,
        `token: 'two ${secret}'`,
      ]
    ) {
      const error = new StoreError("get", "u", new Error(text));
      assert.ok(
        !inspect(error, { depth: Infinity }).includes(secret),
        error.message,
      );
    }
  });

  it("ioredis with a password in its URL, failing to connect", async () => {
    const redis = new Redis(`redis://botuser:${secret}@127.0.0.1:1`, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    });
    redis.on("error", () => {});
    const { text } = await fail(new RedisStore(redis));
    assert.ok(!text.includes(secret), text);
    redis.disconnect();
  });

  it("ioredis with a wrong password", { skip: skipRedis }, async () => {
    const url = new URL(REDIS_URL);
    url.username = "nobody-" + crypto.randomUUID().slice(0, 8);
    url.password = secret;
    const redis = new Redis(url.href, {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on("error", () => {});
    const { text } = await fail(new RedisStore(redis));
    assert.ok(!text.includes(secret), text);
    redis.disconnect();
  });

  it("node-redis with a password in its URL, failing to connect", async () => {
    const client = createClient({
      url: `redis://botuser:${secret}@127.0.0.1:1`,
      socket: { reconnectStrategy: false },
    });
    client.on("error", () => {});
    const connected = await client.connect().then(() => true, () => false);
    assert.equal(connected, false);
    const { text } = await fail(new RedisStore(fromNodeRedis(client)));
    assert.ok(!text.includes(secret), text);
  });

  it("Upstash with its token, against a server that refuses it", async () => {
    const server = createServer((request, response) => {
      response.writeHead(401, { "content-type": "application/json" });
      response.end(
        JSON.stringify({
          error: `Unauthorized: ${request.headers.authorization}`,
        }),
      );
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve)
    );
    const { port } = server.address() as { port: number };
    try {
      const upstash = new UpstashRedis({
        url: `http://127.0.0.1:${port}`,
        token: secret,
        automaticDeserialization: false,
        retry: false,
      });
      const { text } = await fail(new RedisStore(fromUpstash(upstash)));
      assert.ok(!text.includes(secret), text);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
