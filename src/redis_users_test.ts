// nodes.users() and countUsers() over 100,000 stored users, on Redis and on
// a 3-master Cluster (through ioredis and through node-redis): every user
// seen, memory that does not grow with the count (measured), no lease taken,
// while events keep flowing.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Cluster, Redis } from "ioredis";
import { createCluster } from "redis";
import { fromNodeRedis } from "../adapters/node_redis.ts";
import { Node, Nodes, type RedisLike, RedisStore } from "../mod.ts";
import {
  clusterNodes,
  clusterSkip,
  randomPrefix,
  REDIS_URL,
  redisSkip,
} from "../test_support/redis.ts";

const USERS = 100_000;
const ON_SURVEY = 1_000; // every 100th user
/** The padding of each state: all states held at once would take > 60 MB. */
const PAD = "x".repeat(300);

type Event = { from: number; text: string };

class Menu extends Node<null, Event, number, { pad: string }> {
  onEvent(): Menu {
    return new Menu({ pad: "" });
  }
}
class Survey extends Menu {}

function botOn(client: RedisLike, prefix: string) {
  return new Nodes<null, Event, number>({
    store: new RedisStore(client, { prefix }),
    nodes: { menu: Menu, survey: Survey },
    start: () => new Menu({ pad: "" }),
    shared: null,
    userId: (event) => event.from,
  });
}

/** Writes the users' states straight into Redis, 5,000 per pipeline. */
async function plant(
  admin: Redis | Cluster,
  store: RedisStore,
): Promise<void> {
  const state = (i: number) => ({
    s: JSON.stringify({
      v: 1,
      node: i % 100 === 0 ? "survey" : "menu",
      data: { pad: PAD },
    }),
    v: "planted",
  });
  for (let from = 0; from < USERS; from += 5_000) {
    const ids = Array.from({ length: 5_000 }, (_, i) => from + i);
    if (admin instanceof Cluster) {
      // a Cluster pipelines by itself (enableAutoPipelining), slot by slot
      await Promise.all(
        ids.map((i) => admin.hset(store.keys(String(i))[0], state(i))),
      );
    } else {
      const pipeline = admin.pipeline();
      for (const i of ids) pipeline.hset(store.keys(String(i))[0], state(i));
      await pipeline.exec();
    }
  }
}

/** Deletes every key of the prefix, by SCAN on each master. */
async function drop(admin: Redis | Cluster, prefix: string): Promise<void> {
  const servers = admin instanceof Cluster ? admin.nodes("master") : [admin];
  for (const server of servers) {
    let cursor = "0";
    do {
      const [next, keys] = await server.scan(
        cursor,
        "MATCH",
        `${prefix}:*`,
        "COUNT",
        1_000,
      );
      cursor = next;
      for (const key of keys) await admin.del(key);
    } while (cursor !== "0");
  }
}

/** How many users the scan replies brought, and the largest reply. */
interface Fetched {
  users: number;
  largest: number;
}

/** A client (and its masters) that counts the users in scan replies. */
function counting(client: RedisLike, fetched: Fetched): RedisLike {
  const note = (reply: unknown, args: string[]) => {
    if (Array.isArray(reply) && args.some((a) => a.endsWith(":{*}"))) {
      const users = (reply.length - 1) / 2;
      fetched.users += users;
      fetched.largest = Math.max(fetched.largest, users);
    }
    return reply;
  };
  return {
    isCluster: client.isCluster,
    eval: (script, numkeys, ...args) =>
      client.eval(script, numkeys, ...args).then((r) => note(r, args)),
    evalsha: (sha, numkeys, ...args) =>
      client.evalsha(sha, numkeys, ...args).then((r) => note(r, args)),
    ...(client.nodes
      ? {
        nodes: (role: "master") =>
          client.nodes!(role).map((node) => counting(node, fetched)),
      }
      : {}),
  };
}

/** A full garbage collection, where the runtime offers one. */
const collect: (() => void) | undefined = (() => {
  const bun = (globalThis as { Bun?: { gc(sync: boolean): void } }).Bun;
  if (bun) return () => bun.gc(true);
  const gc = (globalThis as { gc?: () => void }).gc;
  return typeof gc === "function" ? gc : undefined;
})();

async function iterateWhileEventsFlow(
  raw: RedisLike,
  admin: Redis | Cluster,
) {
  const prefix = randomPrefix("users");
  const fetched: Fetched = { users: 0, largest: 0 };
  const client = counting(raw, fetched);
  const nodes = botOn(client, prefix);
  const store = new RedisStore(client, { prefix });
  try {
    await plant(admin, store);
    // events keep flowing for users 0..99 (some on survey) meanwhile
    let flowing = true;
    let handled = 0;
    let failed = 0;
    const traffic = (async () => {
      for (let round = 0; flowing; round++) {
        const results = await Promise.allSettled(
          Array.from(
            { length: 100 },
            (_, i) => nodes.route({ from: USERS + i, text: `${round}` }),
          ),
        );
        for (const r of results) {
          if (r.status === "fulfilled") handled++;
          else failed++;
        }
      }
    })();
    const heap = () => (collect?.(), process.memoryUsage().heapUsed);
    const base = heap();
    let peak = 0;
    let seen = 0;
    let ahead = 0; // users fetched from Redis but not yet consumed, at most
    const survey: string[] = [];
    for await (const user of nodes.users({ count: 500 })) {
      seen++;
      ahead = Math.max(ahead, fetched.users - seen);
      if (user.key === "survey") survey.push(user.userId);
      if (seen % 10_000 === 0) peak = Math.max(peak, heap() - base);
    }
    const counts = await nodes.countUsers({ count: 500 });
    const onSurvey: string[] = [];
    for await (const { userId } of nodes.users({ on: ["survey"] })) {
      onSurvey.push(userId);
    }
    flowing = false;
    await traffic;
    const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
    console.log(
      `users(): ${seen} users iterated, at most ${ahead} fetched ahead (largest page ${fetched.largest}), heap grew by at most ${
        mb(peak)
      } MB${
        collect ? "" : " (no gc available: not asserted)"
      }; ${handled} events handled meanwhile, ${failed} failed`,
    );
    // each user at least once (SCAN may, rarely, yield one twice)
    assert.ok(seen >= USERS, `${seen} users seen`);
    assert.equal(new Set(survey).size, ON_SURVEY);
    assert.equal(new Set(onSurvey).size, ON_SURVEY);
    assert.ok(onSurvey.every((id) => Number(id) % 100 === 0));
    assert.ok(counts.total >= USERS);
    assert.equal(counts.nodes.get("survey"), ON_SURVEY);
    assert.ok(counts.nodes.get("menu")! >= USERS - ON_SURVEY);
    assert.equal(counts.unreadable, 0);
    // one page at a time: what is held does not depend on the count
    assert.ok(fetched.largest <= 5_000, `a page of ${fetched.largest}`);
    assert.ok(ahead < fetched.largest, `${ahead} users fetched ahead`);
    // holding every state at once would take over 60 MB of heap
    if (collect) assert.ok(peak < 24 * 2 ** 20, `heap grew by ${mb(peak)} MB`);
    assert.ok(handled > 0);
    assert.equal(failed, 0);
    // a user moved meanwhile and moved back: users() took no lease
    await nodes.user(0).to(new Menu({ pad: "" }));
  } finally {
    await drop(admin, prefix);
  }
}

const skip = await redisSkip();
const skipCluster = clusterSkip();

describe("nodes.users() over 100,000 users", () => {
  it("on Redis: all seen, bounded memory, events flowing", {
    skip,
    timeout: 300_000,
  }, async () => {
    const redis = new Redis(REDIS_URL);
    try {
      await iterateWhileEventsFlow(redis, redis);
    } finally {
      redis.disconnect();
    }
  });

  it("on a 3-master Cluster: all seen, bounded memory, events flowing", {
    skip: skipCluster,
    timeout: 300_000,
  }, async () => {
    const cluster = new Cluster(clusterNodes);
    const admin = new Cluster(clusterNodes, { enableAutoPipelining: true });
    try {
      await iterateWhileEventsFlow(cluster, admin);
      assert.equal(cluster.nodes("master").length, 3);
    } finally {
      cluster.disconnect();
      admin.disconnect();
    }
  });

  it(
    "on a 3-master Cluster through node-redis: all seen, bounded memory, events flowing",
    {
      skip: skipCluster,
      timeout: 300_000,
    },
    async () => {
      const cluster = createCluster({
        rootNodes: clusterNodes.map(({ host, port }) => ({
          url: `redis://${host}:${port}`,
        })),
      });
      await cluster.connect();
      const admin = new Cluster(clusterNodes, { enableAutoPipelining: true });
      try {
        const redis = fromNodeRedis(cluster);
        await iterateWhileEventsFlow(redis, admin);
        assert.equal(redis.nodes?.("master").length, 3);
      } finally {
        await cluster.close();
        admin.disconnect();
      }
    },
  );
});
