// The bot of the timers benchmark (bench/timers.ts): a user is `Idle` (no
// timeout) or `Reminding` (a timer due at the absolute time `at`); the timer
// fires `onTimeout`, which reports how late it ran and moves the user back to
// `Idle`. An event with `at` arms (or re-arms) the timer, one without answers
// and cancels it.
import { z } from "zod";
import { Node, Nodes, type StateStore } from "../mod.ts";

export type ReminderEvent = { user: string; at?: number };
/** Called as a timer fires, with the time it was due. */
export type OnFire = (at: number) => void;

export class Reminding
  extends Node<OnFire, ReminderEvent, string, { at: number }> {
  static override schema = z.object({ at: z.number() });
  override timeout(): number {
    return Math.max(0, this.data.at - Date.now());
  }
  override onTimeout(_user: string, fire: OnFire): Idle {
    fire(this.data.at);
    return new Idle();
  }
  onEvent(_user: string, event: ReminderEvent): Idle | Reminding {
    return next(event);
  }
}

export class Idle extends Node<OnFire, ReminderEvent, string, null> {
  constructor() {
    super(null);
  }
  onEvent(_user: string, event: ReminderEvent): Idle | Reminding {
    return next(event);
  }
}

function next(event: ReminderEvent): Idle | Reminding {
  return event.at === undefined ? new Idle() : new Reminding({ at: event.at });
}

export function reminderBot(
  store: StateStore,
  fire: OnFire = () => {},
): Nodes<OnFire, ReminderEvent, string> {
  return new Nodes<OnFire, ReminderEvent, string>({
    store,
    nodes: { reminding: Reminding, idle: Idle },
    start: next,
    shared: fire,
    userId: (event) => event.user,
  });
}

/** The BullMQ queue of the benchmark, and the name of its jobs. */
export const QUEUE = "reminders";
export const JOB = "remind";
/** The key prefix of the botnodes side. */
export const PREFIX = "timers";
