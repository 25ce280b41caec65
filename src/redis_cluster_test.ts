// RedisStore on an ioredis Cluster: the contract, and users spread over slots.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "ioredis";
import { storeContract } from "./store_contract.ts";
import {
  clusterNodes,
  clusterSkip,
  randomPrefix,
  redisHarness,
} from "../test_support/redis.ts";
import { RedisStore } from "./redis_store.ts";
import type { RedisLike } from "./redis_store.ts";
import { appendBot, appended } from "../test_support/append_bot.ts";
import { keySlot } from "./redis_keys.ts";

/** What a client was asked: each call's users (its keys / 2), by kind. */
interface Calls {
  /** Calls keyed by one user's keys. */
  keyed: number;
  /** Calls of a script spread over a master's slots, and their users. */
  spread: number[];
  /** Spread calls refused as a whole (a redirection, NOSCRIPT). */
  refused: number;
}

/** A client's part that `counted` wraps: its script calls. */
type Scripts = Pick<RedisLike, "eval" | "evalsha">;

/**
 * A Cluster client as a plain RedisLike that counts its script calls and
 * those sent to its masters' own connections; `masterOf` picks the master
 * of a slot among those wrapped connections (by default as the client's
 * table of slots says); `fake` may stand in for a server.
 */
function counted(
  cluster: Cluster,
  masterOf?: (
    slot: number,
    masters: Map<string, RedisLike>,
  ) => RedisLike | undefined,
  fake: (client: Scripts) => Scripts = (client) => client,
): { client: RedisLike; calls: Calls } {
  const calls: Calls = { keyed: 0, spread: [], refused: 0 };
  // the calls answered (not those answered NOSCRIPT, say)
  const count = async (
    numkeys: number,
    keysAndArgs: string[],
    reply: Promise<unknown>,
  ) => {
    // a spread call: one key, the number of keys, then the first key again
    const spread = numkeys === 1 && keysAndArgs[2] === keysAndArgs[0];
    let answer;
    try {
      answer = await reply;
    } catch (error) {
      if (spread) calls.refused++;
      throw error;
    }
    if (spread) calls.spread.push(Number(keysAndArgs[1]) / 2);
    else if (numkeys === 2) calls.keyed++;
    return answer;
  };
  const wrap = (target: Scripts): Scripts => {
    const server = fake(target);
    return {
      eval: (script, numkeys, ...keysAndArgs) =>
        count(
          numkeys,
          keysAndArgs,
          server.eval(script, numkeys, ...keysAndArgs),
        ),
      evalsha: (sha, numkeys, ...keysAndArgs) =>
        count(
          numkeys,
          keysAndArgs,
          server.evalsha(sha, numkeys, ...keysAndArgs),
        ),
    };
  };
  const masters = new Map<string, RedisLike>();
  for (const node of cluster.nodes("master")) {
    masters.set(`${node.options.host}:${node.options.port}`, wrap(node));
  }
  const client: RedisLike = {
    isCluster: true,
    ...wrap(cluster),
    masterOf: (slot) =>
      masterOf
        ? masterOf(slot, masters)
        : masters.get(cluster.slots[slot]?.[0] ?? ""),
  };
  return { client, calls };
}

/**
 * A store on `client`, and one of the same prefix on the Cluster itself,
 * whose calls are not counted, to check what the first one wrote.
 */
function stores(client: RedisLike, cluster: Cluster, name: string) {
  const prefix = randomPrefix(name);
  return {
    store: new RedisStore(client, { prefix }),
    check: new RedisStore(cluster, { prefix }),
  };
}

/**
 * Routes `rounds` events to each user at once, round by round, then checks
 * each user's state through `check` (a store of the same prefix whose
 * calls are not counted).
 */
async function routeAll(
  store: RedisStore,
  check: RedisStore,
  users: string[],
  rounds: string[],
): Promise<void> {
  let handled = 0;
  const bot = appendBot(store, () => void handled++);
  for (const id of rounds) {
    await Promise.all(users.map((user) => bot.route({ user, id })));
  }
  // no handler ran twice (as after a commit refused)
  assert.equal(handled, users.length * (rounds.length - 1));
  for (const user of users) {
    assert.deepEqual(await appended(check, user), rounds, user);
  }
}

const skipCluster = clusterSkip();

if (!skipCluster) {
  storeContract("RedisStore on an ioredis Cluster", (options) => {
    const cluster = new Cluster(clusterNodes);
    return Promise.resolve(
      redisHarness(cluster, cluster, options, async () => {
        await cluster.quit();
      }),
    );
  }, { describe, it });
}

describe("RedisStore on an ioredis Cluster", { skip: skipCluster }, () => {
  it("routes users whose keys fall on every master", async () => {
    const cluster = new Cluster(clusterNodes);
    const client: RedisLike = cluster;
    const store = new RedisStore(client, { prefix: randomPrefix("cluster") });
    try {
      const bot = appendBot(store);
      const users = Array.from({ length: 30 }, (_, i) => `user:${i}`);
      for (const id of ["a", "b", "c"]) {
        await Promise.all(users.map((user) => bot.route({ user, id })));
      }
      const owners = new Set<string>();
      for (const user of users) {
        assert.deepEqual(await appended(store, user), ["a", "b", "c"]);
        const slot = Number(
          await cluster.cluster("KEYSLOT", store.keys(user)[0]),
        );
        const lease = Number(
          await cluster.cluster("KEYSLOT", store.keys(user)[1]),
        );
        assert.equal(lease, slot);
        owners.add(String(cluster.slots[slot]?.[0]));
        await cluster.del(store.keys(user)[0]);
      }
      assert.equal(owners.size, 3, "users spread over the three masters");
    } finally {
      await cluster.quit();
    }
  });

  it("sends the users of one master as one call", async () => {
    const cluster = new Cluster(clusterNodes);
    await cluster.cluster("INFO"); // connected: the table of slots is known
    const { client, calls } = counted(cluster);
    const { store, check } = stores(client, cluster, "spread");
    try {
      const users = Array.from({ length: 90 }, (_, i) => `user:${i}`);
      await routeAll(store, check, users, ["a", "b"]);
      const spreadUsers = calls.spread.reduce((sum, n) => sum + n, 0);
      assert.ok(calls.spread.every((n) => n > 1), "a spread call has users");
      // 2 events x 2 scripts x 90 users, nearly all of them in spread calls
      assert.equal(spreadUsers + calls.keyed, 360);
      assert.ok(spreadUsers > 300, `${spreadUsers} of 360 in spread calls`);
      assert.ok(
        calls.spread.length + calls.keyed < 120,
        `${calls.spread.length} + ${calls.keyed} calls for 360 users' scripts`,
      );
    } finally {
      await cluster.quit();
    }
  });

  for (const first of ["on", "not on"]) {
    it(`resends alone the users whose slot is not on that master (the first user's ${first} it)`, async () => {
      const cluster = new Cluster(clusterNodes);
      await cluster.cluster("INFO");
      const users = Array.from({ length: 30 }, (_, i) => `user:${i}`);
      const prefix = randomPrefix("moved");
      const check = new RedisStore(cluster, { prefix });
      const masterOfUser = (user: string) =>
        cluster.slots[keySlot(check.keys(user)[0])]?.[0];
      // a table of slots gone stale: every slot on one master, which serves
      // the first user's keys (so each part not on it fails there), or not
      // (so the whole call is redirected)
      const { client, calls } = counted(cluster, (_slot, masters) => {
        const named = [...masters.keys()].find((name) =>
          (name === masterOfUser(users[0]!)) === (first === "on")
        );
        return masters.get(named!);
      });
      const store = new RedisStore(client, { prefix });
      try {
        await routeAll(store, check, users, ["a", "b", "c"]);
        assert.equal(new Set(users.map(masterOfUser)).size, 3);
        // the parts of users on the other masters went again alone
        const alone = calls.keyed;
        assert.ok(alone >= 2 * 3 * 10, `${alone} calls alone`);
        if (first === "on") assert.ok(calls.spread.length > 0);
        else assert.ok(calls.refused > 0, "a whole call was redirected");
      } finally {
        await cluster.quit();
      }
    });
  }

  it("sends alone the users whose master the client cannot name", async () => {
    const cluster = new Cluster(clusterNodes);
    await cluster.cluster("INFO");
    // undefined, a throw, and what is no client, for a third of the slots
    const { client, calls } = counted(cluster, (slot) => {
      if (slot % 3 === 0) return undefined;
      if (slot % 3 === 1) throw new Error("no table");
      return "7000" as unknown as RedisLike;
    });
    const { store, check } = stores(client, cluster, "unnamed");
    try {
      const users = Array.from({ length: 30 }, (_, i) => `user:${i}`);
      await routeAll(store, check, users, ["a", "b"]);
      assert.equal(calls.spread.length, 0);
      assert.equal(calls.keyed, 2 * 2 * 30);
    } finally {
      await cluster.quit();
    }
  });

  it("sends each user alone when the server runs no flagged script", async () => {
    const cluster = new Cluster(clusterNodes);
    await cluster.cluster("INFO");
    let refused = 0;
    // a Redis before 7: a script with flags does not compile, and EVALSHA
    // of a script never loaded answers NOSCRIPT (so the store EVALs it)
    const { client, calls } = counted(cluster, undefined, (server) => ({
      evalsha: () => Promise.reject(new Error("NOSCRIPT No matching")),
      eval: (script, ...rest) => {
        if (!script.startsWith("#!")) return server.eval(script, ...rest);
        refused++;
        return Promise.reject(
          new Error(
            "ERR Error compiling script (new function): user_script:1: unexpected symbol near '#'",
          ),
        );
      },
    }));
    const { store, check } = stores(client, cluster, "old");
    try {
      const users = Array.from({ length: 30 }, (_, i) => `user:${i}`);
      await routeAll(store, check, users, ["a", "b"]);
      assert.ok(refused >= 1);
      assert.equal(calls.spread.length, 0);
      const tried = refused;
      await routeAll(store, check, users.map((user) => `${user}:again`), ["a"]);
      assert.equal(refused, tried, "no spread call once refused");
    } finally {
      await cluster.quit();
    }
  });
});
