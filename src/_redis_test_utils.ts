// Redis for tests: the shared server (REDIS_URL), servers of their own on
// loopback ports, and a store harness for the contract suite.
import process from "node:process";
import { type Cluster, Redis } from "ioredis";
import type { HarnessOptions, StoreHarness } from "./store_contract.ts";
import { RedisStore } from "./redis_store.ts";
import type { StateStore } from "./store.ts";
import type { RedisLike } from "./redis_store.ts";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const inCi = process.env.CI === "true" || process.env.CI === "1";

/** A unique key prefix for one test run. */
export function randomPrefix(name = "test"): string {
  return `botnodes-${name}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Whether Redis answers at REDIS_URL. In CI an unreachable Redis throws: the
 * Redis tests must never be skipped there.
 */
export async function redisAvailable(url = REDIS_URL): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {}); // reported below
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch (error) {
    if (inCi) {
      throw new Error(`Redis is unreachable at ${url} in CI`, { cause: error });
    }
    console.warn(`Redis is unreachable at ${url}: skipping the Redis tests`);
    return false;
  } finally {
    client.disconnect();
  }
}

/** The skip option for Redis tests: a reason when Redis is not there. */
export const skipRedis: string | false = (await redisAvailable())
  ? false
  : `Redis is unreachable at ${REDIS_URL}`;

/**
 * A store harness on a Redis client: users touched are tracked so that their
 * leases can be expired and their keys deleted afterwards.
 */
export function redisHarness(
  redis: RedisLike,
  admin: Redis | Cluster,
  options: HarnessOptions,
  close: () => Promise<void> = () => Promise.resolve(),
  batch = false,
  prefix = randomPrefix(),
): StoreHarness {
  const ttl = options.ttl;
  const make = () =>
    new RedisStore(redis, {
      prefix,
      wait: options.wait,
      batch,
      ...(ttl === undefined ? {} : { ttl }),
    });
  const real = make();
  const users = new Set<string>();
  const tracked = (real: RedisStore): StateStore => ({
    begin: (id, options) => (users.add(id), real.begin(id, options)),
    get: (id) => (users.add(id), real.get(id)),
    commit: (lease, state, options) => real.commit(lease, state, options),
    release: (lease) => real.release(lease),
    renew: (lease) => real.renew(lease),
    aside: (id) => real.aside(id),
    timing: real.timing,
  });
  return {
    store: tracked(real),
    twin: () => tracked(make()),
    async expireLeases() {
      for (const id of users) await admin.del(real.keys(id)[1]);
    },
    async expireStates() {
      for (const id of users) {
        const [state, , aside, events] = real.keys(id);
        for (const key of [state, aside, events]) {
          const pttl = await admin.pttl(key);
          if (pttl !== -2 && !(pttl > 0 && pttl <= ttl!)) {
            throw new Error(`${key} has PTTL ${pttl}, not within ${ttl}`);
          }
          if (pttl > 0 && pttl < ttl! - 5_000) {
            throw new Error(`the last commit did not refresh ${key}: ${pttl}`);
          }
          await admin.del(key);
        }
      }
    },
    async close() {
      for (const id of users) {
        const keys = real.keys(id);
        const foreign = await admin.keys(`${keys[0]}*:foreign:*`);
        await admin.del(...keys, ...foreign);
      }
      await close();
    },
  };
}

export {
  freePort,
  type OwnRedis,
  startRedis,
  waitForPing,
} from "./_redis_server.ts";

/** The nodes of a Redis Cluster for tests: REDIS_CLUSTER="host:port,...". */
export const clusterNodes: { host: string; port: number }[] =
  (process.env.REDIS_CLUSTER ?? "").split(",").filter(Boolean).map((node) => {
    const [host, port] = node.split(":");
    return { host: host!, port: Number(port) };
  });

/** The skip option for Cluster tests; in CI a missing cluster throws. */
export const skipCluster: string | false = clusterNodes.length > 0
  ? false
  : inCi
  ? (() => {
    throw new Error(
      "REDIS_CLUSTER is not set in CI: .ci/run starts a cluster and sets it",
    );
  })()
  : "REDIS_CLUSTER is not set (scripts/redis_cluster.sh starts one)";
