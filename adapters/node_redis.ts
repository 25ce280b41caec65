/**
 * Use a node-redis (`redis` v5) client as the `RedisLike` of `RedisStore`.
 *
 * This module declares the few methods it calls instead of importing
 * node-redis, so it adds no dependency.
 *
 * @example
 * ```ts ignore
 * // ignored: connect() needs a Redis server (see fromNodeRedis for a run)
 * import { createClient } from "redis";
 * import { RedisStore } from "@botnodes/core";
 * import { fromNodeRedis } from "@botnodes/core/node-redis";
 *
 * const client = createClient({ url: process.env.REDIS_URL });
 * // node-redis emits "error" while Redis is unreachable: without a listener,
 * // Node ends the process; with one, events fail with StoreError meanwhile
 * // and the client reconnects by itself
 * client.on("error", (error) => console.warn("Redis:", error.message));
 * await client.connect();
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
 * A cluster also has `masters` and `nodeClient`, through which
 * `RedisStore.scan` (so `nodes.users()` and `nodes.countUsers()`) visits
 * every master.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createClient, createCluster } from "redis";
 * import { fromNodeRedis, type NodeRedisLike } from "@botnodes/core/node-redis";
 *
 * // neither connects before its connect()
 * const client: NodeRedisLike = createClient();
 * const cluster: NodeRedisLike = createCluster({ rootNodes: [] });
 * assert.equal(fromNodeRedis(client).isCluster, false);
 * assert.equal(fromNodeRedis(cluster).isCluster, true);
 * ```
 */
export interface NodeRedisLike {
  /** `EVAL`. */
  eval(script: string, options: NodeRedisEvalOptions): Promise<unknown>;
  /** `EVALSHA`. */
  evalSha(sha1: string, options: NodeRedisEvalOptions): Promise<unknown>;
  /** A cluster's masters (`createCluster`), for `nodeClient`. */
  readonly masters?: readonly unknown[];
  /** A cluster's client of one of its `masters`, connected. */
  nodeClient?(node: unknown): Promise<NodeRedisLike>;
  /**
   * A cluster's table of slots (`createCluster`): each slot's master, for
   * `RedisLike.masterOf`.
   */
  readonly slots?: readonly ({ readonly master?: unknown } | undefined)[];
}

/**
 * Adapts a node-redis client (from `createClient` or `createCluster`, RESP2,
 * the default) to `RedisLike`. A cluster is recognised (`isCluster`), gets
 * `masterOf` (a client of the master of a slot, from its table of slots, so
 * that `RedisStore` sends the users of one master as one call on it) and
 * `nodes("master")`: a `RedisLike` for each of the cluster's `masters`
 * (through its `nodeClient`), so that `RedisStore.scan` visits every master
 * as it does on an ioredis `Cluster`.
 *
 * Give it a client that answers strings: one from `withTypeMapping` that maps
 * bulk strings to `Buffer`s makes `RedisStore` fail each call that reads a
 * stored value with a `StoreError` saying so (the state stays as it was); a
 * new user's first event, which reads none, is stored.
 *
 * @param client A connected node-redis client.
 * @returns The client as a `RedisLike`.
 *
 * @example What the adapter sends, on a fake client
 * ```ts
 * import assert from "node:assert/strict";
 * import { RedisStore } from "@botnodes/core";
 * import {
 *   fromNodeRedis,
 *   type NodeRedisEvalOptions,
 *   type NodeRedisLike,
 * } from "@botnodes/core/node-redis";
 *
 * // records each call and answers as an empty Redis
 * const calls: NodeRedisEvalOptions[] = [];
 * const record = (_script: string, options: NodeRedisEvalOptions) => {
 *   calls.push(options);
 *   return Promise.resolve(null);
 * };
 * const client: NodeRedisLike = { eval: record, evalSha: record };
 *
 * const redis = fromNodeRedis(client);
 * assert.equal(redis.isCluster, false);
 * await redis.evalsha("<sha1>", 2, "key1", "key2", "arg");
 * assert.deepEqual(calls, [{ keys: ["key1", "key2"], arguments: ["arg"] }]);
 *
 * const store = new RedisStore(redis, { prefix: "mybot" });
 * assert.equal(await store.get("42"), undefined);
 * ```
 *
 * @example A cluster's masters, for a scan of every one
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCluster } from "redis";
 * import { fromNodeRedis } from "@botnodes/core/node-redis";
 *
 * // not connected: it knows no masters yet (connect it before use:
 * // node-redis sends nothing on a client that is not connected)
 * const redis = fromNodeRedis(createCluster({ rootNodes: [] }));
 * assert.deepEqual(redis.nodes?.("master"), []);
 * ```
 */
export function fromNodeRedis(client: NodeRedisLike): RedisLike {
  const options = (numkeys: number, keysAndArgs: string[]) => ({
    keys: keysAndArgs.slice(0, numkeys),
    arguments: keysAndArgs.slice(numkeys),
  });
  // a cluster from createCluster has its masters and slots; a client has not
  const isCluster = "masters" in client && "slots" in client;
  const redis: RedisLike = {
    isCluster,
    eval: (script, numkeys, ...keysAndArgs) =>
      client.eval(script, options(numkeys, keysAndArgs)),
    evalsha: (sha1, numkeys, ...keysAndArgs) =>
      client.evalSha(sha1, options(numkeys, keysAndArgs)),
  };
  if (!isCluster || typeof client.nodeClient !== "function") return redis;
  const cluster = client as Required<NodeRedisLike>;
  // one RedisLike per master (node-redis makes new ones on a new topology)
  const clients = new WeakMap<object, RedisLike>();
  const clientOf = (master: object) => {
    let found = clients.get(master);
    if (found === undefined) {
      found = fromNodeRedis(masterClient(cluster, master));
      clients.set(master, found);
    }
    return found;
  };
  return {
    ...redis,
    nodes: () => cluster.masters.map((master) => clientOf(master as object)),
    masterOf: (slot) => {
      const master = cluster.slots[slot]?.master;
      return typeof master === "object" && master !== null
        ? clientOf(master)
        : undefined;
    },
  };
}

/**
 * One master of a cluster as a client: each call goes to the master's own
 * client, which node-redis connects on first use (and again after a
 * topology change).
 */
function masterClient(
  cluster: Required<NodeRedisLike>,
  master: unknown,
): NodeRedisLike {
  return {
    eval: (script, options) =>
      cluster.nodeClient(master).then((node) => node.eval(script, options)),
    evalSha: (sha1, options) =>
      cluster.nodeClient(master).then((node) => node.evalSha(sha1, options)),
  };
}
