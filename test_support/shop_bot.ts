// A small bot for the core's tests: a shop where users add items to a cart.
import { z } from "zod";
import { Node, Nodes, type NodesOptions } from "../mod.ts";
import { FakeClock, MemoryStore } from "../testing/mod.ts";

export type Event = { from: number; text: string };
export interface Shared {
  log: string[];
  /** Replaced by tests to fail or block a handler. */
  hook: (where: string) => void | Promise<void>;
}

export class Menu extends Node<Shared, Event, number, { visits: number }> {
  static override schema = z.object({ visits: z.number().int() });
  static built = 0;
  greeting?: string;

  constructor(visits = 0, greeting?: string) {
    super({ visits });
    Menu.built++;
    if (greeting !== undefined) this.greeting = greeting;
  }

  override async onEnter(user: number, shared: Shared) {
    shared.log.push(`${user} enter menu ${this.data.visits}`);
    await shared.hook("menu.onEnter");
  }

  async onEvent(
    user: number,
    event: Event,
    shared: Shared,
  ): Promise<Node<Shared, Event, number>> {
    shared.log.push(`${user} menu got ${event.text}`);
    await shared.hook("menu.onEvent");
    if (event.text === "shop") return new Cart([]);
    if (event.text === "stray") return new Stray();
    return new Menu(this.data.visits + 1);
  }
}

export class Cart extends Node<Shared, Event, number, { items: string[] }> {
  static override schema = z.object({
    items: z.array(z.string()),
    note: z.string().default("none"),
  });

  constructor(items: string[]) {
    super({ items });
  }

  override onEnter(user: number, shared: Shared) {
    shared.log.push(`${user} enter cart ${this.data.items.join(",")}`);
    return shared.hook("cart.onEnter");
  }

  async onEvent(
    user: number,
    event: Event,
    shared: Shared,
  ): Promise<Node<Shared, Event, number>> {
    shared.log.push(`${user} cart got ${event.text}`);
    await shared.hook("cart.onEvent");
    if (event.text === "done") return new Menu(1);
    if (event.text === "bad") return new Cart([42 as unknown as string]);
    return new Cart([...this.data.items, event.text]);
  }
}

/** Never registered. */
export class Stray extends Node<Shared, Event, number, null> {
  constructor() {
    super(null);
  }
  onEvent(): Node<Shared, Event, number> {
    return this;
  }
}

export function makeBot(
  overrides: Partial<NodesOptions<Shared, Event, number>> = {},
) {
  const clock = new FakeClock();
  const store = new MemoryStore({ clock });
  const shared: Shared = { log: [], hook: () => {} };
  const warnings: string[] = [];
  const nodes = new Nodes<Shared, Event, number>({
    store,
    nodes: { menu: Menu, cart: Cart },
    start: () => new Menu(0, "hello"),
    shared,
    userId: (event) => event.from,
    logger: { warn: (message) => warnings.push(message) },
    ...overrides,
  });
  return { nodes, store, shared, clock, warnings };
}

/** A promise with its resolve function, to hold a handler at a point. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
