// The last known state of each watched unit, kept from systemd's signals:
// PropertiesChanged on a unit's org.freedesktop.systemd1.Unit interface
// carries ActiveState and SubState (not LoadState, which systemd does not
// emit), and listings (watch, resync) fill in the rest. Handlers hear of a
// unit only when one of its three states differs from the last one known.
import type { Logger } from '../log.js';
import type { UnitStatus } from './types.js';

export class UnitStateCache {
  // Watched units and their last known status (undefined until first seen).
  private readonly units = new Map<string, UnitStatus | undefined>();
  private readonly handlers = new Set<(status: UnitStatus) => void>();
  // Per unit, a LoadState lookup in flight: later signals of that unit queue
  // behind it, so handlers see a unit's changes in systemd's order.
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    /** Reads a loaded unit's LoadState (for a unit first seen through a signal). */
    private readonly loadStateOf: (name: string) => Promise<string>,
    private readonly logger: Logger,
  ) {}

  onStatus(handler: (status: UnitStatus) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Adds names to the watched set; returns those that were not watched yet. */
  add(names: readonly string[]): string[] {
    const added = names.filter((n) => !this.units.has(n));
    for (const n of added) this.units.set(n, undefined);
    return [...new Set(added)];
  }

  remove(names: readonly string[]): void {
    for (const n of names) this.units.delete(n);
  }

  names(): string[] {
    return [...this.units.keys()];
  }

  /** From PropertiesChanged (Unit interface) of a unit. */
  changed(name: string, props: Record<string, unknown>): void {
    if (!this.units.has(name)) return;
    const active = str(props['ActiveState']);
    const sub = str(props['SubState']);
    const load = str(props['LoadState']);
    if (active === undefined && sub === undefined && load === undefined) return;
    const apply = (fetched?: string): void => {
      const prev = this.units.get(name);
      this.update({
        name,
        loadState: load ?? fetched ?? prev?.loadState ?? 'loaded',
        activeState: active ?? prev?.activeState ?? 'inactive',
        subState: sub ?? prev?.subState ?? 'dead',
      });
    };
    // A unit not known to be loaded that now signals has been loaded since
    // (a new unit file linked and started): ask for its LoadState.
    const known = this.units.get(name)?.loadState;
    const needLoad = load === undefined && (known === undefined || known === 'not-found');
    const inFlight = this.chains.get(name);
    if (!needLoad && inFlight === undefined) {
      apply();
      return;
    }
    const next = (inFlight ?? Promise.resolve()).then(async () => {
      const fetched = needLoad ? await this.loadStateOf(name).catch(() => undefined) : undefined;
      apply(fetched);
    });
    this.chains.set(name, next);
    void next.finally(() => {
      if (this.chains.get(name) === next) this.chains.delete(name);
    });
  }

  /**
   * From a listing. The first status of a unit is recorded silently (there
   * was no change to report); later ones are reported when they differ.
   */
  observed(status: UnitStatus): void {
    if (!this.units.has(status.name)) return;
    const inFlight = this.chains.get(status.name);
    if (inFlight !== undefined) void inFlight.then(() => this.update(status, true));
    else this.update(status, true);
  }

  private update(status: UnitStatus, silentFirst = false): void {
    if (!this.units.has(status.name)) return;
    const prev = this.units.get(status.name);
    this.units.set(status.name, status);
    if (prev === undefined && silentFirst) return;
    if (prev && prev.loadState === status.loadState && prev.activeState === status.activeState && prev.subState === status.subState) return;
    for (const handler of this.handlers) {
      try {
        handler({ ...status });
      } catch (err) {
        this.logger.error('unit status handler threw', { unit: status.name, error: String(err) });
      }
    }
  }
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
