// RedisStore over rediss:// against a Redis with TLS started by the test,
// with a self-signed certificate made by the test.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { type OwnRedis, redisSkip, startRedis } from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";

const skipRedis = await redisSkip();

describe("RedisStore over TLS", { skip: skipRedis }, () => {
  let dir: string;
  let server: OwnRedis;
  let ca: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "botnodes-tls-"));
    const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
    execFileSync("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      key,
      "-out",
      cert,
    ], { stdio: "ignore" });
    ca = readFileSync(cert, "utf8");
    // TLS only: the plain port is off, so `port` is the TLS port
    server = await startRedis([
      "--tls-port",
      "%PORT%",
      "--port",
      "0",
      "--tls-cert-file",
      cert,
      "--tls-key-file",
      key,
      "--tls-ca-cert-file",
      cert,
      "--tls-auth-clients",
      "no",
    ], { tls: { ca } });
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs a conversation over rediss://, checking the server's certificate", async () => {
    const redis = new Redis(`rediss://127.0.0.1:${server.port}`, {
      tls: { ca },
    });
    try {
      const store = new RedisStore(redis, { prefix: "tls" });
      const bot = appendBot(store);
      for (const id of ["a", "b", "c"]) await bot.route({ user: "u", id });
      assert.deepEqual(await appended(store, "u"), ["a", "b", "c"]);
    } finally {
      redis.disconnect();
    }
  });

  it("refuses a server whose certificate it does not trust", async () => {
    const redis = new Redis(`rediss://127.0.0.1:${server.port}`, {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      lazyConnect: true,
    });
    const errors: unknown[] = [];
    redis.on("error", (error) => errors.push(error));
    try {
      await assert.rejects(redis.connect());
      assert.match(String(errors[0]), /self[- ]signed|certificate/i);
    } finally {
      redis.disconnect();
    }
  });
});
