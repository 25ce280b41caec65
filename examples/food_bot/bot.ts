// Wires the food bot's nodes (the seed's main.py, steps 4, 7 and 9).
import { Nodes, type StateStore } from "../../mod.ts";
import { privateChatUserId, updateId } from "../../integrations/grammy.ts";
import type { Shared, Update, UserId } from "./types.ts";
import { nameOf } from "./types.ts";
import { Start } from "./start.ts";
import { Hungry } from "./hungry.ts";
import { Hold } from "./hold.ts";

/**
 * The registry: keys are the stored identity of each node, never to be
 * changed once users have state.
 */
export const foodNodes = { start: Start, hungry: Hungry, hold: Hold };

export function createFoodNodes(
  store: StateStore,
  shared: Shared,
): Nodes<Shared, Update, UserId> {
  return new Nodes<Shared, Update, UserId>({
    store,
    nodes: foodNodes,
    start: (update) => new Start(nameOf(update), true),
    shared,
    userId: privateChatUserId, // private chats only, like the seed's filter
    eventId: updateId, // a webhook retry of the same update runs once
  });
}

/** A food API that pretends to order. */
export const foodApiStub = {
  orderFood: (_items: readonly string[]): Promise<void> => Promise.resolve(),
};
