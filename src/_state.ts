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
    const encoded = () => JSON.stringify({ v: 1, node: key, data: node.data });
    if (!schema) return encoded();
    const checked = (result: StandardSchemaV1.Result<unknown>) => {
      if (result.issues) throw new NodeDataError(key, result.issues);
      return encoded();
    };
    const result = schema["~standard"].validate(node.data);
    return isPromise(result) ? result.then(checked) : checked(result);
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
    const build = (value: unknown) => {
      const node = Object.create(cls.prototype) as Node<Ctx, Event, UserId>;
      node.data = value;
      return node;
    };
    if (!cls.schema) return build(data);
    const failed = (cause: unknown) =>
      new InvalidStateError("invalid-data", userId, raw, {
        node: key,
        cause,
        issues: [{ message: String(cause) }],
      });
    const checked = (result: StandardSchemaV1.Result<unknown>) =>
      result.issues
        ? new InvalidStateError("invalid-data", userId, raw, {
          node: key,
          issues: result.issues,
        })
        : build(result.value);
    let result;
    try {
      result = cls.schema["~standard"].validate(data);
    } catch (cause) {
      return failed(cause);
    }
    return isPromise(result) ? result.then(checked, failed) : checked(result);
  }
}

/** Whether a value is a promise (or any thenable). */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return value !== null && typeof value === "object" &&
    typeof (value as { then?: unknown }).then === "function";
}
