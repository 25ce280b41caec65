/**
 * Use Bun's built-in Redis client (`RedisClient` from `"bun"`) as the
 * `RedisLike` of `RedisStore`, on Bun.
 *
 * This module declares the one method it calls (`send`) instead of importing
 * `"bun"`, so it adds no dependency and type-checks on every runtime.
 *
 * @example
 * ```ts ignore
 * import { RedisClient } from "bun";
 * import { RedisStore } from "@botnodes/core";
 * import { fromBunRedis } from "@botnodes/core/bun-redis";
 *
 * const client = new RedisClient(process.env.REDIS_URL);
 * const store = new RedisStore(fromBunRedis(client), { prefix: "mybot" });
 * ```
 *
 * @module
 */

import type { RedisLike } from "../mod.ts";

/**
 * The method of Bun's `RedisClient` that the adapter calls.
 *
 * @example
 * ```ts ignore
 * import { RedisClient } from "bun";
 * import type { BunRedisLike } from "@botnodes/core/bun-redis";
 *
 * const client: BunRedisLike = new RedisClient("redis://127.0.0.1:6379");
 * ```
 */
export interface BunRedisLike {
  /** Sends any command with its arguments; resolves to the decoded reply. */
  send(command: string, args: string[]): Promise<unknown>;
  /** Whether the client is connected now. */
  readonly connected?: boolean | undefined;
  /** Connects the client (again, once it gave up reconnecting). */
  connect?(): Promise<unknown>;
}

/**
 * Adapts Bun's `RedisClient` (a standalone Redis: Bun's client has no
 * Cluster support) to `RedisLike`. `RedisStore` coalesces the scripts of the
 * users of one event-loop turn into one call on it, as on any standalone
 * client. `RedisStore.scan` (`nodes.users()`, `nodes.countUsers()`) works
 * as on any standalone client: one script call per page, `SCAN` run inside
 * it; the adapter has no `nodes()`, which only a Cluster needs.
 *
 * Bun's client gives up reconnecting after `maxRetries` attempts (about half
 * a minute of outage with its defaults) and stays closed; a call that fails
 * on a closed client makes the adapter call its `connect()` again, so the
 * bot recovers by itself once Redis is back, as with ioredis. The adapter
 * cannot tell a client you closed from one that gave up: `close()` it after
 * the store's last call (a later call would connect it again).
 *
 * @param client A Bun `RedisClient`; it connects on its first command.
 * @returns The client as a `RedisLike`.
 *
 * @example
 * ```ts ignore
 * const store = new RedisStore(fromBunRedis(new RedisClient(url)));
 * ```
 */
export function fromBunRedis(client: BunRedisLike): RedisLike {
  let connecting: Promise<unknown> | undefined;
  // Bun's client stops reconnecting after `maxRetries` (an outage of about
  // half a minute with its defaults) and then fails every command: a call
  // that fails on a client left unconnected connects it again, so that the
  // calls after it work once Redis is back
  const reconnect = (error: unknown) => {
    if (
      client.connected === false && connecting === undefined &&
      typeof client.connect === "function"
    ) {
      connecting = client.connect().then(
        () => connecting = undefined,
        () => connecting = undefined,
      );
    }
    throw error;
  };
  const command = (
    name: string,
    scriptOrSha: string,
    numkeys: number,
    keysAndArgs: string[],
  ) =>
    client.send(name, [scriptOrSha, String(numkeys), ...keysAndArgs]).catch(
      reconnect,
    );
  return {
    isCluster: false,
    eval: (script, numkeys, ...keysAndArgs) =>
      command("EVAL", script, numkeys, keysAndArgs),
    evalsha: (sha1, numkeys, ...keysAndArgs) =>
      command("EVALSHA", sha1, numkeys, keysAndArgs),
  };
}
