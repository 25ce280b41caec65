// A StateStore that forwards to another, but for some calls: what the tests
// use to count, delay or fail a store's calls.
import type { StateStore } from "../mod.ts";

/**
 * A `StateStore` that forwards every call to `store`, but for the ones in
 * `overrides` (a `MemoryStore`'s private fields rule out `Object.create`).
 */
export function delegate(
  store: StateStore,
  overrides: Partial<StateStore> = {},
): StateStore {
  return {
    get: (id) => store.get(id),
    begin: (id, options) => store.begin(id, options),
    commit: (lease, state, options) => store.commit(lease, state, options),
    release: (lease) => store.release(lease),
    renew: (lease) => store.renew(lease),
    aside: (id) => store.aside(id),
    schedule: (id, due) => store.schedule(id, due),
    unschedule: (id, due) => store.unschedule(id, due),
    dueTimers: (until, limit) => store.dueTimers(until, limit),
    claimTimers: (until, limit, hold) => store.claimTimers(until, limit, hold),
    deferTimer: (id, due, at) => store.deferTimer(id, due, at),
    scan: (options) => store.scan(options),
    timing: store.timing,
    ...overrides,
  };
}
