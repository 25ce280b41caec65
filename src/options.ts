/**
 * Checks of numeric options, shared by `Nodes` and the stores.
 *
 * @module
 */

/**
 * The longest delay a JavaScript timer takes, in ms (2^31 - 1, about 24.8
 * days): the largest `leaseTtl`, `wait` and `runTimers` interval.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** The largest `count` of a scan (Redis `SCAN`'s `COUNT`). */
export const MAX_SCAN_COUNT = 1_000_000;

/**
 * `value` if it is a whole number from `min` to `max`; otherwise a
 * `TypeError` (not a number) or `RangeError` naming the option.
 *
 * @param option How the option is named in the error (`"runDue: limit"`).
 */
export function wholeNumber(
  option: string,
  value: unknown,
  min: number,
  max: number,
): number {
  return checked(option, value, min, max, Number.isInteger(value), "whole ");
}

/**
 * `value` if it is a finite number from `min` to `max`; otherwise a
 * `TypeError` or `RangeError` naming the option.
 */
export function finiteNumber(
  option: string,
  value: unknown,
  min: number,
  max: number,
): number {
  return checked(option, value, min, max, Number.isFinite(value), "");
}

function checked(
  option: string,
  value: unknown,
  min: number,
  max: number,
  ofKind: boolean,
  kind: "whole " | "",
): number {
  if (typeof value !== "number") {
    throw new TypeError(`${option} must be a number, got ${typeof value}`);
  }
  if (!ofKind || value < min || value > max) {
    throw new RangeError(
      `${option} must be a ${kind}number from ${
        min.toLocaleString("en-US")
      } to ${max.toLocaleString("en-US")}, got ${value}`,
    );
  }
  return value;
}
