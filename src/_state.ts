import { InvalidStateError, NodeDataError } from "./errors.ts";
import type { Node, NodeClass } from "./node.ts";
import type { StandardSchemaV1 } from "./standard_schema.ts";

/** The stored form of a node: format version, registry key and data. */
interface Stored {
  v: 1;
  node: string;
  data?: unknown;
}

/**
 * Encodes nodes to stored strings and decodes them back, checking data with
 * each class's schema both ways.
 */
export class Registry<Ctx, Event, UserId extends string | number> {
  readonly #classes = new Map<string, NodeClass<Ctx, Event, UserId>>();
  readonly #keys = new Map<unknown, string>();

  constructor(nodes: Record<string, NodeClass<Ctx, Event, UserId>>) {
    if (nodes === null || typeof nodes !== "object") {
      throw new TypeError(
        'Cannot create Nodes: option "nodes" must be an object of node classes',
      );
    }
    for (const [key, cls] of Object.entries(nodes)) {
      if (typeof cls !== "function") {
        throw new TypeError(
          `Cannot register node "${key}": it is not a class`,
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
  keyOf(node: Node<Ctx, Event, UserId>): string | undefined {
    return node === null || typeof node !== "object"
      ? undefined
      : this.#keys.get(node.constructor);
  }

  get keys(): string[] {
    return [...this.#classes.keys()];
  }

  /**
   * Validates a node's data and encodes the node for the store; a promise
   * only when the schema validates asynchronously.
   */
  encode(
    node: Node<Ctx, Event, UserId>,
    key: string,
  ): string | Promise<string> {
    const schema = this.#classes.get(key)?.schema;
    if (!schema) return encodeNode(key, node.data);
    const result = schema["~standard"].validate(node.data);
    return isPromise(result)
      ? result.then((settled) => checkedEncoding(key, node.data, settled))
      : checkedEncoding(key, node.data, result);
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
    | Node<Ctx, Event, UserId>
    | InvalidStateError
    | Promise<Node<Ctx, Event, UserId> | InvalidStateError> {
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
    const { node: key, data } = stored as Stored;
    const cls = this.#classes.get(key);
    if (!cls) {
      return new InvalidStateError("unknown-node", userId, raw, { node: key });
    }
    if (!cls.schema) return restoreNode(cls, data);
    let result;
    try {
      result = cls.schema["~standard"].validate(data);
    } catch (cause) {
      return validationFailed(userId, raw, key, cause);
    }
    return isPromise(result)
      ? result.then(
        (settled) => checkedNode(cls, userId, raw, key, settled),
        (cause) => validationFailed(userId, raw, key, cause),
      )
      : checkedNode(cls, userId, raw, key, result);
  }
}

// The steps of encode and decode, as functions rather than closures: they
// run for every event.

function encodeNode(key: string, data: unknown): string {
  return JSON.stringify({ v: 1, node: key, data });
}

function checkedEncoding(
  key: string,
  data: unknown,
  result: StandardSchemaV1.Result<unknown>,
): string {
  if (result.issues) throw new NodeDataError(key, result.issues);
  return encodeNode(key, data);
}

// deno-lint-ignore no-explicit-any
function restoreNode<N extends Node<any, any, any>>(
  // deno-lint-ignore no-explicit-any
  cls: NodeClass<any, any, any>,
  value: unknown,
): N {
  const node = Object.create(cls.prototype) as N;
  node.data = value;
  return node;
}

// deno-lint-ignore no-explicit-any
function checkedNode<N extends Node<any, any, any>>(
  // deno-lint-ignore no-explicit-any
  cls: NodeClass<any, any, any>,
  userId: string,
  raw: string,
  key: string,
  result: StandardSchemaV1.Result<unknown>,
): N | InvalidStateError {
  return result.issues
    ? new InvalidStateError("invalid-data", userId, raw, {
      node: key,
      issues: result.issues,
    })
    : restoreNode<N>(cls, result.value);
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
    issues: [{ message: String(cause) }],
  });
}

/** Whether a value is a promise (or any thenable). */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return value !== null && typeof value === "object" &&
    typeof (value as { then?: unknown }).then === "function";
}
