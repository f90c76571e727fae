// The etcd key layout: the one place that knows where each record lives.
// docs/architecture.md documents it; change both together.
export const DEFAULT_PREFIX = '/flotilla/';

/** Version of this layout; a daemon refuses to run against a newer one. */
export const LAYOUT_VERSION = 1;

export class Keys {
  readonly prefix: string;

  constructor(prefix: string = DEFAULT_PREFIX) {
    this.prefix = normalizePrefix(prefix);
  }

  get schema(): string {
    return `${this.prefix}schema`;
  }

  /** Unit bodies: `units/<name>`; written by users (CLI, API). */
  get unitsPrefix(): string {
    return `${this.prefix}units/`;
  }
  unit(name: string): string {
    return `${this.unitsPrefix}${name}`;
  }

  /** Desired state of each unit: `desired/<name>`; written by users. */
  get desiredPrefix(): string {
    return `${this.prefix}desired/`;
  }
  desired(name: string): string {
    return `${this.desiredPrefix}${name}`;
  }

  /** Index of global units with their desired state, for agents: `global/<name>`. */
  get globalPrefix(): string {
    return `${this.prefix}global/`;
  }
  global(name: string): string {
    return `${this.globalPrefix}${name}`;
  }

  /** Machine presence, bound to the agent's lease: `machines/<id>`. */
  get machinesPrefix(): string {
    return `${this.prefix}machines/`;
  }
  machine(id: string): string {
    return `${this.machinesPrefix}${id}`;
  }

  /**
   * A host refused a machine ID another live host holds, bound to the
   * refused host's lease: `duplicates/<id>/<its boot ID or host name>`.
   */
  get duplicatesPrefix(): string {
    return `${this.prefix}duplicates/`;
  }
  duplicate(id: string, host: string): string {
    return `${this.duplicatesPrefix}${id}/${host}`;
  }

  /** Machines being drained (the engine places nothing there), outliving the lease: `drain/<id>`. */
  get drainPrefix(): string {
    return `${this.prefix}drain/`;
  }
  drain(machine: string): string {
    return `${this.drainPrefix}${machine}`;
  }

  /** Dynamic machine metadata, outliving the lease: `metadata/<id>/<key>`. */
  get metadataPrefix(): string {
    return `${this.prefix}metadata/`;
  }
  metadataOf(machine: string): string {
    return `${this.metadataPrefix}${machine}/`;
  }
  metadata(machine: string, key: string): string {
    return `${this.metadataOf(machine)}${key}`;
  }

  /** Engine decisions, per machine so an agent watches only its own: `schedule/<machine>/<unit>`. */
  get schedulePrefix(): string {
    return `${this.prefix}schedule/`;
  }
  scheduleOf(machine: string): string {
    return `${this.schedulePrefix}${machine}/`;
  }
  decision(machine: string, unit: string): string {
    return `${this.scheduleOf(machine)}${unit}`;
  }

  /**
   * Where each non-global unit is decided, written with its decision in one
   * transaction and compared by every plan that changes it: `placement/<unit>`.
   */
  get placementPrefix(): string {
    return `${this.prefix}placement/`;
  }
  placement(unit: string): string {
    return `${this.placementPrefix}${unit}`;
  }

  /** Why the engine could not place a unit: `pending/<unit>`. */
  get pendingPrefix(): string {
    return `${this.prefix}pending/`;
  }
  pending(unit: string): string {
    return `${this.pendingPrefix}${unit}`;
  }

  /** Unit states observed by agents, bound to their leases: `states/<unit>/<machine>`. */
  get statesPrefix(): string {
    return `${this.prefix}states/`;
  }
  statesOf(unit: string): string {
    return `${this.statesPrefix}${unit}/`;
  }
  state(unit: string, machine: string): string {
    return `${this.statesOf(unit)}${machine}`;
  }

  /** Engine coordination: `engine/leader`. */
  get enginePrefix(): string {
    return `${this.prefix}engine/`;
  }
  /** The engine leader, bound to its lease; its create revision fences decisions. */
  get leader(): string {
    return `${this.enginePrefix}leader`;
  }

  /** Service endpoints for discovery, bound to leases: `services/<service>/<instance>`. */
  get servicesPrefix(): string {
    return `${this.prefix}services/`;
  }
  servicesOf(service: string): string {
    return `${this.servicesPrefix}${service}/`;
  }
  endpoint(service: string, instance: string): string {
    return `${this.servicesOf(service)}${instance}`;
  }

  /** Splits `a/b` under a two-level prefix into its parts, or undefined. */
  static splitPair(rest: string): [string, string] | undefined {
    const i = rest.indexOf('/');
    if (i <= 0 || i === rest.length - 1) return undefined;
    return [rest.slice(0, i), rest.slice(i + 1)];
  }
}

/** `/x`, `x/`, `/x/` all become `/x/`; empty becomes `/`. */
export function normalizePrefix(prefix: string): string {
  let p = prefix.trim();
  if (!p.startsWith('/')) p = `/${p}`;
  if (!p.endsWith('/')) p = `${p}/`;
  return p;
}

/** The end of the key range covering every key that starts with prefix. */
export function prefixEnd(prefix: string): Buffer {
  const buf = Buffer.from(prefix);
  for (let i = buf.length - 1; i >= 0; i--) {
    if (buf[i]! < 0xff) {
      const end = Buffer.from(buf.subarray(0, i + 1));
      end[i] = buf[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}
