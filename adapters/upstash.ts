/**
 * Use an `@upstash/redis` client (Redis over HTTP: Deno Deploy, edge
 * runtimes, serverless) as the `RedisLike` of `RedisStore`.
 *
 * This module declares the few methods it calls instead of importing
 * `@upstash/redis`, so it adds no dependency.
 *
 * @example
 * ```ts ignore
 * // ignored: needs your database's URL and token (see fromUpstash for a run)
 * import { Redis } from "@upstash/redis";
 * import { RedisStore } from "@botnodes/core";
 * import { fromUpstash } from "@botnodes/core/upstash";
 *
 * const redis = new Redis({
 *   url: Deno.env.get("UPSTASH_REDIS_REST_URL")!,
 *   token: Deno.env.get("UPSTASH_REDIS_REST_TOKEN")!,
 *   automaticDeserialization: false, // required: states are stored as JSON text
 * });
 * const store = new RedisStore(fromUpstash(redis), { prefix: "mybot" });
 * ```
 *
 * @module
 */

import type { RedisLike } from "../mod.ts";

/**
 * The methods of an `@upstash/redis` client that the adapter calls.
 *
 * @example
 * ```ts
 * import { Redis } from "@upstash/redis";
 * import type { UpstashLike } from "@botnodes/core/upstash";
 *
 * // the constructor only keeps its settings: no request is made here
 * const client: UpstashLike = new Redis({
 *   url: "https://example.upstash.io",
 *   token: "<token>",
 *   automaticDeserialization: false,
 * });
 * ```
 */
export interface UpstashLike {
  /** `EVAL`. */
  eval(script: string, keys: string[], args: string[]): Promise<unknown>;
  /** `EVALSHA`. */
  evalsha(sha1: string, keys: string[], args: string[]): Promise<unknown>;
}

/**
 * Adapts an `@upstash/redis` client to `RedisLike`.
 *
 * The client must be created with `automaticDeserialization: false`:
 * otherwise it parses every JSON-looking string it receives, and the stored
 * states (JSON text) would come back as objects. An `@upstash/redis` client
 * made without it is refused at once with a `TypeError` that says so (read
 * from the options the client keeps); a reply that shows it (a client that
 * keeps no options) is refused the same way.
 *
 * `RedisStore.scan` (`nodes.users()`, `nodes.countUsers()`) sends one
 * `EVALSHA` per page, which runs `SCAN` on the database inside the script:
 * one HTTP request per page of `count` keys. An
 * Upstash database is one keyspace to its clients, so the adapter has no
 * `nodes()` (only a Cluster client needs it). Tested here against a local
 * server that speaks Upstash's REST protocol in front of Redis 7, not
 * against Upstash itself.
 *
 * @param client An `@upstash/redis` client made with
 * `automaticDeserialization: false`.
 * @returns The client as a `RedisLike`.
 * @throws {TypeError} When the client's options leave
 * `automaticDeserialization` on.
 *
 * @example What the adapter sends and refuses, on fake clients
 * ```ts
 * import assert from "node:assert/strict";
 * import { RedisStore } from "@botnodes/core";
 * import { fromUpstash, type UpstashLike } from "@botnodes/core/upstash";
 *
 * // answers every script with its keys and arguments
 * const echo = (_script: string, keys: string[], args: string[]) =>
 *   Promise.resolve([...keys, ...args]);
 * const client: UpstashLike = { eval: echo, evalsha: echo };
 * const redis = fromUpstash(client);
 * assert.deepEqual(
 *   await redis.evalsha("<sha1>", 2, "key1", "key2", "arg"),
 *   ["key1", "key2", "arg"],
 * );
 *
 * // a client that decodes JSON (automaticDeserialization left on)
 * const decoding: UpstashLike = {
 *   eval: () => Promise.resolve({ v: 1 }),
 *   evalsha: () => Promise.resolve({ v: 1 }),
 * };
 * const store = new RedisStore(fromUpstash(decoding));
 * await assert.rejects(store.get("42"), /automaticDeserialization: false/);
 * ```
 */
export function fromUpstash(client: UpstashLike): RedisLike {
  // `@upstash/redis` keeps its options as `opts`, this one always among
  // them (undefined when not given): on unless set to false
  const opts = (client as { opts?: unknown }).opts;
  if (
    opts !== null && typeof opts === "object" &&
    "automaticDeserialization" in opts &&
    opts.automaticDeserialization !== false
  ) {
    throw new TypeError(
      "Cannot use the Upstash client: it decodes JSON replies; create it with automaticDeserialization: false",
    );
  }
  const checked = async (reply: Promise<unknown>) => {
    const value = await reply;
    const flat = Array.isArray(value) ? value : [value];
    if (flat.some((item) => item !== null && typeof item === "object")) {
      throw new TypeError(
        "Cannot use the Upstash reply: the client decoded JSON; create it with automaticDeserialization: false",
      );
    }
    return value;
  };
  return {
    eval: (script, numkeys, ...keysAndArgs) =>
      checked(client.eval(
        script,
        keysAndArgs.slice(0, numkeys),
        keysAndArgs.slice(numkeys),
      )),
    evalsha: (sha1, numkeys, ...keysAndArgs) =>
      checked(client.evalsha(
        sha1,
        keysAndArgs.slice(0, numkeys),
        keysAndArgs.slice(numkeys),
      )),
  };
}
