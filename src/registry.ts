/**
 * The node registry and the state codec: which class each stored key names,
 * and how a node becomes the stored string and back (checked by the class's
 * schema both ways, JSON-faithful).
 *
 * @module
 */

import { InvalidStateError, NodeDataError } from "./errors.ts";
import { isPromise } from "./maybe_promise.ts";
import type { Node, NodeClass } from "./node.ts";
import type { StandardSchemaV1 } from "./standard_schema.ts";

/** The stored form of a node: format version, registry key and data. */
interface Stored {
  v: 1;
  node: string;
  data?: unknown;
  /** When the node's timer is due, in ms of the store's clock. */
  due?: number;
  /** The user id as given (a number stays a number), with `due`. */
  user?: string | number;
}

/** A node's armed timer, as restored: when it is due and for which user. */
export interface Armed {
  readonly due: number;
  readonly user: string | number;
}

/** How many dropped fields of one node key are reported (then: "more"). */
const DROPPED_REPORTS = 5;

/** The timers of restored nodes. */
const armedNodes = new WeakMap<object, Armed>();

/** The timer a restored node was stored with, if any. */
export function armedOf(node: unknown): Armed | undefined {
  return node !== null && typeof node === "object"
    ? armedNodes.get(node)
    : undefined;
}

/**
 * Encodes nodes to stored strings and decodes them back, checking data with
 * each class's schema both ways.
 */
export class Registry<Shared, Event, UserId extends string | number> {
  readonly #classes = new Map<string, NodeClass<Shared, Event, UserId>>();
  readonly #keys = new Map<unknown, string>();
  readonly #onDropped:
    | ((key: string, field: string | undefined) => void)
    | undefined;
  /** The fields reported dropped, by node key: each said once. */
  readonly #reported = new Map<string, Set<string>>();

  /**
   * @param nodes The node classes by key.
   * @param onDropped Told, once per node key and field, of a field of the
   * data a node was built with that its schema dropped (so it is not
   * stored: a field missing from the schema, most often); of at most
   * {@linkcode DROPPED_REPORTS} fields a node key, then once with no field
   * (there are more). What it throws is ignored.
   */
  constructor(
    nodes: Record<string, NodeClass<Shared, Event, UserId>>,
    onDropped?: (key: string, field: string | undefined) => void,
  ) {
    this.#onDropped = onDropped;
    if (nodes === null || typeof nodes !== "object" || Array.isArray(nodes)) {
      throw new TypeError(
        'Cannot create Nodes: option "nodes" must be an object of node classes by key ({ menu: Menu }), not ' +
          (Array.isArray(nodes) ? "an array" : describeValue(nodes)),
      );
    }
    for (const [key, cls] of Object.entries(nodes)) {
      // an arrow function has no prototype: it cannot be a node class
      if (
        typeof cls !== "function" || cls.prototype === null ||
        typeof cls.prototype !== "object"
      ) {
        throw new TypeError(
          `Cannot register node "${key}": it is not a class`,
        );
      }
      const schema = (cls as { schema?: unknown }).schema;
      if (
        schema !== undefined && schema !== null &&
        typeof (schema as { "~standard"?: { validate?: unknown } } | null)
            ?.["~standard"]?.validate !== "function"
      ) {
        throw new TypeError(
          `Cannot register node "${key}": its static schema is not a Standard Schema (zod 3.24 or later, Valibot, ArkType...), got ${
            describeValue(schema)
          }`,
        );
      }
      const proto = cls.prototype as {
        timeout?: unknown;
        onTimeout?: unknown;
      };
      if (
        typeof proto.timeout === "function" &&
        typeof proto.onTimeout !== "function"
      ) {
        throw new TypeError(
          `Cannot register node "${key}": it has a timeout() but no onTimeout()`,
        );
      }
      const other = this.#keys.get(cls);
      if (other !== undefined) {
        throw new TypeError(
          `Cannot register class "${cls.name}" as "${key}": it is already registered as "${other}"`,
        );
      }
      this.#classes.set(key, cls);
      this.#keys.set(cls, key);
    }
    if (this.#classes.size === 0) {
      throw new TypeError(
        'Cannot create Nodes: option "nodes" registers no node class',
      );
    }
  }

  /** The registry key of a node's class, or `undefined` when unregistered. */
  keyOf(node: Node<Shared, Event, UserId>): string | undefined {
    // the class of its prototype: an object's own `constructor` field does
    // not make it a node
    return node === null || typeof node !== "object"
      ? undefined
      : this.#keys.get(Object.getPrototypeOf(node)?.constructor);
  }

  get keys(): string[] {
    return [...this.#classes.keys()];
  }

  /**
   * Validates a node's data and encodes the node for the store; a promise
   * only when the schema validates asynchronously. What is stored is the
   * schema's output, and only when it comes back equal from JSON and equals
   * the data but for dropped unknown keys and added defaults (see
   * {@linkcode faithfulness}); otherwise throws `NodeDataError`.
   */
  encode(
    node: Node<Shared, Event, UserId>,
    key: string,
    armed?: Armed,
  ): string | Promise<string> {
    const schema = this.#classes.get(key)?.schema;
    const data = node.data;
    if (!schema) {
      return encodeNode(key, checkedOutput(key, data, { value: data }), armed);
    }
    const result = validated(schema, data);
    if (isPromise(result)) {
      return result.then((settled) => {
        const output = checkedOutput(key, data, settled);
        if (dropped !== undefined) this.#dropped(key, dropped);
        return reshaped
          ? stableEncoding(schema, key, output, armed)
          : encodeNode(key, output, armed);
      });
    }
    const output = checkedOutput(key, data, result);
    if (dropped !== undefined) this.#dropped(key, dropped);
    return reshaped
      ? stableEncoding(schema, key, output, armed)
      : encodeNode(key, output, armed);
  }

  /**
   * Tells `onDropped` of fields not told before: at most
   * {@linkcode DROPPED_REPORTS} a node key (a record keyed by user or by
   * date would name a new field at every event), then once that there are
   * more.
   */
  #dropped(key: string, paths: PropertyKey[][]): void {
    if (this.#onDropped === undefined) return;
    let told = this.#reported.get(key);
    if (told === undefined) this.#reported.set(key, told = new Set());
    for (const path of paths) {
      if (told.size > DROPPED_REPORTS) return;
      // one field of every item of an array
      const field = path.map((part) =>
        typeof part === "number" ? "*" : String(part)
      ).join(".");
      if (told.has(field)) continue;
      told.add(field);
      try {
        this.#onDropped(key, told.size > DROPPED_REPORTS ? undefined : field);
      } catch {
        // a report never changes what happens to the event
      }
    }
  }

  /**
   * Restores a node from a stored string without calling its constructor, or
   * returns the `InvalidStateError` that says why it cannot be; a promise
   * only when the schema validates asynchronously.
   */
  decode(
    userId: string,
    raw: string,
  ):
    | Node<Shared, Event, UserId>
    | InvalidStateError
    | Promise<Node<Shared, Event, UserId> | InvalidStateError> {
    let stored: unknown;
    try {
      stored = JSON.parse(raw);
    } catch (cause) {
      return new InvalidStateError("unparseable", userId, raw, { cause });
    }
    if (
      stored === null || typeof stored !== "object" ||
      (stored as Stored).v !== 1 || typeof (stored as Stored).node !== "string"
    ) {
      return new InvalidStateError("unparseable", userId, raw);
    }
    const { node: key } = stored as Stored;
    const armed = armedIn(stored as Stored, userId);
    const cls = this.#classes.get(key);
    if (!cls) {
      return withTimer(
        new InvalidStateError("unknown-node", userId, raw, { node: key }),
        armed,
      );
    }
    // only a state longer than the limit can be nested deeper than it
    if (
      raw.length > MAX_DEPTH && depthOver((stored as Stored).data, MAX_DEPTH)
    ) {
      const message = `nested deeper than ${MAX_DEPTH} levels`;
      return withTimer(
        new InvalidStateError("invalid-data", userId, raw, {
          node: key,
          issues: [{ message }],
        }),
        armed,
      );
    }
    // numbers JSON.parse reads as no commit could have stored them (written
    // by hand or by another program): -0 is read as 0, as a commit stores it;
    // a number out of range (Infinity) is invalid data
    const infinite = ODD_NUMBER.test(raw)
      ? evenNumbers(stored as Record<PropertyKey, unknown>, "data", [])
      : undefined;
    if (infinite !== undefined) {
      return withTimer(
        new InvalidStateError("invalid-data", userId, raw, {
          node: key,
          issues: [{
            message: "a number too large for JSON (read as Infinity)",
            path: infinite,
          }],
        }),
        armed,
      );
    }
    const data = (stored as Stored).data;
    if (!cls.schema) return restoreNode(cls, data, armed);
    const result = validated(cls.schema, data);
    return isPromise(result)
      ? result.then((settled) =>
        checkedNode(cls, userId, raw, key, settled, armed)
      )
      : checkedNode(cls, userId, raw, key, result, armed);
  }
}

/**
 * The timer a stored state holds for the user whose key holds it: a timer is
 * this user's only when the id stored with it is theirs (a state copied to
 * another user's key, by a merge or a restore, keeps its data but not
 * another user's timer).
 */
function armedIn(stored: Stored, userId: string): Armed | undefined {
  const { due, user } = stored;
  return typeof due === "number" && Number.isFinite(due) &&
      (typeof user === "string"
        ? user === userId
        : typeof user === "number" && Number.isSafeInteger(user) &&
          String(user) === userId)
    ? { due, user: user as string | number }
    : undefined;
}

/** The timers of stored states that `decode` could not restore. */
const storedTimers = new WeakMap<InvalidStateError, Armed>();

/**
 * The timer of a stored state that cannot be restored here but is a botnodes
 * state (its node key unknown to this registry, its data refused by this
 * schema), as `decode` read it: another version of the bot may fire it.
 */
export function storedTimer(invalid: InvalidStateError): Armed | undefined {
  return storedTimers.get(invalid);
}

/** An invalid state, noted with the timer its envelope holds. */
function withTimer(
  invalid: InvalidStateError,
  armed: Armed | undefined,
): InvalidStateError {
  if (armed !== undefined) storedTimers.set(invalid, armed);
  return invalid;
}

// The steps of encode and decode, as functions rather than closures: they
// run for every event.

function encodeNode(key: string, data: unknown, armed?: Armed): string {
  return armed === undefined
    ? JSON.stringify({ v: 1, node: key, data })
    : JSON.stringify({ v: 1, node: key, data, ...armed });
}

/** The schema's output, once checked to be storable; throws NodeDataError. */
function checkedOutput(
  key: string,
  data: unknown,
  result: Validated,
): unknown {
  if (result instanceof Thrown) throw schemaThrew(key, result.cause);
  if (result.issues) throw new NodeDataError(key, result.issues);
  const output = result.value;
  let flaw;
  try {
    flaw = faithfulness(output, data);
  } catch (cause) {
    // a revoked Proxy, a getter that throws: what cannot be read cannot be
    // stored
    throw new NodeDataError(key, [{
      message: `a value that cannot be read (${thrownText(cause)})`,
      path: [],
    }], { reason: "not-json", cause });
  }
  if (flaw) {
    throw new NodeDataError(key, [{ message: flaw.message, path: flaw.path }], {
      reason: flaw.reason,
    });
  }
  return output;
}

/**
 * The encoding of an output to which the schema added keys (defaults, or a
 * transform that adds a field), or from which it dropped keys (unknown keys
 * it strips, or a transform that drops a field): stored only when the schema
 * gives it back unchanged, as it will on every restore. A schema that
 * refuses its own output (it requires a field its transform drops) would
 * find the stored state invalid at the next restore: refused now.
 */
function stableEncoding(
  schema: StandardSchemaV1,
  key: string,
  output: unknown,
  armed: Armed | undefined,
): string | Promise<string> {
  const encoded = encodeNode(key, output, armed);
  // what a restore will validate: the stored JSON, not the output itself
  // (a key set to undefined is absent there, every object plain)
  const again = validated(schema, (JSON.parse(encoded) as Stored).data);
  const compare = (result: Validated): string => {
    if (result instanceof Thrown) throw schemaThrew(key, result.cause);
    if (result.issues) {
      const [issue] = result.issues;
      throw new NodeDataError(key, [{
        message:
          `the schema refuses its own output (${issue?.message}: a field it requires and drops?), so the stored data would be invalid at the next restore`,
        path: issue?.path ?? [],
      }], { reason: "unstable" });
    }
    if (encodeNode(key, result.value, armed) === encoded) return encoded;
    throw new NodeDataError(key, [{
      message:
        "the schema added fields that it changes again when given its own output (a transform that adds a changing field?), so the data would not come back as committed",
      path: [],
    }], { reason: "unstable" });
  };
  return isPromise(again) ? again.then(compare) : compare(again);
}

/** What a schema threw, instead of a result. */
class Thrown {
  constructor(readonly cause: unknown) {}
}

/** A schema's result, made conforming, or what it threw. */
type Validated = StandardSchemaV1.Result<unknown> | Thrown;

/**
 * Validates with a schema, trusting none of it: what it throws (or its
 * promise rejects with) comes back as `Thrown`, and a result that is no
 * Standard Schema result, or issues that cannot be read, as issues that say
 * so. A plain success comes back as the schema gave it.
 */
function validated(
  schema: StandardSchemaV1,
  data: unknown,
): Validated | Promise<Validated> {
  try {
    const result = schema["~standard"].validate(data);
    return isPromise(result)
      ? result.then(conformingOrThrown, (cause) => new Thrown(cause))
      : conforming(result);
  } catch (cause) {
    return new Thrown(cause);
  }
}

function conformingOrThrown(result: unknown): Validated {
  try {
    return conforming(result);
  } catch (cause) {
    return new Thrown(cause);
  }
}

/** A Standard Schema result as the schema should have given it; may throw. */
function conforming(result: unknown): StandardSchemaV1.Result<unknown> {
  if (result !== null && typeof result === "object") {
    const issues = (result as { issues?: unknown }).issues;
    if (issues === undefined) return result as StandardSchemaV1.Result<unknown>;
    if (Array.isArray(issues)) return { issues: issues.map(readableIssue) };
    return {
      issues: [{
        message: `the schema gave issues that are ${
          describeValue(issues)
        }, not an array`,
      }],
    };
  }
  return {
    issues: [{
      message: `the schema gave ${
        describeValue(result)
      } where a result ({ value } or { issues }) belongs`,
    }],
  };
}

/**
 * An issue whose message is a string and whose path can be shown: a
 * conforming one as it is (with the schema's own fields, such as zod's
 * `code`), another remade.
 */
function readableIssue(issue: unknown): StandardSchemaV1.Issue {
  try {
    const { message, path } = issue as { message?: unknown; path?: unknown };
    if (
      typeof message === "string" &&
      (path === undefined ||
        (Array.isArray(path) &&
          path.every((segment) => isKey(segmentKey(segment)))))
    ) {
      return issue as StandardSchemaV1.Issue;
    }
    return {
      message: typeof message === "string" ? message : thrownText(message),
      ...(Array.isArray(path) ? { path: path.map(readableSegment) } : {}),
    };
  } catch {
    return { message: "an issue that cannot be read" };
  }
}

function readableSegment(segment: unknown): PropertyKey {
  const key = segmentKey(segment);
  return isKey(key) ? key : describeValue(key);
}

/** A path segment's key: the segment, or its `key` (`{ key }` segments). */
function segmentKey(segment: unknown): unknown {
  return segment !== null && typeof segment === "object"
    ? (segment as { key?: unknown }).key
    : segment;
}

function isKey(key: unknown): key is PropertyKey {
  return typeof key === "string" || typeof key === "number" ||
    typeof key === "symbol";
}

function schemaThrew(key: string, cause: unknown): NodeDataError {
  return new NodeDataError(key, [{ message: thrownMessage(cause) }], {
    cause,
  });
}

/** What a schema threw, said without trusting it (it may throw again). */
function thrownMessage(cause: unknown): string {
  return `the schema threw: ${thrownText(cause)}`;
}

/** A thrown value's message, or what it is: it may throw when read. */
function thrownText(cause: unknown): string {
  try {
    return cause instanceof Error
      ? String(cause.message)
      : describeValue(cause);
  } catch {
    return "a value that cannot be shown";
  }
}

/** How deep node data may nest. */
const MAX_DEPTH = 512;

/** Whether a parsed JSON value nests deeper than `max`, without recursion. */
function depthOver(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [at, depth] = stack.pop()!;
    if (at === null || typeof at !== "object") continue;
    if (depth >= max) return true;
    for (const item of Object.values(at)) stack.push([item, depth + 1]);
  }
  return false;
}

/**
 * Whether a stored text may hold a number token that `JSON.parse` reads as
 * `-0` or as an infinity, after a `:`, `,` or `[`: `-0` itself (`-0.0`,
 * `-0e3`), an exponent of three digits either way (`-1e-400` is read as
 * `-0`, `1e400` as `Infinity`), or 200 characters or more (with an exponent
 * of two digits at most, only that many digits reach either). Only then is
 * the parsed data walked. A string with such characters matches too; the
 * walk then finds nothing.
 */
const ODD_NUMBER =
  /[:,[]\s*(?:-0(?:\.0*)?(?:[eE][+-]?\d+)?\s*[,\]}]|-?[\d.]+[eE][+-]?\d{3}|-?[\d.]{200,})/;

/**
 * Turns each `-0` under `holder[key]` (parsed JSON: plain objects, arrays)
 * into `0`, as a commit would store it, and returns the path of the first
 * infinite number, if any.
 */
function evenNumbers(
  holder: Record<PropertyKey, unknown>,
  key: PropertyKey,
  path: PropertyKey[],
): PropertyKey[] | undefined {
  const value = holder[key];
  if (typeof value === "number") {
    if (Object.is(value, -0)) holder[key] = 0;
    return Number.isFinite(value) ? undefined : [...path];
  }
  if (value === null || typeof value !== "object") return undefined;
  const array = Array.isArray(value);
  for (const item of Object.keys(value)) {
    const at = array ? Number(item) : item;
    path.push(at);
    const found = evenNumbers(value as Record<PropertyKey, unknown>, at, path);
    path.pop();
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Whether the last walk saw the output add object keys the input lacks
 * (defaults) or drop keys it has (stripped unknown keys): such an output is
 * checked against the schema again before it is stored (set by the walk:
 * encoding is synchronous between the walk and its reading).
 */
let reshaped = false;

/**
 * The paths of the fields of the input the last walk saw the output drop,
 * if any (set by the walk, like `reshaped`).
 */
let dropped: PropertyKey[][] | undefined;

/** Why a value may not be stored, and where. */
interface Flaw {
  reason: "not-json" | "unstable";
  path: PropertyKey[];
  message: string;
}

/** Compare nothing: the input side of a subtree the output added. */
const NONE = Symbol("none");

/**
 * Checks in one walk that `output` (what would be stored) comes back equal
 * from JSON, and that it equals `input` (what the schema was given) except
 * for object keys the input has and the output drops (unknown keys a schema
 * strips) and keys the output adds (defaults). Anything else the schema
 * changed would change again on every restore. Returns the first flaw found,
 * or `undefined` when the output may be stored. An object property whose
 * value is `undefined` is stored as absent (as an optional field reads it).
 *
 * Walking the output with the input beside it costs one pass over the data;
 * a subtree the schema returned as is (same reference) is only checked for
 * JSON.
 */
export function faithfulness(
  output: unknown,
  input: unknown,
): Flaw | undefined {
  reshaped = false;
  dropped = undefined;
  return walk(output, output === input ? NONE : input, [], []);
}

function walk(
  out: unknown,
  input: unknown,
  path: PropertyKey[],
  ancestors: object[],
): Flaw | undefined {
  switch (typeof out) {
    case "string":
    case "boolean":
      break;
    case "number":
      if (!Number.isFinite(out)) {
        return notJson(
          path,
          `${out} is not a JSON number (it comes back as null)`,
        );
      }
      if (Object.is(out, -0)) return notJson(path, "-0 comes back as 0");
      break;
    case "undefined":
      // callers skip undefined properties and refuse undefined items; a
      // whole `data` of undefined is stored as absent and comes back so
      break;
    case "bigint":
      return notJson(path, "a BigInt is not JSON (keep it as a string)");
    case "symbol":
      return notJson(path, "a symbol is not JSON");
    case "function":
      return notJson(path, "a function is not JSON");
    case "object":
      if (out === null) break;
      return walkObject(out, input, path, ancestors);
  }
  if (input !== NONE && out !== input) return changed(path, input, out);
  return undefined;
}

function walkObject(
  out: object,
  input: unknown,
  path: PropertyKey[],
  ancestors: object[],
): Flaw | undefined {
  if (ancestors.includes(out)) {
    return notJson(path, "a cycle: the value contains itself");
  }
  if (ancestors.length >= MAX_DEPTH) {
    return notJson(path, `nested deeper than ${MAX_DEPTH} levels`);
  }
  if (out === input) input = NONE;
  const proto = Object.getPrototypeOf(out);
  let flaw: Flaw | undefined;
  ancestors.push(out);
  if (Array.isArray(out)) {
    if (hasToJson(out)) {
      // JSON.stringify would store what it returns, enumerable or not
      flaw = notJson(path, "an array with a toJSON method is not JSON data");
    } else if (proto !== Array.prototype) {
      flaw = notJson(path, `${instance(proto)} is not JSON`);
    } else if (
      input !== NONE && !(Array.isArray(input) && input.length === out.length)
    ) {
      flaw = changed(path, input, out);
    } else if (Object.keys(out).length > out.length) {
      flaw = notJson(path, "a property of an array that is no item is lost");
    } else {
      const items = input as unknown[] | typeof NONE;
      for (let i = 0; i < out.length && !flaw; i++) {
        path.push(i);
        if (!(i in out)) {
          flaw = notJson(path, "a hole in an array comes back as null");
        } else if (out[i] === undefined) {
          flaw = notJson(path, "undefined in an array comes back as null");
        } else {
          flaw = walk(
            out[i],
            items === NONE ? NONE : items[i],
            path,
            ancestors,
          );
        }
        if (!flaw) path.pop();
      }
    }
  } else if (proto !== Object.prototype && proto !== null) {
    flaw = notJson(path, `${instance(proto)} is not JSON${dateHint(out)}`);
  } else if (hasToJson(out)) {
    flaw = notJson(path, "an object with a toJSON method is not JSON data");
  } else if (Object.getOwnPropertySymbols(out).length > 0) {
    flaw = notJson(path, "a symbol key is not JSON");
  } else if (input !== NONE && !isPlainObject(input)) {
    flaw = changed(path, input, out);
  } else {
    const fields = input as Record<string, unknown> | typeof NONE;
    for (const key of Object.keys(out)) {
      const value = (out as Record<string, unknown>)[key];
      if (value === undefined) continue; // stored as absent
      path.push(key);
      // a field the input lacks (or has as undefined) is a default: only
      // checked for JSON
      const before = fields === NONE || !Object.hasOwn(fields, key)
        ? NONE
        : fields[key] === undefined
        ? NONE
        : fields[key];
      if (before === NONE && fields !== NONE) reshaped = true;
      flaw = walk(value, before, path, ancestors);
      if (flaw) break;
      path.pop();
    }
    // a field the input has and the output drops is an unknown key stripped
    // by the schema; a field the output made undefined is a change
    if (!flaw && fields !== NONE) {
      for (const key of Object.keys(fields)) {
        if (fields[key] === undefined) continue;
        if (!Object.hasOwn(out, key)) {
          reshaped = true;
          (dropped ??= []).push([...path, key]);
        } else if ((out as Record<string, unknown>)[key] === undefined) {
          path.push(key);
          flaw = changed(path, fields[key], undefined);
          break;
        }
      }
    }
  }
  ancestors.pop();
  return flaw;
}

/** Whether JSON.stringify would call a toJSON of the value (as it reads it). */
function hasToJson(value: object): boolean {
  return typeof (value as { toJSON?: unknown }).toJSON === "function";
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return false;
  }
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function instance(proto: object | null): string {
  const name = (proto as { constructor?: { name?: unknown } } | null)
    ?.constructor?.name;
  return typeof name === "string" && name !== ""
    ? `an instance of ${name}`
    : "an instance of a class";
}

function dateHint(value: object): string {
  return value instanceof Date
    ? " (keep a date as an ISO string, z.iso.datetime(), or a number of ms)"
    : "";
}

function notJson(path: PropertyKey[], message: string): Flaw {
  return { reason: "not-json", path: [...path], message };
}

function changed(path: PropertyKey[], before: unknown, after: unknown): Flaw {
  return {
    reason: "unstable",
    path: [...path],
    message: `the schema changed ${describeValue(before)} to ${
      describeValue(after)
    }, and would change it again on every restore`,
  };
}

export function describeValue(value: unknown): string {
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object" && value !== null) return "an object";
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol" || typeof value === "function") {
    return `a ${typeof value}`;
  }
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

// deno-lint-ignore no-explicit-any
function restoreNode<N extends Node<any, any, any>>(
  // deno-lint-ignore no-explicit-any
  cls: NodeClass<any, any, any>,
  value: unknown,
  armed: Armed | undefined,
): N {
  const node = Object.create(cls.prototype) as N;
  node.data = value;
  if (armed !== undefined) armedNodes.set(node, armed);
  return node;
}

// deno-lint-ignore no-explicit-any
function checkedNode<N extends Node<any, any, any>>(
  // deno-lint-ignore no-explicit-any
  cls: NodeClass<any, any, any>,
  userId: string,
  raw: string,
  key: string,
  result: Validated,
  armed: Armed | undefined,
): N | InvalidStateError {
  if (result instanceof Thrown) {
    return withTimer(validationFailed(userId, raw, key, result.cause), armed);
  }
  return result.issues
    ? withTimer(
      new InvalidStateError("invalid-data", userId, raw, {
        node: key,
        issues: result.issues,
      }),
      armed,
    )
    : restoreNode<N>(cls, result.value, armed);
}

function validationFailed(
  userId: string,
  raw: string,
  key: string,
  cause: unknown,
): InvalidStateError {
  return new InvalidStateError("invalid-data", userId, raw, {
    node: key,
    cause,
    issues: [{ message: thrownMessage(cause) }],
  });
}
