// Scenario 4: the test harness, simulate() on MemoryStore, events per second.
import { z } from "zod";
import { Node, Nodes } from "../mod.ts";
import { createSimulator, MemoryStore, Outbox } from "../testing/mod.ts";

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
  await sim.simulate(1, steps.slice(0, 2_000)); // warm up
  const t0 = performance.now();
  await sim.simulate(2, steps);
  return SIMULATED_EVENTS / ((performance.now() - t0) / 1000);
}
