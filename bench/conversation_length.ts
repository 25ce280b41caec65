// Scenario 2: one user, conversations of 10 to 10,000 events. botnodes (a
// node that counts) against @grammyjs/conversations v2 (a loop of
// conversation.wait()), both through grammY's handleUpdate, both stored in
// Redis. Per-event time and the bytes stored for the user at the end.
import type { Context } from "grammy";
import {
  type ConversationFlavor,
  conversations,
  createConversation,
} from "@grammyjs/conversations";
// The package's "types" export names a file it does not ship (mod.d.ts).
// @ts-types="../node_modules/@grammyjs/storage-redis/dist/mod.d.mts"
import { RedisAdapter } from "@grammyjs/storage-redis";
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { z } from "zod";
import { Node, Nodes, RedisStore } from "../mod.ts";
import { localBot, textUpdate } from "./throughput.ts";

export const LENGTHS = [10, 100, 1_000, 10_000];

export interface LengthResult {
  library: "botnodes" | "conversations";
  length: number;
  /** Mean time of one event, in ms. */
  perEventMs: number;
  /** Bytes of the values stored for the user at the end. */
  storedBytes: number;
  /** How many conversations of this length were timed. */
  conversations: number;
}

class Counting extends Node<null, Context, number, { count: number }> {
  static override schema = z.object({ count: z.number() });
  onEvent(): Counting {
    return new Counting({ count: this.data.count + 1 });
  }
}

/** The bytes of every value Redis holds (strings, hash fields, list items). */
async function storedBytes(redis: Redis): Promise<number> {
  let bytes = 0;
  for (const key of await redis.keys("*")) {
    const type = await redis.type(key);
    if (type === "string") bytes += await redis.strlen(key);
    if (type === "hash") {
      for (const value of Object.values(await redis.hgetall(key))) {
        bytes += Buffer.byteLength(value);
      }
    }
    if (type === "list") {
      for (const value of await redis.lrange(key, 0, -1)) {
        bytes += Buffer.byteLength(value);
      }
    }
  }
  return bytes;
}

function botnodesBot(redis: Redis) {
  const bot = localBot();
  const nodes = new Nodes<null, Context, number>({
    store: new RedisStore(redis, { prefix: "len" }),
    nodes: { counting: Counting },
    start: () => new Counting({ count: 0 }),
    shared: null,
    userId: (ctx) => ctx.from?.id,
  });
  bot.on("message", nodes.route);
  return bot;
}

function conversationsBot(redis: Redis) {
  type C = ConversationFlavor<Context>;
  const bot = localBot<C>();
  bot.use(conversations({ storage: new RedisAdapter({ instance: redis }) }));
  bot.use(createConversation(async (conversation) => {
    let count = 0;
    while (true) {
      await conversation.wait();
      count++;
    }
  }, "loop"));
  bot.command("start", (ctx) => ctx.conversation.enter("loop"));
  return bot;
}

/**
 * Times conversations of `length` events for one user each, the first event
 * entering the conversation: as many conversations as make `minEvents`
 * events, so that short lengths are not noise.
 */
export async function runLength(
  url: string,
  library: LengthResult["library"],
  length: number,
  minEvents = 2_000,
): Promise<LengthResult> {
  const redis = new Redis(url);
  try {
    await redis.flushall();
    const bot = library === "botnodes"
      ? botnodesBot(redis)
      : conversationsBot(redis);
    let updateId = 0;
    const converse = async (user: number) => {
      await bot.handleUpdate(textUpdate(++updateId, user, "/start"));
      for (let i = 1; i < length; i++) {
        await bot.handleUpdate(textUpdate(++updateId, user, `m${i}`));
      }
    };
    // warm up the JIT and the connection with as many events as are timed
    for (let user = 1; user * 10 <= minEvents; user++) {
      await bot.handleUpdate(
        textUpdate(++updateId, 1_000_000 + user, "/start"),
      );
      for (let i = 1; i < 10; i++) {
        await bot.handleUpdate(
          textUpdate(++updateId, 1_000_000 + user, `m${i}`),
        );
      }
    }
    const runs = Math.max(1, Math.ceil(minEvents / length));
    let elapsed = 0;
    for (let user = 1; user <= runs; user++) {
      await redis.flushall(); // the bytes measured are the last user's alone
      const t0 = performance.now();
      await converse(user);
      elapsed += performance.now() - t0;
    }
    return {
      library,
      length,
      perEventMs: elapsed / (runs * length),
      storedBytes: await storedBytes(redis),
      conversations: runs,
    };
  } finally {
    redis.disconnect();
  }
}
