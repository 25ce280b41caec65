// Redis for tests and benchmarks: the shared server (REDIS_URL), servers of
// their own on loopback ports, a Cluster (REDIS_CLUSTER), a store harness for
// the contract suite, and command counts. Importing it connects to nothing:
// each test file asks `redisSkip()` / `clusterSkip()` itself.
import process from "node:process";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Cluster, Redis, type RedisOptions } from "ioredis";
import { type RedisLike, RedisStore, type StateStore } from "../mod.ts";
import type { HarnessOptions, StoreHarness } from "../store/mod.ts";
import { delegate } from "./delegate.ts";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const inCi = process.env.CI === "true" || process.env.CI === "1";

/** A unique key prefix for one test run. */
export function randomPrefix(name = "test"): string {
  return `botnodes-${name}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Resolves once a Redis at `url` answers PING, or rejects at `deadline`. */
export async function ping(
  url: string,
  options: { deadline?: number; tls?: RedisOptions["tls"] } = {},
): Promise<void> {
  for (;;) {
    const client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      ...(options.tls ? { tls: options.tls } : {}),
    });
    client.on("error", () => {}); // refused while a server starts
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (error) {
      if (Date.now() >= (options.deadline ?? 0)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      client.disconnect();
    }
  }
}

/**
 * The skip option for Redis tests: `false` when Redis answers at REDIS_URL,
 * a reason when it does not. In CI an unreachable Redis throws: the Redis
 * tests must never be skipped there. Call it with a top-level await.
 */
export async function redisSkip(url = REDIS_URL): Promise<string | false> {
  try {
    await ping(url);
    return false;
  } catch (error) {
    if (inCi) {
      throw new Error(`Redis is unreachable at ${url} in CI`, { cause: error });
    }
    console.warn(`Redis is unreachable at ${url}: skipping the Redis tests`);
    return `Redis is unreachable at ${url}`;
  }
}

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
  const tracked = (real: RedisStore): StateStore =>
    delegate(real, {
      begin: (id, options) => (users.add(id), real.begin(id, options)),
      get: (id) => (users.add(id), real.get(id)),
      schedule: (id, due) => (users.add(id), real.schedule(id, due)),
    });
  return {
    store: tracked(real),
    twin: () => tracked(make()),
    async expireLeases() {
      for (const id of users) await admin.del(real.keys(id)[1]);
    },
    async expireStates() {
      for (const id of users) {
        for (const key of [real.keys(id)[0]]) {
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
      await admin.del(`${prefix}:{}:timers`);
      for (const id of users) {
        const keys = real.keys(id);
        const foreign = await admin.keys(`${keys[0]}*:foreign:*`);
        await admin.del(...keys, ...foreign);
      }
      await close();
    },
  };
}

/** The nodes of a Redis Cluster for tests: REDIS_CLUSTER="host:port,...". */
export const clusterNodes: { host: string; port: number }[] =
  (process.env.REDIS_CLUSTER ?? "").split(",").filter(Boolean).map((node) => {
    const [host, port] = node.split(":");
    return { host: host!, port: Number(port) };
  });

/**
 * The skip option for Cluster tests: `false` when REDIS_CLUSTER is set, a
 * reason when not. In CI a missing Cluster throws: .ci/run starts one.
 */
export function clusterSkip(): string | false {
  if (clusterNodes.length > 0) return false;
  if (inCi) {
    throw new Error(
      "REDIS_CLUSTER is not set in CI: .ci/run starts a cluster and sets it",
    );
  }
  return "REDIS_CLUSTER is not set (scripts/redis_cluster.sh starts one)";
}

/**
 * Calls per command since the last CONFIG RESETSTAT, without the INFO and
 * CONFIG calls that measure them.
 */
export async function commandCalls(
  admin: Redis,
): Promise<Record<string, number>> {
  const info = await admin.info("commandstats");
  const calls: Record<string, number> = {};
  for (
    const [, name, count] of info.matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)
  ) {
    if (name === "info" || name === "config") continue;
    calls[name!] = Number(count);
  }
  return calls;
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port"))
      );
    });
  });
}

/** A redis-server of the test's own, on a loopback port. */
export interface OwnRedis {
  port: number;
  url: string;
  /** Stops the server (SIGKILL when `hard`); resolves once it exited. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

/**
 * Starts a redis-server on a free loopback port, with extra arguments (where
 * `%PORT%` stands for the port, e.g. for `--tls-port`). `tls` is how to reach
 * a server that only speaks TLS.
 */
export async function startRedis(
  args: string[] = [],
  options: { tls?: { ca: string } } = {},
): Promise<OwnRedis> {
  const port = await freePort();
  const scheme = options.tls ? "rediss" : "redis";
  const url = `${scheme}://127.0.0.1:${port}`;
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<void> = Promise.resolve();
  const start = async () => {
    child = spawn("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      ...args.map((arg) => arg.replaceAll("%PORT%", String(port))),
    ], { stdio: "ignore" });
    const proc = child;
    exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    await ping(url, {
      deadline: Date.now() + 10_000,
      ...(options.tls ? { tls: options.tls } : {}),
    });
  };
  await start();
  return {
    port,
    url,
    start,
    async stop(hard = false) {
      child?.kill(hard ? "SIGKILL" : "SIGTERM");
      await exited;
    },
  };
}

/** A Redis Cluster of the test's own: masters on loopback ports. */
export interface OwnCluster {
  /** The masters, in order: the first serves the lowest slots. */
  nodes: { host: string; port: number }[];
  /** A client of each master, in the same order. */
  admins: Redis[];
  /** Each master's node id, in the same order. */
  ids: string[];
  /** Stops every server. */
  stop(): Promise<void>;
}

/**
 * Starts a Redis Cluster of `masters` masters (no replicas) on free
 * loopback ports, the slots split evenly in order, and resolves once every
 * master sees the cluster as `ok`. For tests that change the Cluster itself
 * (moving a slot), which must not disturb the shared one (REDIS_CLUSTER).
 */
export async function startCluster(masters = 2): Promise<OwnCluster> {
  const servers: OwnRedis[] = [];
  const dir = mkdtempSync(join(tmpdir(), "botnodes-cluster-"));
  try {
    const buses: number[] = [];
    for (let i = 0; i < masters; i++) {
      const bus = await freePort();
      buses.push(bus);
      servers.push(
        await startRedis([
          "--cluster-enabled",
          "yes",
          "--cluster-port",
          String(bus),
          "--cluster-config-file",
          `${dir}/nodes-%PORT%.conf`,
        ]),
      );
    }
    const admins = servers.map((server) => new Redis(server.url));
    const per = Math.ceil(16_384 / masters);
    for (const [i, admin] of admins.entries()) {
      await admin.call(
        "CLUSTER",
        "ADDSLOTSRANGE",
        String(i * per),
        String(Math.min(16_383, (i + 1) * per - 1)),
      );
      if (i > 0) {
        await admin.call(
          "CLUSTER",
          "MEET",
          "127.0.0.1",
          String(servers[0]!.port),
          String(buses[0]),
        );
      }
    }
    const ids = await Promise.all(
      admins.map(async (admin) => String(await admin.call("CLUSTER", "MYID"))),
    );
    // the servers learn of each other over their bus: wait for it
    const deadline = Date.now() + 20_000;
    for (;;) {
      const states = await Promise.all(admins.map(async (admin) => {
        const info = String(await admin.call("CLUSTER", "INFO"));
        const known = String(await admin.call("CLUSTER", "NODES"))
          .trim().split("\n").length;
        return info.includes("cluster_state:ok") && known === masters;
      }));
      if (states.every(Boolean)) break;
      if (Date.now() > deadline) throw new Error("the Cluster did not form");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return {
      nodes: servers.map(({ port }) => ({ host: "127.0.0.1", port })),
      admins,
      ids,
      async stop() {
        for (const admin of admins) admin.disconnect();
        await Promise.all(servers.map((server) => server.stop()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
