// The overlay a node boots from: the host root as the read-only lower layer,
// the node's own folder as the upper layer, so the node can change anything
// and the host sees none of it. Also the mount table queries that cleanup
// and the tests use to prove nothing stays mounted.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { run, runOk } from './exec.js';

/**
 * Mounts an overlay of the host root at target, writing into upper (work is
 * overlayfs' scratch folder). lower, when given, are read-only layers laid
 * over the host root, the first on top (tests use one to stand for files
 * the host has).
 */
export async function mountOverlay(dirs: { upper: string; work: string; target: string; lower?: readonly string[] }): Promise<void> {
  // overlayfs splits its options on ',' and lower layers on ':'; such a path
  // would silently mean something else.
  const lower = (dirs.lower ?? []).map((d) => path.resolve(d));
  for (const dir of [dirs.upper, dirs.work, dirs.target, ...lower]) {
    if (/[,:\s\\]/.test(dir)) throw new Error(`cannot use ${dir} for an overlay: it holds a ',', ':', '\\' or blank`);
  }
  const options = `lowerdir=${[...lower, '/'].join(':')},upperdir=${dirs.upper},workdir=${dirs.work}`;
  await runOk(['mount', '-t', 'overlay', 'overlay', '-o', options, dirs.target]);
}

/** Mount points (in this mount namespace) at or under dir, deepest first. */
export function mountsUnder(dir: string): string[] {
  const prefix = path.resolve(dir);
  const inside = (target: string): boolean => target === prefix || target.startsWith(prefix + '/');
  return mountPoints()
    .filter(inside)
    .sort((a, b) => b.length - a.length);
}

/** True when something is mounted at exactly target. */
export function isMountPoint(target: string): boolean {
  return mountPoints().includes(path.resolve(target));
}

/**
 * Unmounts everything at or under dir, deepest first, also mounts stacked on
 * one another. A busy mount is detached lazily (it goes once its last user
 * does); throws if something still shows after that.
 */
export async function unmountAll(dir: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const targets = mountsUnder(dir);
    if (targets.length === 0) return;
    for (const target of targets) {
      const plain = await run(['umount', target]);
      if (plain.code !== 0 && isMountPoint(target)) await runOk(['umount', '-l', target]);
    }
  }
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`still mounted after unmounting: ${left.join(', ')}`);
}

// Mount points from /proc/self/mountinfo (field 5), with the kernel's octal
// escapes for blanks and backslashes undone.
function mountPoints(): string[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const points: string[] = [];
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (field) points.push(field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))));
  }
  return points;
}
