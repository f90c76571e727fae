// What a node costs the host: its processes' resident memory and what it
// has written to its overlay's upper layer.
import type { LabNode } from './node.js';
import { runOk } from './exec.js';
import { rssBytes } from './proc.js';
import { nodeLayout } from './state.js';

export interface NodeStats {
  processes: number;
  /** Sum of VmRSS over nspawn and every process in the node. */
  rssBytes: number;
  /** Disk blocks used by the upper layer (what the node wrote). */
  upperBytes: number;
}

export async function nodeStats(node: LabNode): Promise<NodeStats> {
  const pids = node.processes();
  const du = await runOk(['du', '-s', '-B1', '--one-file-system', nodeLayout(node.dir).upper]);
  return {
    processes: pids.length,
    rssBytes: pids.reduce((sum, pid) => sum + rssBytes(pid), 0),
    upperBytes: Number(du.stdout.split('\t')[0]),
  };
}
