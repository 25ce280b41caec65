// Scenario 1: throughput and latency, 1,000 users, 20,000 events, 64 events
// in flight for different users; the handler appends to a small array.
// botnodes route() on RedisStore (default: coalesced; unbatched; on Bun also
// through Bun's own RedisClient) against (a) the seed's HGET/parse/HSET,
// (b) GET/SET on one key per user, (c) grammY session() with
// @grammyjs/storage-redis through bot.handleUpdate. botnodes and (b) also
// run on a 3-master Cluster. Each run measures the Redis CPU (INFO cpu of
// every server) and the client CPU (process.cpuUsage) per event.
import process from "node:process";
import type { Bot } from "grammy";
import type { Update } from "grammy/types";
import { createTestBot } from "../testing/grammy.ts";
import { session, type SessionFlavor } from "grammy";
import type { Context } from "grammy";
// The package's "types" export names a file it does not ship (mod.d.ts).
// @ts-types="../node_modules/@grammyjs/storage-redis/dist/mod.d.mts"
import { RedisAdapter } from "@grammyjs/storage-redis";
import { Cluster, Redis } from "ioredis";
import { z } from "zod";
import { Node, Nodes, type RedisLike, RedisStore } from "../mod.ts";
import { fromBunRedis } from "../adapters/bun_redis.ts";
import { watch } from "./observe.ts";
import { commandCalls, drive, percentile, total } from "./_common.ts";

export const USERS = 1_000;
export const EVENTS = 20_000;
export const IN_FLIGHT = 64;
const KEEP = 10; // the handler keeps the last 10 items: a small array

export type Variant =
  | "botnodes"
  | "botnodes-unbatched"
  | "botnodes-bun-redis"
  | "botnodes-listener"
  | "botnodes-otel"
  | "seed-hash"
  | "get-set"
  | "grammy-session";
/** The variants on a standalone Redis; Bun adds "botnodes-bun-redis". */
export const VARIANTS: Variant[] = [
  "botnodes",
  "botnodes-unbatched",
  "botnodes-listener",
  "botnodes-otel",
  "seed-hash",
  "get-set",
  "grammy-session",
];
/** The variants on the Cluster. */
export const CLUSTER_VARIANTS: Variant[] = ["botnodes", "get-set"];

/** Bun's RedisClient class, on Bun only (no import of "bun" here). */
type BunClient = {
  send(command: string, args: string[]): Promise<unknown>;
  close(): void;
};
export const BunRedisClient = (globalThis as {
  Bun?: {
    RedisClient?: new (
      url: string,
      options?: { enableAutoPipelining?: boolean },
    ) => BunClient;
  };
}).Bun?.RedisClient;

/** Where a run sends its commands. */
export type Target =
  | { url: string }
  | { cluster: { host: string; port: number }[] };

export interface ThroughputResult {
  variant: Variant;
  autoPipelining: boolean;
  /** Standalone Redis, or the 3-master Cluster. */
  cluster: boolean;
  eventsPerSec: number;
  p50: number;
  p99: number;
  /** Commands the client sent per event. */
  commandsPerEvent: number;
  /** Commands Redis executed per event, those inside scripts included. */
  executedPerEvent: number;
  /** CPU time of the Redis server(s) per event (INFO cpu, sys + user), µs. */
  redisCpuUs: number;
  /** CPU time of the client process per event (process.cpuUsage), µs. */
  clientCpuUs: number;
}

type Event = { user: number; text: string };

class Appending extends Node<null, Event, number, { items: string[] }> {
  static override schema = z.object({ items: z.array(z.string()) });
  onEvent(_user: number, event: Event): Appending {
    return new Appending({
      items: [...this.data.items, event.text].slice(-KEEP),
    });
  }
}

/** A text message update from a user. */
export function textUpdate(
  updateId: number,
  user: number,
  text: string,
): Update {
  const from = { id: user, is_bot: false, first_name: `U${user}` };
  return {
    update_id: updateId,
    message: {
      message_id: updateId,
      date: 1_700_000_000,
      chat: { id: user, type: "private", first_name: from.first_name },
      from,
      text,
      ...(text.startsWith("/")
        ? {
          entities: [{
            type: "bot_command",
            offset: 0,
            length: text.split(" ")[0]!.length,
          }],
        }
        : {}),
    },
  } as Update;
}

/** A bot whose API calls never leave the process: the testing preset's. */
export function localBot<C extends Context>(): Bot<C> {
  return createTestBot<C>().bot;
}

function handler(
  variant: Variant,
  redis: Redis | Cluster,
  prefix: string,
  bunClient: BunClient | undefined,
): (i: number) => Promise<unknown> {
  const user = (i: number) => i % USERS;
  switch (variant) {
    case "botnodes":
    case "botnodes-unbatched":
    case "botnodes-bun-redis":
    case "botnodes-listener":
    case "botnodes-otel": {
      const client: RedisLike = variant === "botnodes-bun-redis"
        ? fromBunRedis(bunClient!)
        : redis;
      const nodes = new Nodes<null, Event, number>({
        // the default settings, but for "botnodes-unbatched"
        store: new RedisStore(client, {
          prefix,
          ...(variant === "botnodes-unbatched" ? { batch: false } : {}),
        }),
        nodes: { appending: Appending },
        start: () => new Appending({ items: [] }),
        shared: null,
        userId: (event) => event.user,
      });
      // what a metrics listener costs: a counter per outcome and node; and
      // OpenTelemetry on the SDK's providers
      if (variant === "botnodes-listener") watch(nodes, "listener");
      if (variant === "botnodes-otel") watch(nodes, "otel-sdk");
      return (i) => nodes.route({ user: user(i), text: `e${i}` });
    }
    case "seed-hash":
      // the Python seed: one hash for all users, no lock
      return async (i) => {
        const raw = await redis.hget(`${prefix}:state`, String(user(i)));
        const state = raw
          ? JSON.parse(raw)
          : { node_name: "appending", items: [] };
        state.items = [...state.items, `e${i}`].slice(-KEEP);
        await redis.hset(
          `${prefix}:state`,
          String(user(i)),
          JSON.stringify(state),
        );
      };
    case "get-set":
      return async (i) => {
        const key = `${prefix}:${user(i)}`;
        const raw = await redis.get(key);
        const items: string[] = raw ? JSON.parse(raw) : [];
        await redis.set(key, JSON.stringify([...items, `e${i}`].slice(-KEEP)));
      };
    case "grammy-session": {
      type C = Context & SessionFlavor<{ items: string[] }>;
      const bot = localBot<C>();
      bot.use(session({
        initial: () => ({ items: [] as string[] }),
        storage: new RedisAdapter<{ items: string[] }>({
          instance: redis as Redis,
        }),
        prefix: `${prefix}:`,
      }));
      bot.on("message:text", (ctx) => {
        ctx.session.items = [...ctx.session.items, ctx.msg.text].slice(-KEEP);
      });
      return (i) => bot.handleUpdate(textUpdate(i + 1, user(i), `e${i}`));
    }
  }
}

/** The CPU seconds (sys + user) a Redis server has used, from INFO cpu. */
async function redisCpu(admin: Redis): Promise<number> {
  const info = await admin.info("cpu");
  const field = (name: string) =>
    Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? NaN);
  return field("used_cpu_sys") + field("used_cpu_user");
}

/** The client process' CPU time so far, µs. */
function clientCpu(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** One run of one variant against `target`, on flushed servers. */
export async function runThroughput(
  target: Target,
  variant: Variant,
  autoPipelining: boolean,
): Promise<ThroughputResult> {
  const cluster = "cluster" in target;
  // one admin connection per server: flush, reset and read the stats of each
  const admins = cluster
    ? target.cluster.map(({ host, port }) => new Redis(port, host))
    : [new Redis(target.url)];
  const redis = cluster
    ? new Cluster(target.cluster, { enableAutoPipelining: autoPipelining })
    : new Redis(target.url, { enableAutoPipelining: autoPipelining });
  const bunClient = variant === "botnodes-bun-redis"
    ? new BunRedisClient!((target as { url: string }).url, {
      enableAutoPipelining: autoPipelining,
    })
    : undefined;
  const all = <T>(fn: (admin: Redis) => Promise<T>) =>
    Promise.all(admins.map(fn));
  try {
    await all((admin) => admin.flushall());
    const prefix = `bench-${variant}`;
    const handle = handler(variant, redis, prefix, bunClient);
    // warm up the JIT, the connection and the script cache, as the run does
    await drive(5_000, IN_FLIGHT, (i) => handle(EVENTS + i));
    await all((admin) => admin.flushall());
    await all((admin) => admin.config("RESETSTAT"));
    const redisBefore = await all(redisCpu);
    const clientBefore = clientCpu();
    const { seconds, latencies } = await drive(EVENTS, IN_FLIGHT, handle);
    const clientAfter = clientCpu();
    const redisAfter = await all(redisCpu);
    const calls: Record<string, number> = {};
    for (const counts of await all(commandCalls)) {
      for (const [name, n] of Object.entries(counts)) {
        calls[name] = (calls[name] ?? 0) + n;
      }
    }
    const sent = variant.startsWith("botnodes")
      ? (calls.evalsha ?? 0) + (calls.eval ?? 0)
      : total(calls);
    const redisSeconds = redisAfter.reduce(
      (sum, after, i) => sum + after - redisBefore[i]!,
      0,
    );
    return {
      variant,
      autoPipelining,
      cluster,
      eventsPerSec: EVENTS / seconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      commandsPerEvent: sent / EVENTS,
      executedPerEvent: total(calls) / EVENTS,
      redisCpuUs: redisSeconds * 1e6 / EVENTS,
      clientCpuUs: (clientAfter - clientBefore) / EVENTS,
    };
  } finally {
    redis.disconnect();
    bunClient?.close();
    for (const admin of admins) admin.disconnect();
  }
}
