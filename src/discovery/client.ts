// The discovery client: announce an endpoint, resolve a service, watch it.
// One etcd connection (endpoints, TLS, user and password as for flotctl),
// one watched cache of `services/` started on the first resolve or watch.
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../log.js';
import { Registry, type EndpointRecord, type RegistryOptions } from '../registry/index.js';
import { Announcement, DEFAULT_TTL_SECONDS, MIN_TTL_SECONDS, type AnnounceOptions } from './announcer.js';
import { EndpointCache, type EndpointChange } from './cache.js';
import { DiscoveryNameError, checkEndpointText, checkInstance, checkPort, checkService, defaultInstance } from './names.js';

export type DiscoveryOptions = RegistryOptions;

export interface EndpointSpec {
  host: string;
  port: number;
  attributes?: Record<string, string> | undefined;
  /** Default `host:port`. */
  instance?: string | undefined;
  /** The unit serving it, and its machine, for people reading the registry. */
  unit?: string | undefined;
  machine?: string | undefined;
}

export interface ServiceWatchEvents {
  change: [change: EndpointChange];
}

/** A service's endpoints as they change: `endpoints` is always current; 'change' tells what changed. */
export class ServiceWatch extends EventEmitter<ServiceWatchEvents> {
  private unsubscribe: (() => void) | undefined;

  constructor(
    readonly service: string,
    private readonly cache: EndpointCache,
  ) {
    super();
    this.unsubscribe = cache.subscribe(service, (c) => this.emit('change', c));
  }

  get endpoints(): readonly EndpointRecord[] {
    return this.cache.endpoints(this.service);
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.removeAllListeners();
  }
}

export class Discovery {
  readonly registry: Registry;
  private readonly ownsRegistry: boolean;
  private readonly log: Logger;
  private cacheInstance: EndpointCache | undefined;
  private readonly announcements = new Set<Announcement>();
  private readonly watches = new Set<ServiceWatch>();

  /** Connects to etcd (lazily: nothing is sent until the first call). */
  static connect(opts: DiscoveryOptions): Discovery {
    return new Discovery(Registry.connect(opts), { ownsRegistry: true, logger: opts.logger });
  }

  /** Uses a registry the caller owns (and closes). */
  constructor(registry: Registry, opts: { ownsRegistry?: boolean; logger?: Logger | undefined } = {}) {
    this.registry = registry;
    this.ownsRegistry = opts.ownsRegistry ?? false;
    this.log = opts.logger ?? registry.log ?? silentLogger;
  }

  /**
   * Announces an endpoint of service under a lease kept alive until the
   * announcement is stopped (or this client closed). Resolves once written.
   */
  async announce(service: string, spec: EndpointSpec, opts: AnnounceOptions = {}): Promise<Announcement> {
    checkService(service);
    checkPort(spec.port);
    if (spec.host.trim() === '') throw new DiscoveryNameError('host must not be empty');
    const instance = checkInstance(spec.instance ?? defaultInstance(spec.host, spec.port));
    const ttl = opts.ttl ?? DEFAULT_TTL_SECONDS;
    if (!(ttl >= MIN_TTL_SECONDS) || !Number.isInteger(ttl)) {
      throw new DiscoveryNameError(`ttl must be a whole number of seconds, at least ${MIN_TTL_SECONDS}`);
    }
    const endpoint: EndpointRecord = checkEndpointText({
      service,
      instance,
      host: spec.host,
      port: spec.port,
      attributes: { ...spec.attributes },
      ...(spec.unit ? { unit: spec.unit } : {}),
      ...(spec.machine ? { machine: spec.machine } : {}),
    });
    const a = new Announcement(this.registry, endpoint, ttl, this.log.child('announce'));
    await a.start();
    this.announcements.add(a);
    const stop = a.stop.bind(a);
    a.stop = async () => {
      this.announcements.delete(a);
      await stop();
    };
    return a;
  }

  /** The cache of every service's endpoints (started on first use). */
  async cache(): Promise<EndpointCache> {
    this.cacheInstance ??= new EndpointCache(this.registry, { logger: this.log.child('cache') });
    await this.cacheInstance.start();
    return this.cacheInstance;
  }

  /** The live endpoints of service, from the watched cache (the first call lists `services/`). */
  async resolve(service: string): Promise<readonly EndpointRecord[]> {
    return (await this.cache()).endpoints(service);
  }

  /** Watches service: the returned watch holds its endpoints and emits 'change' on each change. */
  async watch(service: string): Promise<ServiceWatch> {
    const w = new ServiceWatch(service, await this.cache());
    this.watches.add(w);
    const close = w.close.bind(w);
    w.close = () => {
      this.watches.delete(w);
      close();
    };
    return w;
  }

  /** Stops every announcement (withdrawing them), every watch and the cache; closes the connection if it owns it. */
  async close(): Promise<void> {
    await Promise.all([...this.announcements].map((a) => a.stop()));
    for (const w of [...this.watches]) w.close();
    await this.cacheInstance?.stop();
    this.cacheInstance = undefined;
    if (this.ownsRegistry) this.registry.close();
  }
}
