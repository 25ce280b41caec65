// Scenario 4: the test harness, simulate() on MemoryStore, events per second.
// Each repetition runs in a fresh process (`runSimulateFresh`), as a test file
// does: not in the suite's process after the other scenarios, whose clients,
// heap and timers are no part of what a test run costs.
import process from "node:process";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { Node, Nodes } from "../mod.ts";
import { createSimulator, MemoryStore, Outbox } from "../testing/mod.ts";
import { runProcess } from "./_common.ts";

type Event = { from: number; text: string };

class Echo extends Node<Outbox, Event, number, { count: number }> {
  static override schema = z.object({ count: z.number() });
  onEvent(user: number, event: Event, outbox: Outbox): Echo {
    outbox.send({ to: user, text: event.text });
    return new Echo({ count: this.data.count + 1 });
  }
}

export const SIMULATED_EVENTS = 20_000;

/** Events per second of one simulate() of SIMULATED_EVENTS checked steps. */
export async function runSimulate(): Promise<number> {
  const outbox = new Outbox();
  const nodes = new Nodes<Outbox, Event, number>({
    store: new MemoryStore(),
    nodes: { echo: Echo },
    start: () => new Echo({ count: 0 }),
    shared: outbox,
    userId: (event) => event.from,
  });
  const sim = createSimulator({
    nodes,
    outbox,
    event: (from: number, text: string): Event => ({ from, text }),
  });
  const steps = Array.from(
    { length: SIMULATED_EVENTS },
    (_, i) =>
      i === 0
        ? { event: "hi", node: "echo" }
        : { event: `m${i}`, node: "echo", replies: [`m${i}`] },
  );
  await sim.simulate(1, steps.slice(0, 10_000)); // warm up
  const t0 = performance.now();
  await sim.simulate(2, steps);
  return SIMULATED_EVENTS / ((performance.now() - t0) / 1000);
}

/**
 * Events per second of `runSimulate` in a fresh process of `runtime` (a
 * command prefix).
 */
export async function runSimulateFresh(runtime: string[]): Promise<number> {
  const out = await runProcess([
    ...runtime,
    fileURLToPath(import.meta.url),
    "--child",
  ]);
  return Number(out.trim().split("\n").pop());
}

if (process.argv.includes("--child")) console.log(await runSimulate());
