// Shared by the benchmarks: a driver with a fixed number of events in flight,
// percentiles, Redis command counts from INFO commandstats, and what a report
// says of the machine (versions, load).
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

const root = new URL("../", import.meta.url);

/** The path of a program in node_modules/.bin. */
export const bin = (name: string): string =>
  new URL(`node_modules/.bin/${name}`, root).pathname;

/** The version of an installed npm package. */
export const version = (pkg: string): string =>
  JSON.parse(
    readFileSync(new URL(`node_modules/${pkg}/package.json`, root), "utf8"),
  ).version;

/** The first line a command prints (its version, say). */
export const firstLine = (command: string, args: string[]): string =>
  execFileSync(command, args, { encoding: "utf8" }).split("\n")[0]!.trim();

/** The load averages over 1, 5 and 15 minutes, for a report. */
export const loadAverage = (): string =>
  os.loadavg().map((x) => x.toFixed(2)).join(", ");

/**
 * Runs a command (a runtime's command prefix and a script) to its end;
 * resolves to what it printed, rejects when it exits with another code than 0.
 */
export function runProcess(command: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.once(
      "exit",
      (code) =>
        code === 0
          ? resolve(out)
          : reject(new Error(`${command.join(" ")} exited with ${code}`)),
    );
  });
}

/** Runs `count` events, at most `inFlight` at a time; returns per-event latencies. */
export async function drive(
  count: number,
  inFlight: number,
  handle: (i: number) => Promise<unknown>,
): Promise<{ seconds: number; latencies: Float64Array }> {
  const latencies = new Float64Array(count);
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const t0 = performance.now();
      await handle(i);
      latencies[i] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { seconds: (performance.now() - started) / 1000, latencies };
}

/** The p-th percentile (0-100) of the values. */
export function percentile(values: Float64Array | number[], p: number): number {
  const sorted = Float64Array.from(values).sort();
  return sorted[
    Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))
  ]!;
}

/** The median of the values. */
export function median(values: number[]): number {
  return percentile(values, 50);
}

/** The sum of a record's values. */
export function total(calls: Record<string, number>): number {
  return Object.values(calls).reduce((sum, n) => sum + n, 0);
}

/** A number rounded for a table. */
export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export { commandCalls } from "../test_support/redis.ts";
