// Batching helpers shared by the registry's multi-transaction writes.

/** Runs fn over items with at most `limit` calls in flight; rejects with the first failure. */
export async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Groups items into chunks whose summed weight stays within max. */
export function chunkBy<T>(items: readonly T[], weight: (item: T) => number, max: number): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let total = 0;
  for (const item of items) {
    const w = weight(item);
    if (current.length > 0 && total + w > max) {
      out.push(current);
      current = [];
      total = 0;
    }
    current.push(item);
    total += w;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Times a compare-and-swap is retried before it is reported as a conflict. */
export const CAS_ATTEMPTS = 8;
/** Requests of one batch operation in flight at once. */
export const WRITE_CONCURRENCY = 8;
