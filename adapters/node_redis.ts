/**
 * Use a node-redis (`redis` v5) client as the `RedisLike` of `RedisStore`.
 *
 * This module declares the few methods it calls instead of importing
 * node-redis, so it adds no dependency.
 *
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import { RedisStore } from "@botnodes/core";
 * import { fromNodeRedis } from "@botnodes/core/node-redis";
 *
 * const client = await createClient({ url: process.env.REDIS_URL }).connect();
 * const store = new RedisStore(fromNodeRedis(client), { prefix: "mybot" });
 * ```
 *
 * @module
 */

import type { RedisLike } from "../mod.ts";

/** The options node-redis takes for `EVAL` and `EVALSHA`. */
export interface NodeRedisEvalOptions {
  /** The keys the script touches. */
  keys: string[];
  /** The other arguments. */
  arguments: string[];
}

/**
 * The methods of a node-redis client (or cluster) that the adapter calls.
 *
 * @example
 * ```ts ignore
 * import { createClient } from "redis";
 * import type { NodeRedisLike } from "@botnodes/core/node-redis";
 *
 * const client: NodeRedisLike = createClient();
 * ```
 */
export interface NodeRedisLike {
  /** `EVAL`. */
  eval(script: string, options: NodeRedisEvalOptions): Promise<unknown>;
  /** `EVALSHA`. */
  evalSha(sha1: string, options: NodeRedisEvalOptions): Promise<unknown>;
}

/**
 * Adapts a node-redis client (from `createClient` or `createCluster`, RESP2,
 * the default) to `RedisLike`. A cluster is recognised (`isCluster`), so
 * that `RedisStore` refuses to batch on it.
 *
 * @param client A connected node-redis client.
 * @returns The client as a `RedisLike`.
 *
 * @example
 * ```ts ignore
 * const store = new RedisStore(fromNodeRedis(client));
 * ```
 */
export function fromNodeRedis(client: NodeRedisLike): RedisLike {
  const options = (numkeys: number, keysAndArgs: string[]) => ({
    keys: keysAndArgs.slice(0, numkeys),
    arguments: keysAndArgs.slice(numkeys),
  });
  // a cluster from createCluster has its masters and slots; a client has not
  const isCluster = "masters" in client && "slots" in client;
  return {
    isCluster,
    eval: (script, numkeys, ...keysAndArgs) =>
      client.eval(script, options(numkeys, keysAndArgs)),
    evalsha: (sha1, numkeys, ...keysAndArgs) =>
      client.evalSha(sha1, options(numkeys, keysAndArgs)),
  };
}
