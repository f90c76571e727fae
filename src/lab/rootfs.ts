// What makes an overlay of the host root into a node of its own before it
// boots: its identity (machine ID, host name, loopback address), a minimal
// boot target, and none of the host's own enablement, so that nothing the
// host has enabled starts inside the node, whatever it is
// (test/e2e/node.test.ts, "starts only what the lab wants").
import { lstat, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The unit every node boots into (passed to its init as systemd.unit=). */
export const NODE_TARGET = 'lab-node.target';

/** Where a node records who it is, for the programs it runs (flotillad reads it). */
export const NODE_ENV_FILE = '/etc/flotilla/node.env';

/**
 * Where `systemctl enable` (by hand or by a package) links units into other
 * units' .wants/, .requires/ and .upholds/ folders: the host's choice of what
 * starts at boot. A node drops all of them; its lab-node.target names what
 * it runs, and what systemd's own vendor links pull in with basic.target
 * (journald, D-Bus's socket) stays.
 */
const ENABLEMENT_DIRS: readonly string[] = ['/etc/systemd/system', '/usr/local/lib/systemd/system'];
const ENABLEMENT_LINKS = /\.(wants|requires|upholds)$/;

/**
 * Masked in every node: what systemd's vendor links would still start
 * through basic.target (the tmpfiles clean-up timer), and host services
 * that must not run in a node even when something asks for them (the lab's
 * etcd runs on the host).
 */
export const MASKED_UNITS: readonly string[] = [
  'etcd.service',
  'etcd2.service',
  'postgresql.service',
  'postgresql@15-main.service',
  'console-getty.service',
  'getty@tty1.service',
  'e2scrub_reap.service',
  'systemd-timesyncd.service',
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'man-db.timer',
  'e2scrub_all.timer',
  'dpkg-db-backup.timer',
  'fstrim.timer',
  'systemd-tmpfiles-clean.timer',
];

export interface NodeIdentity {
  name: string;
  machineId: string;
  ip: string;
}

/** Writes identity, boot target, masks and the caller's files into the mounted root. */
export async function prepareRoot(
  root: string,
  identity: NodeIdentity,
  opts: { wants: readonly string[]; files: Readonly<Record<string, string>>; privateFiles?: readonly string[] },
): Promise<void> {
  await put(root, '/etc/machine-id', `${identity.machineId}\n`);
  await put(root, '/etc/hostname', `${identity.name}\n`);
  await put(
    root,
    NODE_ENV_FILE,
    `FLOTILLA_NODE_NAME=${identity.name}\nFLOTILLA_MACHINE_ID=${identity.machineId}\nFLOTILLA_NODE_IP=${identity.ip}\n`,
  );
  await dropHostEnablement(root);
  await put(root, `/etc/systemd/system/${NODE_TARGET}`, targetUnit(opts.wants));
  for (const unit of MASKED_UNITS) {
    // The host may have a unit file or link there; a mask must replace it.
    const link = await freshPath(root, `/etc/systemd/system/${unit}`);
    await symlink('/dev/null', link);
  }
  for (const [file, content] of Object.entries(opts.files)) await put(root, file, content, opts.privateFiles?.includes(file) ? 0o600 : undefined);
}

// Removes the host's enablement folders in the node's overlay (a whiteout
// in the upper layer: the host keeps its own).
async function dropHostEnablement(root: string): Promise<void> {
  for (const dir of ENABLEMENT_DIRS) {
    const inNode = await plainFolder(root, dir);
    if (inNode === undefined) continue;
    for (const entry of await readdir(inNode)) {
      if (ENABLEMENT_LINKS.test(entry)) await rm(path.join(inNode, entry), { recursive: true, force: true });
    }
  }
}

// The host path of a node folder, undefined when it does not exist; it and
// every folder above it must be plain folders (a symlink would lead onto
// the host's own files).
async function plainFolder(root: string, dir: string): Promise<string | undefined> {
  let current = root;
  for (const part of path.relative(root, inRoot(root, dir)).split(path.sep).filter(Boolean)) {
    current = path.join(current, part);
    const stat = await lstat(current).catch(() => undefined);
    if (stat === undefined) return undefined;
    if (!stat.isDirectory()) throw new Error(`cannot prepare ${dir} in the node: ${current} is not a plain folder`);
  }
  return current;
}

function targetUnit(wants: readonly string[]): string {
  const lines = [
    '[Unit]',
    'Description=flotilla lab node',
    'Requires=basic.target',
    'After=basic.target',
    'AllowIsolate=yes',
  ];
  if (wants.length > 0) lines.push(`Wants=${wants.join(' ')}`);
  return lines.join('\n') + '\n';
}

// Writes a file inside root without following symlinks: the root is an
// overlay of the host, whose absolute symlinks (say /etc/systemd/system/x ->
// /lib/...) would otherwise lead the write onto the host's own files.
// A file that starts with '#!' is a script: it is made executable.
async function put(root: string, file: string, content: string, mode?: number): Promise<void> {
  await writeFile(await freshPath(root, file), content, { flag: 'wx', mode: mode ?? (content.startsWith('#!') ? 0o755 : 0o644) });
}

// The host path of a node file, with its folders created as plain folders
// and whatever was there before removed (rm removes a link, not its target).
async function freshPath(root: string, file: string): Promise<string> {
  const target = inRoot(root, file);
  let dir = root;
  for (const part of path.relative(root, path.dirname(target)).split(path.sep).filter(Boolean)) {
    dir = path.join(dir, part);
    const stat = await lstat(dir).catch(() => undefined);
    if (stat === undefined) await mkdir(dir);
    else if (!stat.isDirectory()) throw new Error(`cannot write ${file} in the node: ${dir} is not a plain folder`);
  }
  await rm(target, { force: true });
  return target;
}

// A node path resolved inside root; refuses paths that would climb out of it.
function inRoot(root: string, file: string): string {
  if (!path.isAbsolute(file)) throw new Error(`node file path must be absolute: ${file}`);
  const target = path.join(root, path.normalize(file));
  if (!target.startsWith(root + path.sep)) throw new Error(`node file path leaves the node's root: ${file}`);
  return target;
}
