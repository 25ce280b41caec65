// Other OS processes for the cross-process tests and benchmarks: the
// command that runs a TypeScript file on each runtime, and running one to
// its end.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The folder of the project's runtimes (node_modules/.bin/). */
export const bin: string = fileURLToPath(
  new URL("../node_modules/.bin/", import.meta.url),
);

/** The commands that run `file` on Deno, Bun and Node (through tsx). */
export function runtimeCommands(file: string): Record<string, string[]> {
  return {
    deno: [`${bin}deno`, "run", "-A", file],
    bun: [`${bin}bun`, "run", file],
    node: [`${bin}tsx`, file],
  };
}

/** The path of a file of test_support/. */
export function supportFile(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}

/** Runs a command to its end; resolves to its stdout, rejects with stderr. */
export function run(command: string[], timeout = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command[0]!, command.slice(1), { timeout }, (
      error,
      stdout,
      stderr,
    ) =>
      error
        ? reject(new Error(`${command.join(" ")}: ${stderr}`, { cause: error }))
        : resolve(stdout));
  });
}
