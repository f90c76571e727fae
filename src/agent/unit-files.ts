// The unit files the agent needs, by hash (a file is immutable per hash),
// read from the registry only when a decision names a hash not yet held,
// and the requirements of each, parsed once per name and hash.
import type { Logger } from '../log.js';
import type { Registry } from '../registry/index.js';
import { hasSection, parseUnitFile } from '../unit/file.js';
import { parseRequirements, type Requirements } from '../unit/requirements.js';

export interface UnitFileInfo {
  text: string;
  /** The file has an [Install] section (it is enabled when loaded). */
  install: boolean;
}

export class UnitFiles {
  private readonly files = new Map<string, UnitFileInfo>();
  /** Requirements by name and hash; null: unreadable. */
  private readonly requirements = new Map<string, Requirements | null>();

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {}

  has(hash: string): boolean {
    return this.files.has(hash);
  }

  get(hash: string): UnitFileInfo | undefined {
    return this.files.get(hash);
  }

  /** Reads the files of the hashes not held yet, one unit per missing hash, in a few requests. */
  async fetch(wanted: readonly { name: string; hash: string }[]): Promise<void> {
    const missing = new Map<string, string>();
    for (const w of wanted) if (!this.files.has(w.hash) && !missing.has(w.hash)) missing.set(w.hash, w.name);
    if (missing.size === 0) return;
    const units = await this.registry.getUnits([...missing.values()]);
    for (const [hash, name] of missing) {
      const unit = units.get(name);
      // The decision may be ahead of or behind the unit file: wait for them to agree.
      if (!unit || unit.hash !== hash) continue;
      let install = false;
      try {
        install = hasSection(parseUnitFile(unit.text, { unit: name }), 'Install');
      } catch {
        // stored files are canonical; an unreadable one is still written as is
      }
      this.files.set(hash, { text: unit.text, install });
    }
  }

  /** The unit's requirements, once its file is held; undefined otherwise or if unreadable. */
  requirementsOf(name: string, hash: string): Requirements | undefined {
    const key = `${name}\n${hash}`;
    let r = this.requirements.get(key);
    if (r === undefined) {
      const file = this.files.get(hash);
      if (!file) return undefined;
      try {
        // Stored units are read as the version that accepted them did (see RequirementsOptions.stored).
        r = parseRequirements(name, parseUnitFile(file.text, { unit: name }), { stored: true }).requirements;
      } catch (err) {
        this.log.warn('cannot read requirements of unit', { unit: name, error: (err as Error).message });
        r = null;
      }
      this.requirements.set(key, r);
    }
    return r ?? undefined;
  }
}
