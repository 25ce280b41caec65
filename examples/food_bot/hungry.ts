// Choosing food (the seed's nodes/Hungry.py).
import { z } from "zod";
import { Node } from "../../mod.ts";
import type { FoodNode, Shared, Update, UserId } from "./types.ts";
import { nameOf } from "./types.ts";
import { Start } from "./start.ts";

export class Hungry extends Node<Shared, Update, UserId, { order: string[] }> {
  // The active order is stored while the user goes on choosing.
  static override schema = z.object({ order: z.array(z.string()) });

  constructor(order: string[] = []) {
    super({ order });
  }

  override async onEnter(userId: UserId, shared: Shared) {
    const cart = this.data.order.length ? this.data.order.join(", ") : "Empty";
    await shared.api.sendMessage(
      userId,
      `What are you gonna order? Cart: ${cart}`,
    );
  }

  async onEvent(
    userId: UserId,
    update: Update,
    shared: Shared,
  ): Promise<FoodNode> {
    const text = update.msg?.text ?? "";
    if (text === "Finish") {
      if (this.data.order.length === 0) {
        await shared.api.sendMessage(
          userId,
          "Cart is empty! Write Cancel to cancel the order",
        );
        return new Hungry([]);
      }
      const cart = this.data.order.join(", ");
      await shared.api.sendMessage(userId, `Ordering ${cart}`);
      try {
        await shared.foodApi.orderFood(this.data.order);
        await shared.api.sendMessage(userId, "Ordered!");
      } catch (error) {
        shared.logger.error(
          `Order for ${userId} failed due to ${error} | order=${
            JSON.stringify(this.data.order)
          }`,
        );
        await shared.api.sendMessage(userId, "Error");
      }
      return new Start(nameOf(update)); // back to the main menu
    }
    if (text === "Cancel") {
      await shared.api.sendMessage(userId, "Order cancelled!");
      return new Start(nameOf(update));
    }
    await shared.api.sendMessage(userId, `Added ${text}`);
    return new Hungry([...this.data.order, text]);
  }
}
