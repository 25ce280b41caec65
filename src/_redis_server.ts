// redis-server processes of a test's or benchmark's own, on loopback ports.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port"))
      );
    });
  });
}

/** A redis-server of the test's own, on a loopback port. */
export interface OwnRedis {
  port: number;
  url: string;
  /** Stops the server (SIGKILL when `hard`); resolves once it exited. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

/**
 * Starts a redis-server on a free loopback port, with extra arguments (where
 * `%PORT%` stands for the port, e.g. for `--tls-port`). `tls` is how to reach
 * a server that only speaks TLS.
 */
export async function startRedis(
  args: string[] = [],
  options: { tls?: { ca: string } } = {},
): Promise<OwnRedis> {
  const port = await freePort();
  const scheme = options.tls ? "rediss" : "redis";
  const url = `${scheme}://127.0.0.1:${port}`;
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<void> = Promise.resolve();
  const start = async () => {
    child = spawn("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      ...args.map((arg) => arg.replaceAll("%PORT%", String(port))),
    ], { stdio: "ignore" });
    const proc = child;
    exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    await waitForPing(url, options.tls);
  };
  await start();
  return {
    port,
    url,
    start,
    async stop(hard = false) {
      child?.kill(hard ? "SIGKILL" : "SIGTERM");
      await exited;
    },
  };
}

/** Resolves once a Redis at `url` answers PING (polls for up to 10 s). */
export async function waitForPing(
  url: string,
  tls?: { ca: string },
): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      ...(tls ? { tls } : {}),
    });
    client.on("error", () => {}); // refused while the server starts
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      client.disconnect();
    }
  }
}
