// The main menu (the seed's nodes/Start.py).
import { z } from "zod";
import { Node } from "../../mod.ts";
import type { FoodNode, Shared, Update, UserId } from "./types.ts";
import { nameOf } from "./types.ts";
import { Hungry } from "./hungry.ts";
import { Hold } from "./hold.ts";

export class Start extends Node<Shared, Update, UserId, Record<string, never>> {
  static override schema = z.object({});

  // Not stored: only known to a Start built with `new` (a restored Start has
  // neither, and greets with "Again main menu!").
  username?: string | undefined;
  isFirstLaunch?: boolean;

  constructor(username?: string, isFirstLaunch = false) {
    super({});
    this.username = username;
    this.isFirstLaunch = isFirstLaunch;
  }

  override async onEnter(userId: UserId, shared: Shared) {
    if (this.isFirstLaunch) {
      await shared.api.sendMessage(
        userId,
        `Hello, ${this.username}! Are you hungry?`,
      );
    } else {
      await shared.api.sendMessage(userId, "Again main menu! Are you hungry?");
    }
  }

  async onEvent(
    userId: UserId,
    update: Update,
    shared: Shared,
  ): Promise<FoodNode> {
    const text = update.msg?.text;
    if (text === "Yes") {
      await shared.api.sendMessage(userId, "No worries, I've got you back!");
      return new Hungry();
    }
    if (text === "No") {
      await shared.api.sendMessage(userId, "Write me when you are ready then!");
      return new Hold();
    }
    await shared.api.sendMessage(userId, "Say what?");
    return new Start(nameOf(update)); // stay in the main menu
  }
}
