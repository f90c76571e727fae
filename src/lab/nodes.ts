// The node harness's public face: boot real systemd nodes, end them, and
// clean up after runs that crashed.
export { attachNode, bootNode, killLiveNodesSync, LabNode, NodeBootError, type BootOptions, type ExecOptions } from './node.js';
export { cleanup, type CleanupReport } from './cleanup.js';
export { nodeSupport, skipWithoutNodes, type NodeSupport } from './support.js';
export { nodeStats, type NodeStats } from './stats.js';
export { NODE_TEST_ROOT, makeRunDir } from './state.js';
export { mountsUnder, unmountAll } from './mounts.js';
export { NODE_TARGET, NODE_ENV_FILE, MASKED_UNITS } from './rootfs.js';
export type { RunResult } from './exec.js';
