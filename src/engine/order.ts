/**
 * Graph helpers for the scheduler: which Replaces= relations count, and the
 * order in which units are looked at.
 *
 * Units are numbered by name order. Two kinds of edge say "decide A before
 * B": B is MachineOf A (a follower goes where its target already is), and A
 * replaces B (the replaced unit must avoid wherever its replacers landed).
 */
import { popMin, pushMin } from './machine-heap.js';

const NOTHING: readonly number[] = Object.freeze([]);

/**
 * Drops the Replaces= relations that are circular: A→B is ignored when B
 * leads back to A through other Replaces (fleet ignored mutual pairs; any
 * longer loop would make units chase each other just the same).
 * `out[a]` lists the units a replaces; the result has the same shape.
 */
export function acyclicReplaces(out: readonly (readonly number[] | undefined)[]): (number[] | undefined)[] {
  const component = stronglyConnected(out);
  return Array.from(out, (targets, a) => {
    const kept = targets?.filter((b) => component[a] !== component[b]);
    return kept === undefined || kept.length === 0 ? undefined : kept;
  });
}

/**
 * A deterministic order over n units: every unit after the units it depends
 * on, otherwise by number (name). Where a cycle leaves no unit free, the
 * lowest-numbered waiting unit goes first, so the order is always complete.
 * `after[a]` lists the units that must come after a.
 */
export function dependencyOrder(n: number, after: readonly (readonly number[] | undefined)[]): Int32Array {
  const order = new Int32Array(n);
  let hasEdges = false;
  const indegree = new Int32Array(n);
  for (const targets of after) {
    for (const b of targets ?? NOTHING) {
      indegree[b] = (indegree[b] as number) + 1;
      hasEdges = true;
    }
  }
  if (!hasEdges) {
    for (let i = 0; i < n; i++) order[i] = i;
    return order;
  }
  const done = new Uint8Array(n);
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (indegree[i] === 0) pushMin(ready, i);
  let filled = 0;
  let scan = 0;
  while (filled < n) {
    let next: number;
    if (ready.length > 0) {
      next = popMin(ready);
      if (done[next] === 1) continue;
    } else {
      // A cycle: release the lowest-numbered unit still waiting.
      while (done[scan] === 1) scan++;
      next = scan;
    }
    done[next] = 1;
    order[filled++] = next;
    for (const b of after[next] ?? NOTHING) {
      indegree[b] = (indegree[b] as number) - 1;
      if (indegree[b] === 0 && done[b] === 0) pushMin(ready, b);
    }
  }
  return order;
}

/** Tarjan's strongly connected components, iteratively; returns a component id per node. */
function stronglyConnected(out: readonly (readonly number[] | undefined)[]): Int32Array {
  const n = out.length;
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const component = new Int32Array(n).fill(-1);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  const edgeAt = new Int32Array(n);
  let counter = 0;
  let components = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    const call: number[] = [root];
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (call.length > 0) {
      const v = call[call.length - 1] as number;
      const targets = out[v] ?? NOTHING;
      const e = edgeAt[v] as number;
      if (e < targets.length) {
        edgeAt[v] = e + 1;
        const w = targets[e] as number;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          call.push(w);
        } else if (onStack[w] === 1) {
          low[v] = Math.min(low[v] as number, index[w] as number);
        }
        continue;
      }
      call.pop();
      const parent = call[call.length - 1];
      if (parent !== undefined) low[parent] = Math.min(low[parent] as number, low[v] as number);
      if (low[v] === index[v]) {
        let w: number;
        do {
          w = stack.pop() as number;
          onStack[w] = 0;
          component[w] = components;
        } while (w !== v);
        components++;
      }
    }
  }
  return component;
}
