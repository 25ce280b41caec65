// The types every node of the food bot shares (the seed's nodes_types.py).
import type { Node } from "../../mod.ts";

/**
 * The event: what a node reads of one incoming message. A grammY `Context`
 * is one, so `bot.on("message", nodesMiddleware(nodes))` works; the terminal
 * chat builds plain objects of this shape.
 */
export interface Update {
  readonly from?: {
    readonly id: number;
    readonly first_name: string;
    readonly username?: string | undefined;
  } | undefined;
  readonly chat?: { readonly type: string } | undefined;
  readonly msg?: { readonly text?: string | undefined } | undefined;
  /** Telegram's update, whose id makes redeliveries harmless. */
  readonly update?: { readonly update_id: number } | undefined;
}

/** Places an order; some external service. */
export interface FoodApi {
  orderFood(items: readonly string[]): Promise<void>;
}

/**
 * What every node receives, the `shared` option of `Nodes`: your services
 * (the seed's `ctx`).
 */
export interface Shared {
  /** Sends a message; grammY's `bot.api` is one. */
  readonly api: {
    sendMessage(chatId: number, text: string): Promise<unknown>;
  };
  readonly foodApi: FoodApi;
  readonly logger: { error(message: string): void };
}

export type UserId = number;

/** Any node of this bot: what `onEvent` returns. */
export type FoodNode = Node<Shared, Update, UserId>;

/** The name to greet a user by, as the seed's get_start_node. */
export function nameOf(update: Update): string {
  return update.from?.username ?? update.from?.first_name ?? "friend";
}
