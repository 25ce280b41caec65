// RedisStore on a Cluster whose slot moves from one master to another while
// events run: the users of one master share a call, and that call must not
// take the lease of a user whose keys the old master still holds. A Cluster
// of the test's own (2 masters), since the test moves a slot.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "ioredis";
import { RedisStore } from "./redis_store.ts";
import { keySlot } from "./redis_keys.ts";
import { LeaseTimeoutError } from "./errors.ts";
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

  it("never gives a user's lease twice while the slot moves", async () => {
    const source = own.admins[0]!;
    const target = own.admins[1]!;
    const [sourceId, targetId] = own.ids;
    const prefix = randomPrefix("moving");
    // this process coalesces; another one holds a user's lease
    const here = new Cluster(own.nodes);
    const there = new Cluster(own.nodes);
    const store = new RedisStore(here, { prefix });
    const other = new RedisStore(there, { prefix, batch: false });
    try {
      await here.cluster("INFO");
      // two users whose keys share one slot of the first master
      const bySlot = new Map<number, string>();
      let a = "";
      let b = "";
      for (let i = 0; !b; i++) {
        const slot = keySlot(store.keys(`u${i}`)[0]);
        if (slot >= 8_192) continue;
        const first = bySlot.get(slot);
        if (first === undefined) bySlot.set(slot, `u${i}`);
        else [a, b] = [first, `u${i}`];
      }
      const slot = keySlot(store.keys(a)[0]);
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
        await admin.call("CLUSTER", "SETSLOT", String(slot), "NODE", targetId!);
      }
      const tookA = await takeA;
      if ("lease" in tookA) await store.release(tookA.lease);
      const lease = await store.begin(b);
      assert.equal(lease.state, JSON.stringify([`${b}0`, `${b}2`]));
      await store.commit(lease, JSON.stringify([`${b}0`, `${b}2`, `${b}1`]));
      assert.equal(
        await other.get(b),
        JSON.stringify([`${b}0`, `${b}2`, `${b}1`]),
      );
    } finally {
      here.disconnect();
      there.disconnect();
    }
  });
});
