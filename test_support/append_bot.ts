// A bot whose one node appends each event's id to its data: what tests of
// stores and processes count on.
import { z } from "zod";
import { Node, Nodes, type StateStore } from "../mod.ts";

export type AppendEvent = { user: string; id: string };
export interface AppendShared {
  /** Runs inside each handler: a delay, a crash, a count. */
  during(event: AppendEvent): void | Promise<void>;
}

export class Appending
  extends Node<AppendShared, AppendEvent, string, { events: string[] }> {
  static override schema = z.object({ events: z.array(z.string()) });

  async onEvent(
    _user: string,
    event: AppendEvent,
    shared: AppendShared,
  ): Promise<Appending> {
    await shared.during(event);
    return new Appending({ events: [...this.data.events, event.id] });
  }
}

export function appendBot(
  store: StateStore,
  during: AppendShared["during"] = () => {},
): Nodes<AppendShared, AppendEvent, string> {
  return new Nodes<AppendShared, AppendEvent, string>({
    store,
    nodes: { appending: Appending },
    // a new user's first event is recorded too
    start: (event) => new Appending({ events: [event.id] }),
    shared: { during },
    userId: (event) => event.user,
  });
}

/** The ids a user's stored state holds. */
export async function appended(
  store: StateStore,
  user: string,
): Promise<string[]> {
  const raw = await store.get(user);
  return raw === undefined ? [] : JSON.parse(raw).data.events;
}
