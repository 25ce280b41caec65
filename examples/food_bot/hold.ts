// Waiting for the user (the seed's nodes/Hold.py).
import { z } from "zod";
import { Node } from "../../mod.ts";
import type { FoodNode, Shared, Update, UserId } from "./types.ts";
import { nameOf } from "./types.ts";
import { Start } from "./start.ts";

export class Hold extends Node<Shared, Update, UserId, Record<string, never>> {
  static override schema = z.object({});

  constructor() {
    super({});
  }

  // On hold: onEnter does nothing (the default).

  onEvent(_userId: UserId, update: Update): FoodNode {
    return new Start(nameOf(update)); // back to the main menu on any message
  }
}
