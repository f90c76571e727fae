// Whether this machine can boot lab nodes, so tests that need them can skip
// (loudly) where they cannot run instead of failing for reasons of the host.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export type NodeSupport = { ok: true } | { ok: false; reason: string };

// ip and tc: the lab's network and its faults (network.ts, faults.ts).
const PROGRAMS = ['systemd-nspawn', 'nsenter', 'unshare', 'mount', 'umount', 'ip', 'tc'];

/** Checks Linux, root and the programs bootNode() runs (overlayfs is a module mount loads on demand). */
export function nodeSupport(): NodeSupport {
  if (process.platform !== 'linux') return { ok: false, reason: `lab nodes need Linux, this is ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'lab nodes need root (mounts and systemd-nspawn)' };
  const missing = PROGRAMS.filter((p) => !onPath(p));
  if (missing.length > 0) {
    return { ok: false, reason: `missing ${missing.join(', ')}; run 'bash scripts/system-deps' (Debian: systemd-container, util-linux, iproute2)` };
  }
  return { ok: true };
}

/**
 * For `describe.skipIf(skipWithoutNodes('...'))`: true (skip) where nodes
 * cannot run, after saying why on the console so a skip is never silent.
 */
export function skipWithoutNodes(what: string): boolean {
  const support = nodeSupport();
  if (support.ok) return false;
  console.warn(`\n*** SKIPPING ${what}: ${support.reason} ***\n`);
  return true;
}

function onPath(program: string): boolean {
  return (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => {
    try {
      accessSync(path.join(dir || '.', program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
