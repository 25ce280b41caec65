// A bot whose users wait on a node with a timeout; firing it records when and
// by which process: what the timer tests across processes count on.
import { z } from "zod";
import { Node, Nodes, type StateStore } from "../mod.ts";

export type TimerEvent = { user: string; delay: number };
export interface TimerShared {
  /** The name of the process firing. */
  by: string;
  /** When set, onTimeout calls it and never returns: a process to kill. */
  hang?: () => void;
}

/**
 * Waits `delay` ms, then moves on to `Fired`. `since` is when it was made,
 * just before it was entered: its timer is due at `since + delay` or later.
 */
export class Waiting extends Node<
  TimerShared,
  TimerEvent,
  string,
  { delay: number; since: number }
> {
  static override schema = z.object({ delay: z.number(), since: z.number() });
  override timeout() {
    return this.data.delay;
  }
  override onTimeout(
    _user: string,
    shared: TimerShared,
  ): Fired | Promise<Fired> {
    if (shared.hang) {
      shared.hang();
      return new Promise(() => {});
    }
    return new Fired({
      by: shared.by,
      at: Date.now(),
      earliest: this.data.since + this.data.delay,
    });
  }
  onEvent(_user: string, event: TimerEvent): Waiting {
    return waiting(event.delay);
  }
}

function waiting(delay: number): Waiting {
  return new Waiting({ delay, since: Date.now() });
}

/** Where a fired user rests: who fired, when, and the earliest it could. */
export class Fired extends Node<
  TimerShared,
  TimerEvent,
  string,
  { by: string; at: number; earliest: number }
> {
  static override schema = z.object({
    by: z.string(),
    at: z.number(),
    earliest: z.number(),
  });
  onEvent(_user: string, event: TimerEvent): Waiting {
    return waiting(event.delay);
  }
}

export function timerBot(
  store: StateStore,
  by: string,
  hang?: () => void,
): Nodes<TimerShared, TimerEvent, string> {
  return new Nodes<TimerShared, TimerEvent, string>({
    store,
    nodes: { waiting: Waiting, fired: Fired },
    start: (event) => waiting(event.delay),
    shared: hang ? { by, hang } : { by },
    userId: (event) => event.user,
  });
}
