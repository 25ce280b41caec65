// Choosing food (the seed's nodes/Hungry.py).
import { z } from "zod";
import { Node } from "../../mod.ts";
import type { FoodNode, Shared, Update, UserId } from "./types.ts";
import { nameOf } from "./types.ts";
import { Start } from "./start.ts";

/** A reminder ten minutes after the last message, if the cart holds food. */
export const REMIND_AFTER = 10 * 60_000;
/** The cart is dropped an hour after the reminder. */
export const DROP_AFTER = 60 * 60_000;

export class Hungry extends Node<
  Shared,
  Update,
  UserId,
  { order: string[]; reminded?: true }
> {
  // The active order is stored while the user goes on choosing; `reminded`
  // once the user was asked whether they are still there.
  static override schema = z.object({
    order: z.array(z.string()),
    reminded: z.literal(true).optional(),
  });

  constructor(order: string[] = [], reminded = false) {
    super(reminded ? { order, reminded: true } : { order });
  }

  override async onEnter(userId: UserId, shared: Shared) {
    const cart = this.data.order.length ? this.data.order.join(", ") : "Empty";
    await shared.api.sendMessage(
      userId,
      this.data.reminded
        ? `Still there? Your cart: ${cart}. Write Finish to order it.`
        : `What are you gonna order? Cart: ${cart}`,
    );
  }

  // A full cart left unanswered: one reminder, then, after a longer silence,
  // the cart is dropped.
  override timeout(): number | undefined {
    if (this.data.order.length === 0) return undefined;
    return this.data.reminded ? DROP_AFTER : REMIND_AFTER;
  }

  override async onTimeout(userId: UserId, shared: Shared): Promise<FoodNode> {
    if (!this.data.reminded) return new Hungry(this.data.order, true);
    await shared.api.sendMessage(
      userId,
      `I dropped your cart (${
        this.data.order.join(", ")
      }) after an hour of silence.`,
    );
    return new Start();
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
