/**
 * Values that may or may not be promises, and telling them apart without an
 * `await` (which would cost a microtask on the hot path of every event).
 *
 * @module
 */

/** A value or a promise of it. */
export type MaybePromise<T> = T | Promise<T>;

/** Whether a value is a promise (or any thenable). */
export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return value !== null && typeof value === "object" &&
    typeof (value as { then?: unknown }).then === "function";
}
