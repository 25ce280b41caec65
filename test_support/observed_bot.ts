// A small bot whose every transition has exact times on a FakeClock: the
// lease takes 1 ms, the menu's handler 3 ms, a commit 2 ms. Its `script`
// walks a new user, a committed event, a duplicate delivery, a failing
// handler, a user whose unreadable state is kept aside, an event that is not
// ours, a timer, `to` and `reset`: what the listener, OpenTelemetry and map
// tests assert exactly.
import { Node, Nodes, type StateStore, type Transition } from "../mod.ts";
import { FakeClock, MemoryStore } from "../testing/mod.ts";
import { delegate } from "./delegate.ts";

export type Event = { from?: number; id: number; text: string };
export type Shared = { clock: FakeClock };

export class Menu extends Node<Shared, Event, number, null> {
  constructor() {
    super(null);
  }
  onEvent(_user: number, event: Event, shared: Shared): Menu | Order {
    shared.clock.advance(3);
    return event.text === "order" ? new Order({ items: [] }) : new Menu();
  }
}

export class Order extends Node<Shared, Event, number, { items: string[] }> {
  override timeout(): number {
    return 60_000;
  }
  override onTimeout(): Menu {
    return new Menu();
  }
  onEvent(_user: number, event: Event): Order | Menu {
    if (event.text === "boom") throw new Error("the kitchen is on fire");
    return event.text === "done"
      ? new Menu()
      : new Order({ items: [...this.data.items, event.text] });
  }
}

/** Registered, never entered: the map's coverage names it. */
export class Feedback extends Node<Shared, Event, number, null> {
  constructor() {
    super(null);
  }
  onEvent(): Menu {
    return new Menu();
  }
}

export const registry = { menu: Menu, order: Order, feedback: Feedback };

/** A store whose lease takes 1 ms and commit 2 ms of the clock. */
function timed(store: MemoryStore, clock: FakeClock): StateStore {
  return delegate(store, {
    begin: (id, options) => (clock.advance(1), store.begin(id, options)),
    commit: (lease, state, options) => (
      clock.advance(2), store.commit(lease, state, options)
    ),
  });
}

export function observedBot() {
  const clock = new FakeClock(1_000_000);
  const memory = new MemoryStore({ clock });
  const store = timed(memory, clock);
  const warnings: unknown[][] = [];
  const nodes = new Nodes<Shared, Event, number>({
    store,
    nodes: registry,
    start: () => new Menu(),
    shared: { clock },
    userId: (event) => event.from,
    eventId: (event) => event.id,
    logger: { warn: (...args) => void warnings.push(args) },
  });
  return { nodes, clock, store: memory, warnings };
}

/** Walks the bot through every outcome; failures are expected and caught. */
export async function script(
  { nodes, clock, store }: ReturnType<typeof observedBot>,
): Promise<void> {
  await nodes.route({ from: 1, id: 1, text: "hi" }); // new user: menu
  await nodes.route({ from: 1, id: 2, text: "order" }); // menu -> order
  await nodes.route({ from: 1, id: 2, text: "order" }); // duplicate
  await nodes.route({ from: 1, id: 3, text: "boom" }).catch(() => {}); // fails
  await store.commit(await store.begin("2"), "{not json"); // unreadable
  await nodes.route({ from: 2, id: 4, text: "hi" }); // kept aside -> menu
  await nodes.route({ id: 5, text: "in a channel" }); // not ours
  clock.advance(60_000);
  await nodes.runDue(); // user 1: order -> menu (timeout)
  await nodes.user(2).to(new Order({ items: ["tea"] })); // menu -> order
  await nodes.user(2).reset(); // order -> nothing
}

/**
 * What `script` walks, transition by transition, as a listener receives it
 * (but for the failing handler's `error`, the object it threw): the one
 * expectation the listener and OpenTelemetry tests share.
 */
export const walked: readonly Transition<Event, number>[] = [
  {
    kind: "event",
    outcome: "committed",
    userId: 1,
    eventId: "1",
    event: { from: 1, id: 1, text: "hi" },
    to: "menu",
    leaseWait: 1,
    handlerTime: 0,
    storeTime: 2,
    duration: 3,
  },
  {
    kind: "event",
    outcome: "committed",
    userId: 1,
    eventId: "2",
    event: { from: 1, id: 2, text: "order" },
    from: "menu",
    to: "order",
    leaseWait: 1,
    handlerTime: 3,
    storeTime: 2,
    duration: 6,
  },
  {
    kind: "event",
    outcome: "duplicate",
    userId: 1,
    eventId: "2",
    event: { from: 1, id: 2, text: "order" },
    leaseWait: 1,
    handlerTime: 0,
    storeTime: 0,
    duration: 1,
  },
  {
    kind: "event",
    outcome: "failed",
    userId: 1,
    eventId: "3",
    event: { from: 1, id: 3, text: "boom" },
    from: "order",
    leaseWait: 1,
    handlerTime: 0,
    storeTime: 0,
    duration: 1,
  },
  {
    kind: "event",
    outcome: "committed",
    userId: 2,
    eventId: "4",
    event: { from: 2, id: 4, text: "hi" },
    to: "menu",
    invalid: "unparseable",
    leaseWait: 1,
    handlerTime: 0,
    storeTime: 2,
    duration: 3,
  },
  {
    kind: "event",
    outcome: "not-ours",
    userId: undefined,
    event: { id: 5, text: "in a channel" },
    leaseWait: 0,
    handlerTime: 0,
    storeTime: 0,
    duration: 0,
  },
  {
    kind: "timeout",
    outcome: "committed",
    userId: 1,
    from: "order",
    to: "menu",
    leaseWait: 1,
    handlerTime: 0,
    storeTime: 2,
    duration: 3,
  },
  {
    kind: "to",
    outcome: "committed",
    userId: 2,
    from: "menu",
    to: "order",
    leaseWait: 1,
    handlerTime: 0,
    storeTime: 2,
    duration: 3,
  },
  {
    kind: "reset",
    outcome: "committed",
    userId: 2,
    from: "order",
    leaseWait: 1,
    handlerTime: 0,
    storeTime: 2,
    duration: 3,
  },
];
