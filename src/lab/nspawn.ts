// Starting systemd-nspawn on a node's overlay root, detached from us, and
// finding the node's own systemd (PID 1 inside it) among nspawn's children.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { findCheckout } from './flotillad-files.js';
import { NODE_TARGET } from './rootfs.js';
import { childrenOf, comm } from './proc.js';

// Run by `unshare -m` in a mount namespace of its own: the host's /run is
// not a tmpfs and there is no machined, so nspawn gets a private tmpfs for
// its runtime state, registers nowhere and creates no scope. Before that the
// shell moves itself into the node's own cgroups (src/lab/cgroup.ts), under
// which nspawn puts the node.
const BOOT_SCRIPT = [
  'set -e',
  'for d in $FLOTILLA_NODE_CGROUPS; do echo $$ > "$d/cgroup.procs"; done',
  'unset FLOTILLA_NODE_CGROUPS',
  'mkdir -p /run/systemd/nspawn',
  'mount -t tmpfs tmpfs /run/systemd/nspawn',
  // $4: the node's network namespace (a lab node), or none (the host's network).
  `exec systemd-nspawn -D "$1" -M "$2" --register=no --keep-unit --bind-ro="$3" \${4:+--network-namespace-path="$4"} -b -- systemd.unit=${NODE_TARGET}`,
].join('\n');

export interface NspawnProcess {
  /** PID of systemd-nspawn (unshare and sh exec into it, so it is our direct child). */
  pid: number;
  /** Resolves with nspawn's exit once it ends. */
  exited: Promise<void>;
}

/**
 * Boots root as machine `name` with systemd-nspawn in a session and mount
 * namespace of its own, in the cgroups (folders, one per hierarchy) given,
 * and in the network namespace netns (a path) if given, output to logFile.
 * The process outlives us if we crash; cleanup() finds it by the pid file
 * the caller writes.
 */
export function startNspawn(root: string, name: string, logFile: string, cgroups: readonly string[], netns?: string): NspawnProcess {
  const log = openSync(logFile, 'a');
  try {
    const child = spawn(
      'unshare',
      // The checkout is bound in read-only at its own path: the overlay shows
      // the host's root, but nspawn mounts a fresh tmpfs on the node's /tmp,
      // which would hide a checkout under /tmp (where CI may clone it).
      ['-m', '--propagation', 'private', 'sh', '-c', BOOT_SCRIPT, 'lab-node-boot', root, name, findCheckout(), netns ?? ''],
      // detached: setsid, so a signal to our process group never reaches the node.
      {
        detached: true,
        stdio: ['ignore', log, log],
        env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', FLOTILLA_NODE_CGROUPS: cgroups.join(' ') },
      },
    );
    if (child.pid === undefined) throw new Error('could not start unshare/systemd-nspawn');
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    // Neither the child nor its exit should keep a test process alive.
    child.unref();
    return { pid: child.pid, exited };
  } finally {
    closeSync(log);
  }
}

/**
 * The node's systemd: nspawn's child once it has exec'd systemd (as
 * .../systemd or /sbin/init). Before that, the child is nspawn's own set-up
 * code and entering its namespaces would land in a half-built node.
 */
export function findInit(nspawnPid: number): number | undefined {
  return childrenOf(nspawnPid).find((pid) => ['systemd', 'init'].includes(comm(pid) ?? ''));
}

/** True when argv is an nspawn (or the shell about to exec it) booting exactly root. */
export function isNspawnOf(argv: readonly string[], root: string): boolean {
  const d = argv.indexOf('-D');
  const isNspawn = argv[0]?.endsWith('systemd-nspawn') ?? false;
  const isBootShell = argv.includes(BOOT_SCRIPT);
  return (isNspawn && d >= 0 && argv[d + 1] === root) || (isBootShell && argv.includes(root));
}
