/**
 * The errors botnodes throws for conditions a caller is expected to catch.
 *
 * @module
 */

import type { StandardSchemaV1 } from "./standard_schema.ts";

/**
 * The base class of every error botnodes throws on purpose, so one
 * `instanceof BotnodesError` check catches them all.
 *
 * @example Telling botnodes' errors from a handler's own
 * ```ts
 * import assert from "node:assert/strict";
 * import { BotnodesError, LeaseTimeoutError } from "@botnodes/core";
 *
 * function describe(error: unknown): string {
 *   return error instanceof BotnodesError ? `botnodes: ${error.name}` : "other";
 * }
 * assert.equal(describe(new Error("x")), "other");
 * assert.equal(
 *   describe(new LeaseTimeoutError("42", 35_000)),
 *   "botnodes: LeaseTimeoutError",
 * );
 * ```
 */
export class BotnodesError extends Error {
  /**
   * Makes an error with a message and an optional cause.
   *
   * @param message What could not be done and why.
   * @param options The standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A node (returned by `start`, `onEvent`, an invalid-state hook or passed to
 * `user(id).to`) whose class is not in the `nodes` registry. Nothing is
 * written: the user stays where they were.
 *
 * @example Catching a forgotten registration
 * ```ts
 * import assert from "node:assert/strict";
 * import { UnregisteredNodeError } from "@botnodes/core";
 *
 * const error = new UnregisteredNodeError("Checkout", ["start", "menu"]);
 * assert.match(error.message, /^Cannot use node "Checkout": its class is not/);
 * assert.deepEqual(error.registered, ["start", "menu"]);
 * ```
 */
export class UnregisteredNodeError extends BotnodesError {
  /** The name of the class that is not registered. */
  readonly className: string;
  /** The keys that are registered. */
  readonly registered: readonly string[];

  /**
   * Makes the error.
   *
   * @param className The name of the node's class.
   * @param registered The keys of the registry.
   */
  constructor(className: string, registered: readonly string[]) {
    super(
      `Cannot use node "${className}": its class is not registered (registered keys: ${
        registered.map((key) => `"${key}"`).join(", ")
      })`,
    );
    this.className = className;
    this.registered = registered;
  }
}

/**
 * Why a node's data may not be stored (see {@linkcode NodeDataError}):
 * - `"schema"`: the class's schema rejects it;
 * - `"not-json"`: it would not come back equal from JSON (a `Date`, a `Map`,
 *   a class instance, a `BigInt`, `NaN`, `Infinity`, `-0`, a function, a
 *   symbol, `undefined` in an array, a hole in an array, a cycle);
 * - `"unstable"`: the schema does not give back its own output (a transform
 *   changed a value that was there), so the data would drift each time it is
 *   restored.
 *
 * @example
 * ```ts
 * import type { NodeDataReason } from "@botnodes/core";
 *
 * const reason: NodeDataReason = "not-json";
 * ```
 */
export type NodeDataReason = "schema" | "not-json" | "unstable";

/**
 * Options of {@linkcode NodeDataError}.
 *
 * @example
 * ```ts
 * import type { NodeDataErrorOptions } from "@botnodes/core";
 *
 * const options: NodeDataErrorOptions = { reason: "not-json" };
 * ```
 */
export interface NodeDataErrorOptions {
  /** Why the data may not be stored. Default `"schema"`. */
  readonly reason?: NodeDataReason | undefined;
  /** What the schema threw, when it threw instead of returning issues. */
  readonly cause?: unknown;
}

/**
 * A node's `data` that may not be stored: its class's schema rejects it, it
 * would not come back equal from the store (JSON), or the schema does not
 * give back its own output; a schema that throws instead of returning issues
 * gives this error too, with what it threw as `cause`. Thrown before anything
 * is written: the user stays where they were. `issues` names each field (its `path`) and why.
 *
 * @example Reading the schema's issues
 * ```ts
 * import assert from "node:assert/strict";
 * import { NodeDataError } from "@botnodes/core";
 *
 * const error = new NodeDataError("hungry", [{ message: "Expected array" }]);
 * assert.equal(error.issues[0]?.message, "Expected array");
 * assert.equal(error.reason, "schema");
 * ```
 */
export class NodeDataError extends BotnodesError {
  /** The registry key of the node. */
  readonly node: string;
  /** Why the data may not be stored. */
  readonly reason: NodeDataReason;
  /** What is wrong, field by field (`path`). */
  readonly issues: ReadonlyArray<StandardSchemaV1.Issue>;

  /**
   * Makes the error.
   *
   * @param node The registry key of the node.
   * @param issues What is wrong: the schema's issues, or the fields that
   * would not round-trip.
   * @param options Why the data may not be stored.
   */
  constructor(
    node: string,
    issues: ReadonlyArray<StandardSchemaV1.Issue>,
    options: NodeDataErrorOptions = {},
  ) {
    const reason = options.reason ?? "schema";
    const what = reason === "schema"
      ? "its data fails the schema"
      : reason === "not-json"
      ? "its data would not come back equal from JSON"
      : "its schema does not give back its own output";
    super(
      `Cannot store node "${node}": ${what} (${formatIssues(issues)})`,
      "cause" in options ? { cause: options.cause } : undefined,
    );
    this.node = node;
    this.reason = reason;
    this.issues = issues;
  }
}

/**
 * A node's encoded state is larger than the `maxStateBytes` option of
 * `Nodes`. Nothing is written: the user stays where they were.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StateTooLargeError } from "@botnodes/core";
 *
 * const error = new StateTooLargeError("cart", 2_000_000, 1_048_576);
 * assert.equal(error.bytes, 2_000_000);
 * assert.equal(error.limit, 1_048_576);
 * ```
 */
export class StateTooLargeError extends BotnodesError {
  /** The registry key of the node. */
  readonly node: string;
  /** The size of the encoded state, in bytes (UTF-8). */
  readonly bytes: number;
  /** The limit, in bytes. */
  readonly limit: number;

  /**
   * Makes the error.
   *
   * @param node The registry key of the node.
   * @param bytes The size of the encoded state.
   * @param limit The limit.
   */
  constructor(node: string, bytes: number, limit: number) {
    super(
      `Cannot store node "${node}": its state is ${bytes} bytes, over the limit of ${limit} bytes`,
    );
    this.node = node;
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** Why a stored state could not be restored. */
export type InvalidStateReason =
  | "unparseable"
  | "unknown-node"
  | "invalid-data";

/**
 * A user's stored state that cannot be restored: not parseable, naming a node
 * key that is not registered, or with data the node's schema rejects.
 *
 * It is handed to the `onInvalidState` hook; `route` throws it only when the
 * hook rethrows it. The raw value is in `raw`.
 *
 * @example Rethrowing invalid state instead of starting over
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidStateError } from "@botnodes/core";
 *
 * const onInvalidState = (error: InvalidStateError) => {
 *   if (error.reason === "unparseable") throw error;
 *   return undefined; // start over for the other reasons
 * };
 * const garbled = new InvalidStateError("unparseable", "42", "{not json");
 * assert.throws(() => onInvalidState(garbled), InvalidStateError);
 * assert.equal(garbled.raw, "{not json");
 * ```
 */
export class InvalidStateError extends BotnodesError {
  /** Why the state could not be restored. */
  readonly reason: InvalidStateReason;
  /** The user whose state it is, as a string. */
  readonly userId: string;
  /** The stored value, as it was. */
  readonly raw: string;
  /** The schema's issues, for `"invalid-data"`. */
  readonly issues: ReadonlyArray<StandardSchemaV1.Issue>;

  /**
   * Makes the error.
   *
   * @param reason Why the state could not be restored.
   * @param userId The user whose state it is.
   * @param raw The stored value.
   * @param details Optional schema issues and cause.
   */
  constructor(
    reason: InvalidStateReason,
    userId: string,
    raw: string,
    details: {
      issues?: ReadonlyArray<StandardSchemaV1.Issue>;
      cause?: unknown;
      node?: string;
    } = {},
  ) {
    const what = reason === "unparseable"
      ? "it is not a botnodes state"
      : reason === "unknown-node"
      ? `node key "${details.node}" is not registered`
      : `the data of node "${details.node}" fails the schema (${
        formatIssues(details.issues ?? [])
      })`;
    super(
      `Cannot restore the state of user "${userId}": ${what}`,
      "cause" in details ? { cause: details.cause } : undefined,
    );
    this.reason = reason;
    this.userId = userId;
    this.raw = raw;
    this.issues = details.issues ?? [];
  }
}

/**
 * The per-user lease could not be taken within the store's `wait` option:
 * another process kept it the whole time. Nothing was run or written.
 *
 * @example Replying "busy" instead of failing
 * ```ts
 * import assert from "node:assert/strict";
 * import { LeaseTimeoutError } from "@botnodes/core";
 *
 * const isBusy = (error: unknown) => error instanceof LeaseTimeoutError;
 * assert.ok(isBusy(new LeaseTimeoutError("42", 35_000)));
 * assert.ok(!isBusy(new Error("the handler failed")));
 * ```
 */
export class LeaseTimeoutError extends BotnodesError {
  /** The user whose lease was wanted. */
  readonly userId: string;
  /** How long it waited, in milliseconds. */
  readonly waited: number;

  /**
   * Makes the error.
   *
   * @param userId The user whose lease was wanted.
   * @param waited How long it waited, in milliseconds.
   * @param queued Whether it waited behind an earlier call for the user in
   * this process (still running, or still waiting for the store: Redis down
   * or slow), rather than for a lease another handler holds.
   */
  constructor(userId: string, waited: number, queued = false) {
    super(
      queued
        ? `Cannot take the lease of user "${userId}": an earlier call for this user in this process was still running (or waiting for the store) after ${waited} ms`
        : `Cannot take the lease of user "${userId}": still held by another handler after ${waited} ms`,
    );
    this.userId = userId;
    this.waited = waited;
  }
}

/**
 * Why a commit was fenced (see {@linkcode LeaseLostError}).
 *
 * - `"expired"`: this handler's lease expired and the state was changed
 *   since by another handler.
 * - `"overtaken"`: this handler's lease is still held, but a handler whose
 *   own lease had expired committed meanwhile (its commit was accepted
 *   because the state was unchanged when it came), so this one was based on
 *   an older state.
 *
 * @example
 * ```ts
 * import type { LeaseLostReason } from "@botnodes/core";
 *
 * const reason: LeaseLostReason = "expired";
 * ```
 */
export type LeaseLostReason = "expired" | "overtaken";

/**
 * A commit was refused because the user's state was changed since its lease
 * was taken (fencing): writing would have overwritten a newer state. Nothing
 * was written; the newer state stands. `reason` says how it came to be.
 *
 * @example Recognising a fenced commit
 * ```ts
 * import assert from "node:assert/strict";
 * import { LeaseLostError } from "@botnodes/core";
 *
 * const error = new LeaseLostError("42", "overtaken");
 * assert.ok(error instanceof LeaseLostError);
 * assert.equal(error.reason, "overtaken");
 * ```
 */
export class LeaseLostError extends BotnodesError {
  /** The user whose commit was refused. */
  readonly userId: string;
  /** How the state came to change under this handler. */
  readonly reason: LeaseLostReason;

  /**
   * Makes the error.
   *
   * @param userId The user whose commit was refused.
   * @param reason Whether this handler's lease expired, or is still held
   * and was overtaken by a late commit of an expired one.
   */
  constructor(userId: string, reason: LeaseLostReason = "expired") {
    super(
      reason === "expired"
        ? `Cannot commit the state of user "${userId}": the lease expired and the state was changed since`
        : `Cannot commit the state of user "${userId}": while the lease was held, a handler whose lease had expired changed the state`,
    );
    this.userId = userId;
    this.reason = reason;
  }
}

/**
 * The store operations (the methods of `StateStore`) a {@linkcode StoreError}
 * can name.
 *
 * @example
 * ```ts
 * import type { StoreOperation } from "@botnodes/core";
 *
 * const operation: StoreOperation = "commit";
 * ```
 */
export type StoreOperation =
  | "get"
  | "begin"
  | "commit"
  | "release"
  | "renew"
  | "aside"
  | "schedule"
  | "unschedule"
  | "dueTimers"
  | "claimTimers"
  | "deferTimer"
  | "scan";

/**
 * The store could not be reached or failed (connection refused, timeout,
 * script error). The operation did not take effect as a whole: nothing is
 * half-written.
 *
 * @example Naming the failed operation
 * ```ts
 * import assert from "node:assert/strict";
 * import { StoreError } from "@botnodes/core";
 *
 * const error = new StoreError("commit", "42", new Error("ECONNREFUSED"));
 * assert.equal(error.operation, "commit");
 * assert.equal(error.userId, "42");
 *
 * // a password in the client's error is not repeated
 * const leaky = new Error("cannot reach redis://bot:hunter2@db:6379");
 * assert.doesNotMatch(new StoreError("get", "42", leaky).message, /hunter2/);
 * ```
 */
export class StoreError extends BotnodesError {
  /** The store operation that failed. */
  readonly operation: StoreOperation;
  /** The user the operation was for. */
  readonly userId: string;

  /**
   * Makes the error. Secrets the client put in its error (a password in a
   * URL, a bearer token or `Authorization` header, `AUTH` and `HELLO`
   * arguments, a parameter or field named as a secret such as `password=`
   * or `access_token=`, a Telegram bot token) are replaced by `***`, in the
   * message and in the cause.
   *
   * @param operation The store operation that failed.
   * @param userId The user the operation was for.
   * @param cause The error the store client gave.
   */
  constructor(operation: StoreOperation, userId: string, cause: unknown) {
    const safe = redactError(cause);
    super(
      `Cannot ${whatOf(operation, userId)}: the store failed (${
        safe instanceof Error
          ? safe.message || withoutMessage(cause)
          : redact(String(safe))
      })`,
      { cause: safe },
    );
    this.operation = operation;
    this.userId = userId;
  }
}

/**
 * What a failed store operation was about: a user's state, or (a scan, the
 * index of timers) the store's users or timers as a whole.
 */
function whatOf(operation: StoreOperation, userId: string): string {
  switch (operation) {
    case "scan":
      return "scan the stored users";
    case "dueTimers":
    case "claimTimers":
      return `read the timers (${operation})`;
    case "schedule":
    case "unschedule":
      return `${operation} a timer of user "${userId}"`;
    case "deferTimer":
      return `put off a timer of user "${userId}"`;
    case "release":
    case "renew":
      return `${operation} the lease of user "${userId}"`;
    case "aside":
      return `read the values kept aside for user "${userId}"`;
    default:
      return `${operation} the state of user "${userId}"`;
  }
}

/**
 * An error without a message, as a message shows it: its class (node-redis'
 * `TimeoutError` is named "Error" and says nothing).
 */
function withoutMessage(error: unknown): string {
  try {
    const name = (error as { constructor?: { name?: unknown } })?.constructor
      ?.name;
    if (typeof name === "string" && name !== "") {
      return `${redact(name)}, with no message`;
    }
  } catch {
    // a Proxy that throws: nothing more to say
  }
  return "an error with no message";
}

/** What looks like a secret in a client's error text, and its replacement. */
const SECRETS: [RegExp, string][] = [
  // the user info of a URL, up to its last "@" (a password may hold "@", "/");
  // none in a file URL (file:///.../@scope/pkg in a stack)
  [/\b(?!file:)([a-z][a-z0-9+.-]*:\/\/)\S*@/gi, "$1***@"],
  // an HTTP authorization header: its credentials, after the scheme
  [
    /\b((?:proxy-)?authorization\s*[:=]\s*)(\w+\s+)?[^\s,;]+/gi,
    "$1$2***",
  ],
  [/\b(bearer|basic)\s+[^\s"',;]+/gi, "$1 ***"],
  // AUTH [user] password, and HELLO <version> AUTH user password, as command
  // lines show them
  [/\b(HELLO\s+\d+\s+AUTH)\s+\S+(\s+\S+)?/gi, "$1 ***"],
  [/\bAUTH\s+\S+(\s+\S+)?/gi, "AUTH ***"],
  // the arguments of a command Redis did not know, and of one Upstash shows
  [/(with args beginning with:)[\s\S]*/gi, "$1 ***"],
  [/(command was:\s*)[\s\S]*/gi, "$1***"],
  // a field or parameter whose name says secret (access_token, X-Api-Key,
  // client_secret, ...): its value, quoted (spaces and all) or not
  [
    /\b((?:[a-z0-9]+[_-])*(?:password|passwd|pass|pwd|token|secret|auth|api[_-]?key)|(?:[a-z0-9]+[_-])+key)(["']?\s*[:=]\s*)(?![\]})>])(?:(["'])(?:(?!\3)[^\\]|\\.)*\3?|[^\s&"',]+)/gi,
    "$1$2***",
  ],
  // a Telegram bot token: <bot id>:<35 characters>
  [/(?<!\d)\d{5,16}:[\w-]{30,}/g, "***"],
];

/** Replaces what looks like a secret in a text by `***`. */
function redact(text: string): string {
  for (const [pattern, replacement] of SECRETS) {
    text = text.replace(pattern, replacement);
  }
  return text;
}

/**
 * A copy of a client's error that carries no secret: its name, message and
 * stack redacted, its own properties of a primitive type (`code`, `errno`,
 * ...) kept (strings redacted), the name of a failed command kept, every
 * other property (a command's arguments may hold a password) left out, its
 * causes copied the same way.
 */
function redactError(error: unknown, depth = 0): unknown {
  if (!(error instanceof Error)) {
    if (typeof error === "string") return redact(error);
    if (error === null || typeof error !== "object") return error;
    // an object that is no Error but says what went wrong: what it says
    try {
      const message = (error as { message?: unknown }).message;
      if (typeof message === "string" && message !== "") return redact(message);
      return redact(String(error));
    } catch {
      return "an object that cannot be shown";
    }
  }
  const cause = depth < 4 && "cause" in error
    ? redactError(error.cause, depth + 1)
    : undefined;
  // an AggregateError (Node's connection to every address of a host) says
  // nothing itself: its errors do
  const errors = (error as { errors?: unknown }).errors;
  // (and a message or stack that is no string, from a client's own class)
  const message = error.message === "" && Array.isArray(errors)
    ? errors.map((e) => e instanceof Error ? e.message : String(e)).join("; ")
    : String(error.message ?? "");
  const copy = new Error(
    redact(message),
    cause === undefined ? {} : { cause },
  );
  copy.name = error.name;
  copy.stack = redact(typeof error.stack === "string" ? error.stack : "");
  for (const [key, value] of Object.entries(error)) {
    if (key === "cause") continue;
    if (typeof value === "string") {
      Object.assign(copy, { [key]: redact(value) });
    } else if (value === null || typeof value !== "object") {
      Object.assign(copy, { [key]: value });
    }
  }
  const command = (error as { command?: { name?: unknown } }).command;
  if (typeof command?.name === "string") {
    Object.assign(copy, { command: { name: command.name } });
  }
  return copy;
}

function formatIssues(issues: ReadonlyArray<StandardSchemaV1.Issue>): string {
  return issues.map((issue) => {
    const path = issue.path?.map((segment) =>
      typeof segment === "object" ? String(segment.key) : String(segment)
    ).join(".");
    return path ? `${path}: ${issue.message}` : issue.message;
  }).join("; ");
}
