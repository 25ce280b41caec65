/**
 * Use an `@upstash/redis` client (Redis over HTTP: Deno Deploy, edge
 * runtimes, serverless) as the `RedisLike` of `RedisStore`.
 *
 * This module declares the few methods it calls instead of importing
 * `@upstash/redis`, so it adds no dependency.
 *
 * @example
 * ```ts ignore
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
 * ```ts ignore
 * import { Redis } from "@upstash/redis";
 * import type { UpstashLike } from "@botnodes/core/upstash";
 *
 * const client: UpstashLike = new Redis({ url, token, automaticDeserialization: false });
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
 * states (JSON text) would come back as objects. A reply that shows this is
 * refused with a `TypeError` that says so.
 *
 * @param client An `@upstash/redis` client made with
 * `automaticDeserialization: false`.
 * @returns The client as a `RedisLike`.
 *
 * @example
 * ```ts ignore
 * const store = new RedisStore(fromUpstash(redis));
 * ```
 */
export function fromUpstash(client: UpstashLike): RedisLike {
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
