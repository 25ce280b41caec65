/**
 * Whether a timer keeps the process alive, set on every runtime.
 *
 * @module
 */

/**
 * Whether a timer keeps the process alive: `ref()`/`unref()` on Node and
 * Bun, `Deno.refTimer`/`Deno.unrefTimer` on Deno. An unref'd timer is still
 * a pending timer to `deno test` with `sanitizeOps` on (off by default).
 */
export function holdOpen(timer: unknown, open: boolean): void {
  const handle = timer as { ref?: unknown; unref?: unknown } | null;
  if (typeof handle?.ref === "function" && typeof handle.unref === "function") {
    if (open) (handle as { ref(): void }).ref();
    else (handle as { unref(): void }).unref();
    return;
  }
  const deno = (globalThis as {
    Deno?: {
      refTimer?: (id: number) => void;
      unrefTimer?: (id: number) => void;
    };
  }).Deno;
  if (typeof timer === "number") {
    (open ? deno?.refTimer : deno?.unrefTimer)?.(timer);
  }
}
