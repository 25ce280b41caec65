/**
 * Test helpers for bots built with botnodes: a conversation simulator, an
 * outbox for outgoing messages, an in-memory store and a fake clock.
 *
 * Nothing here imports a test runner or a bot framework, so it works under
 * `deno test`, `bun test`, `node --test` and vitest alike; failures are
 * `node:assert` `AssertionError`s. The grammY preset is in
 * `@botnodes/core/testing/grammy`.
 *
 * @example A conversation test
 * ```ts
 * import { Node, Nodes } from "@botnodes/core";
 * import { createSimulator, MemoryStore, Outbox } from "@botnodes/core/testing";
 *
 * type Event = { from: number; text: string };
 *
 * class Ask extends Node<Outbox, Event, number, null> {
 *   constructor() {
 *     super(null);
 *   }
 *   override onEnter(user: number, outbox: Outbox) {
 *     outbox.send({ to: user, text: "Hungry?" });
 *   }
 *   onEvent(): Ask {
 *     return new Ask();
 *   }
 * }
 *
 * const outbox = new Outbox();
 * const nodes = new Nodes<Outbox, Event, number>({
 *   store: new MemoryStore(),
 *   nodes: { ask: Ask },
 *   start: () => new Ask(),
 *   shared: outbox,
 *   userId: (event) => event.from,
 * });
 * const sim = createSimulator({
 *   nodes,
 *   outbox,
 *   event: (from: number, text: string): Event => ({ from, text }),
 * });
 * await sim.simulate(7, [{ event: "hi", node: "ask", replies: ["Hungry?"] }]);
 * ```
 *
 * @module
 */

export {
  ConversationMap,
  type ConversationMapOptions,
  type MapCoverage,
  type MapEdge,
  type MapMarkdownOptions,
  NO_STATE,
} from "./conversation_map.ts";
export { FakeClock } from "./fake_clock.ts";
export { MemoryStore } from "./memory_store.ts";
export {
  Outbox,
  type OutboxOptions,
  type OutgoingCall,
  type OutgoingMessage,
} from "./outbox.ts";
export {
  createSimulator,
  type ExpectedCall,
  type ExpectedReply,
  type SimulatedNodes,
  type SimulateOptions,
  type Simulator,
  type SimulatorOptions,
  type Step,
} from "./simulate.ts";
export { Transcript, type TranscriptStep } from "./transcript.ts";
