// RedisStore on a Cluster whose slot moves from one master to another while
// events run: the users of one master share a call, and that call must not
// take the lease of a user whose keys the old master still holds. A Cluster
// of the test's own (2 masters), since the test moves a slot.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "ioredis";
import { createCluster } from "redis";
import { fromNodeRedis } from "../adapters/node_redis.ts";
import { type RedisLike, RedisStore } from "./redis_store.ts";
import { keySlot } from "./redis_keys.ts";
import { LeaseTimeoutError, StoreError } from "./errors.ts";
import {
  type OwnCluster,
  randomPrefix,
  redisSkip,
  startCluster,
} from "../test_support/redis.ts";

const skipRedis = await redisSkip();

describe("RedisStore on a Cluster moving a slot", { skip: skipRedis }, () => {
  let own: OwnCluster;
  before(async () => {
    own = await startCluster(2);
  });
  after(async () => {
    await own?.stop();
  });

  // the slots moved to the second master so far
  const moved = new Set<number>();
  for (const kind of ["ioredis", "node-redis"] as const) {
    it(`never gives a user's lease twice while the slot moves (${kind})`, async () => {
      const source = own.admins[0]!;
      const target = own.admins[1]!;
      const [sourceId, targetId] = own.ids;
      const prefix = randomPrefix("moving");
      // this process coalesces (its calls to the masters spied on); another
      // one holds a user's lease
      const { client, spread, close } = await spied(kind, own.nodes);
      const there = new Cluster(own.nodes);
      const store = new RedisStore(client, { prefix });
      const other = new RedisStore(there, { prefix, batch: false });
      try {
        // two users whose keys share one slot of the first master
        const bySlot = new Map<number, string>();
        let a = "";
        let b = "";
        for (let i = 0; !b; i++) {
          const slot = keySlot(store.keys(`u${i}`)[0]);
          if (slot >= 8_192 || moved.has(slot)) continue;
          const first = bySlot.get(slot);
          if (first === undefined) bySlot.set(slot, `u${i}`);
          else [a, b] = [first, `u${i}`];
        }
        const slot = keySlot(store.keys(a)[0]);
        moved.add(slot);
        for (const user of [a, b]) {
          const lease = await store.begin(user);
          await store.commit(lease, JSON.stringify([`${user}0`]));
        }
        const held = await other.begin(b);
        assert.equal(held.state, JSON.stringify([`${b}0`]));

        // the slot starts moving, and a's state (alone) has reached the target
        await target.call(
          "CLUSTER",
          "SETSLOT",
          String(slot),
          "IMPORTING",
          sourceId!,
        );
        await source.call(
          "CLUSTER",
          "SETSLOT",
          String(slot),
          "MIGRATING",
          targetId!,
        );
        const port = own.nodes[1]!.port;
        await source.migrate("127.0.0.1", port, store.keys(a)[0], 0, 5_000);

        // a scan now: the target lists a's state key, which it cannot read
        // in a script until the slot is its own (it failed the scan); a is
        // read by a keyed call instead, which the client sends on with ASK
        const scanned = new Map<string, string>();
        for await (const { userId, state } of store.scan()) {
          scanned.set(userId, state);
        }
        assert.deepEqual(
          [a, b].map((user) => scanned.get(user)),
          [JSON.stringify([`${a}0`]), JSON.stringify([`${b}0`])],
        );

        // a and b in one turn: one call for the first master, whose first key
        // (a's) is redirected
        const takeA = store.begin(a).then(
          (lease) => ({ lease }),
          (error: unknown) => ({ error }),
        );
        const takeB = store.begin(b, { wait: 200 }).then(
          (lease) => ({ lease }),
          (error: unknown) => ({ error }),
        );
        const tookB = await takeB;
        // b's lease is the other process's: this one waits and gives up
        assert.ok(
          "error" in tookB && tookB.error instanceof LeaseTimeoutError,
          `b's lease taken twice: ${JSON.stringify(tookB)}`,
        );
        await other.commit(held, JSON.stringify([`${b}0`, `${b}2`]));

        // the move ends as redis-cli does it: every key, then the slot
        const keys = await source.call(
          "CLUSTER",
          "GETKEYSINSLOT",
          String(slot),
          "100",
        ) as string[];
        for (const key of keys) {
          assert.equal(
            await source.migrate("127.0.0.1", port, key, 0, 5_000),
            "OK",
          );
        }
        for (const admin of own.admins) {
          await admin.call(
            "CLUSTER",
            "SETSLOT",
            String(slot),
            "NODE",
            targetId!,
          );
        }
        // a and b went together to the first master, whose connection said
        // that a's key was not there: each was sent again alone
        assert.ok(
          spread.some((keys) =>
            keys.includes(store.keys(a)[0]) && keys.includes(store.keys(b)[0])
          ),
          `no call carried a and b: ${JSON.stringify(spread)}`,
        );
        // a's keys were split over two masters: it waited for the move, or
        // gave up with a StoreError (too many redirections)
        const tookA = await takeA;
        if ("lease" in tookA) await store.release(tookA.lease);
        else assert.ok(tookA.error instanceof StoreError, String(tookA.error));
        const lease = await store.begin(b);
        assert.equal(lease.state, JSON.stringify([`${b}0`, `${b}2`]));
        await store.commit(lease, JSON.stringify([`${b}0`, `${b}2`, `${b}1`]));
        assert.equal(
          await other.get(b),
          JSON.stringify([`${b}0`, `${b}2`, `${b}1`]),
        );
      } finally {
        await close();
        there.disconnect();
      }
    });
  }
});

/**
 * A Cluster client of `kind` as a RedisLike, connected, whose spread calls
 * to its masters' own connections are recorded (each call's keys).
 */
async function spied(
  kind: "ioredis" | "node-redis",
  nodes: { host: string; port: number }[],
): Promise<
  { client: RedisLike; spread: string[][]; close: () => Promise<void> }
> {
  const spread: string[][] = [];
  const record = (numkeys: number, keysAndArgs: string[]) => {
    // a spread call: one key, the number of keys, then the keys
    if (numkeys === 1 && keysAndArgs[2] === keysAndArgs[0]) {
      spread.push(keysAndArgs.slice(2, 2 + Number(keysAndArgs[1])));
    }
  };
  const spy = <T extends Pick<RedisLike, "eval" | "evalsha">>(client: T) => {
    const { eval: run, evalsha } = client;
    client.eval = (script, numkeys, ...keysAndArgs) => {
      record(numkeys, keysAndArgs);
      return run.call(client, script, numkeys, ...keysAndArgs);
    };
    client.evalsha = (sha, numkeys, ...keysAndArgs) => {
      record(numkeys, keysAndArgs);
      return evalsha.call(client, sha, numkeys, ...keysAndArgs);
    };
    return client;
  };
  if (kind === "ioredis") {
    const cluster = new Cluster(nodes);
    await cluster.cluster("INFO");
    for (const node of cluster.nodes("master")) spy(node);
    return {
      client: cluster,
      spread,
      close: () => Promise.resolve(cluster.disconnect()),
    };
  }
  const cluster = createCluster({
    rootNodes: nodes.map(({ host, port }) => ({
      url: `redis://${host}:${port}`,
    })),
  });
  await cluster.connect();
  const redis = fromNodeRedis(cluster);
  const spiedMasters = new WeakSet<RedisLike>();
  const masterOf = redis.masterOf!.bind(redis);
  redis.masterOf = (slot) => {
    const master = masterOf(slot);
    if (master && !spiedMasters.has(master)) {
      spy(master);
      spiedMasters.add(master);
    }
    return master;
  };
  return { client: redis, spread, close: () => cluster.close() };
}
