/**
 * The part of the Standard Schema v1 interface that botnodes uses.
 *
 * Standard Schema (https://standardschema.dev) is implemented by zod 4,
 * valibot, ArkType and others, and its authors ask libraries to declare the
 * types instead of depending on a package; these declarations are structurally
 * the same, so any compliant schema fits.
 *
 * @module
 */

/**
 * A schema that follows the Standard Schema v1 interface, such as a zod 4
 * schema.
 *
 * @typeParam Input The type the schema accepts.
 * @typeParam Output The type the schema produces after validation.
 *
 * @example Using a zod schema as a node's schema
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import type { StandardSchemaV1 } from "@botnodes/core";
 *
 * const schema: StandardSchemaV1<{ order: string[] }> = z.object({
 *   order: z.array(z.string()),
 * });
 * const valid = await schema["~standard"].validate({ order: ["soup"] });
 * assert.deepEqual(valid, { value: { order: ["soup"] } });
 * const invalid = await schema["~standard"].validate({ order: "soup" });
 * assert.equal(invalid.issues?.[0]?.path?.[0], "order");
 * ```
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly "~standard": StandardSchemaV1.Props<Input, Output>;
}

/** Types of the Standard Schema v1 interface. */
export declare namespace StandardSchemaV1 {
  /** The Standard Schema properties of a schema. */
  export interface Props<Input = unknown, Output = Input> {
    /** The version of the interface: always 1. */
    readonly version: 1;
    /** The library that made the schema. */
    readonly vendor: string;
    /** Validates a value; sync or async. */
    readonly validate: (
      value: unknown,
    ) => Result<Output> | Promise<Result<Output>>;
    /** The input and output types, for type inference only. */
    readonly types?: Types<Input, Output> | undefined;
  }

  /** The result of a validation. */
  export type Result<Output> = SuccessResult<Output> | FailureResult;

  /** A successful validation. */
  export interface SuccessResult<Output> {
    /** The validated (and possibly transformed) value. */
    readonly value: Output;
    /** Absent on success. */
    readonly issues?: undefined;
  }

  /** A failed validation. */
  export interface FailureResult {
    /** What is wrong with the value. */
    readonly issues: ReadonlyArray<Issue>;
  }

  /** One problem found by a validation. */
  export interface Issue {
    /** A human-readable message. */
    readonly message: string;
    /** Where in the value the problem is. */
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }

  /** A segment of an issue's path. */
  export interface PathSegment {
    /** The key of the segment. */
    readonly key: PropertyKey;
  }

  /** The input and output types of a schema. */
  export interface Types<Input = unknown, Output = Input> {
    /** The input type. */
    readonly input: Input;
    /** The output type. */
    readonly output: Output;
  }

  /** The input type of a schema. */
  export type InferInput<Schema extends StandardSchemaV1> = NonNullable<
    Schema["~standard"]["types"]
  >["input"];

  /** The output type of a schema. */
  export type InferOutput<Schema extends StandardSchemaV1> = NonNullable<
    Schema["~standard"]["types"]
  >["output"];
}
