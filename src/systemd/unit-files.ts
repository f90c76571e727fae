// The folder of unit files flotilla writes (/run/flotilla/units by default:
// runtime, gone at reboot like the links to it) and linked into systemd with
// LinkUnitFiles. `rootDir` is where the machine's / is from this process's
// view: '/' for flotillad, /proc/<init pid>/root for tests driving a lab
// node from the host.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hashText } from '../unit/hash.js';
import { isValidUnitName, validateUnitName } from '../unit/name.js';

/** Where systemd keeps runtime links (LinkUnitFiles with runtime=true). */
const RUNTIME_UNIT_DIR = '/run/systemd/system';

export class UnitFileDir {
  constructor(
    private readonly rootDir: string,
    /** The folder as systemd sees it. */
    readonly unitDir: string,
  ) {
    if (!path.isAbsolute(unitDir)) throw new Error(`unit folder must be an absolute path: ${unitDir}`);
  }

  /** The file's path as systemd sees it (what LinkUnitFiles is given). */
  systemdPath(name: string): string {
    validateUnitName(name);
    return path.posix.join(this.unitDir, name);
  }

  /** Writes the file atomically (temporary file, then rename); unchanged content is not rewritten. */
  async write(name: string, text: string): Promise<{ changed: boolean }> {
    const file = this.hostPath(this.systemdPath(name));
    const old = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (old === text) return { changed: false };
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    // A fresh inode with a fresh mtime: systemd's NeedDaemonReload compares mtimes.
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, text, { mode: 0o644, flag: 'wx' });
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return { changed: true };
  }

  /** Removes the file and systemd's runtime link to it (a link elsewhere is left alone); missing is fine. */
  async remove(name: string): Promise<void> {
    const target = this.systemdPath(name);
    const link = this.hostPath(path.posix.join(RUNTIME_UNIT_DIR, name));
    const pointsAt = await readlink(link).catch(() => undefined);
    if (pointsAt === target) await rm(link, { force: true });
    await rm(this.hostPath(target), { force: true });
  }

  /** name → SHA-1 of the content, for every unit file in the folder. */
  async list(): Promise<Map<string, string>> {
    const dir = this.hostPath(this.unitDir);
    const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    const out = new Map<string, string>();
    // Temporary files of an interrupted write end in .tmp, not a unit type.
    for (const name of entries.filter(isValidUnitName).sort()) {
      const text = await readFile(path.join(dir, name), 'utf8').catch(() => undefined);
      if (text !== undefined) out.set(name, hashText(text));
    }
    return out;
  }

  private hostPath(systemdPath: string): string {
    return path.join(this.rootDir, systemdPath);
  }
}
