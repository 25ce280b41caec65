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

  /** Validates a node's data and encodes the node for the store. */
  async encode(node: Node<Ctx, Event, UserId>, key: string): Promise<string> {
    const schema = this.#classes.get(key)?.schema;
    if (schema) {
      const result = await schema["~standard"].validate(node.data);
      if (result.issues) throw new NodeDataError(key, result.issues);
    }
    const stored: Stored = { v: 1, node: key, data: node.data };
    return JSON.stringify(stored);
  }

  /**
   * Restores a node from a stored string without calling its constructor, or
   * returns the `InvalidStateError` that says why it cannot be.
   */
  async decode(
    userId: string,
    raw: string,
  ): Promise<Node<Ctx, Event, UserId> | InvalidStateError> {
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
    let value = data;
    if (cls.schema) {
      let result: StandardSchemaV1.Result<unknown>;
      try {
        result = await cls.schema["~standard"].validate(data);
      } catch (cause) {
        return new InvalidStateError("invalid-data", userId, raw, {
          node: key,
          cause,
          issues: [{ message: String(cause) }],
        });
      }
      if (result.issues) {
        return new InvalidStateError("invalid-data", userId, raw, {
          node: key,
          issues: result.issues,
        });
      }
      value = result.value;
    }
    const node = Object.create(cls.prototype) as Node<Ctx, Event, UserId>;
    node.data = value;
    return node;
  }
}
