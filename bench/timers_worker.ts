// One firing process of the timers benchmark (bench/timers.ts), botnodes
// (`nodes.runTimers`) or BullMQ (a `Worker`): connects and prints "ready",
// starts firing on the stdin line "go" and stops on "stop", then prints what
// it fired as JSON: how many, the first and last firing time (ms since the
// epoch), and how late each ran past its due time, as a histogram of whole ms.
// Arguments: <redis url> <botnodes|bullmq> <timers fired at once>
import process from "node:process";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { Worker } from "bullmq";
import { RedisStore } from "../mod.ts";
import { JOB, PREFIX, QUEUE, reminderBot } from "./timers_bot.ts";

export interface WorkerReport {
  fired: number;
  first: number;
  last: number;
  /** Delay past due in whole ms → timers. */
  late: Record<string, number>;
}

const [url, side, concurrency] = process.argv.slice(2);
const report: WorkerReport = { fired: 0, first: Infinity, last: 0, late: {} };
const fire = (at: number) => {
  const now = Date.now();
  report.fired++;
  if (report.fired === 1) report.first = now;
  report.last = now;
  const ms = Math.max(0, Math.floor(now - at));
  report.late[ms] = (report.late[ms] ?? 0) + 1;
};

let start: () => void;
let stop: () => Promise<void>;
if (side === "botnodes") {
  const redis = new Redis(url!);
  const nodes = reminderBot(new RedisStore(redis, { prefix: PREFIX }), fire);
  const abort = new AbortController();
  let loop: Promise<void> = Promise.resolve();
  start = () => {
    loop = nodes.runTimers({
      signal: abort.signal,
      limit: Number(concurrency),
    });
  };
  stop = async () => {
    abort.abort();
    await loop;
    redis.disconnect();
  };
} else {
  const { hostname, port } = new URL(url!);
  const worker = new Worker<{ at: number }>(QUEUE, (job) => {
    if (job.name === JOB) fire(job.data.at);
    return Promise.resolve();
  }, {
    connection: { host: hostname, port: Number(port) },
    concurrency: Number(concurrency),
    autorun: false,
  });
  let loop: Promise<void> = Promise.resolve();
  start = () => {
    loop = worker.run();
  };
  stop = async () => {
    await worker.close();
    await loop;
  };
}

console.log("ready");
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "go") start();
  if (line === "stop") break;
}
await stop();
// exit once the report is written: a pipe takes it in 64 KiB pieces
process.stdout.write(JSON.stringify(report) + "\n", () => process.exit(0));
