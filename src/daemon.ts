// flotillad's composition root: configuration, the registry connection, the
// agent and (unless disable_engine) the engine, and the signals that drive
// them: SIGTERM/SIGINT stop as shutdown says (keep the units running, or
// drain them), SIGHUP reloads the configuration.
import os from 'node:os';
import { loadConfig, type DaemonConfig, type LoadOptions, type ShutdownMode } from './config/config.js';
import { planReload } from './config/reload.js';
import { Agent } from './agent/agent.js';
import { EndpointCache } from './discovery/cache.js';
import { DnsFront, parseListen } from './discovery/dns-server.js';
import { detectPublicIp, readBootId, readMachineId } from './agent/identity.js';
import { Engine } from './engine/engine.js';
import { createLogger, type Logger, type LogLevel } from './log.js';
import { Registry, connect, watchEventsReceived, type MachineRecord } from './registry/index.js';
import { ApiServer, Gauge, MetricsRegistry, instrumentConnection, parseListen as parseApiListen } from './api/index.js';
import { connectSystemd } from './systemd/dbus.js';
import type { SystemdDriver } from './systemd/types.js';
import { VERSION } from './version.js';


export interface DaemonHandle {
  readonly agent: Agent;
  readonly engine: Engine | undefined;
  readonly registry: Registry;
  /** The HTTP API (unix socket unless api_socket is empty, TCP when api_listen is set). */
  readonly api: ApiServer | undefined;
  /** The DNS front, when dns_listen is set. */
  readonly dns: DnsFront | undefined;
  /** Re-reads the configuration, applies what can change at run time (src/config/reload.ts) and logs each changed option that needs a restart. */
  reload(): Promise<void>;
  /**
   * Stops everything. shutdown (the configured one unless given): keep
   * leaves local units running and the machine present for the next run to
   * adopt; drain stops and unloads them and withdraws the machine.
   */
  stop(opts?: { shutdown?: ShutdownMode }): Promise<void>;
}

export interface DaemonOptions {
  config: LoadOptions;
  /** A driver to use instead of the system bus (tests). */
  systemd?: SystemdDriver | undefined;
  log?: Logger | undefined;
}

export function logLevel(verbosity: number): LogLevel {
  return verbosity >= 1 ? 'debug' : 'info';
}

/**
 * Where other machines' flotctl reach this machine's API: api_listen as a
 * URL (https with api_certfile, http otherwise); a wildcard address (0.0.0.0,
 * ::) advertises the public IP. boundPort replaces a configured port 0.
 */
export function advertisedApiUrl(config: Pick<DaemonConfig, 'apiListen' | 'apiCertFile'>, publicIp: string, boundPort?: number): string | undefined {
  if (config.apiListen === undefined) return undefined;
  let { host, port } = parseApiListen(config.apiListen);
  if (port === 0) {
    if (boundPort === undefined) return undefined;
    port = boundPort;
  }
  if (host === '0.0.0.0' || host === '::' || host === '') host = publicIp;
  const scheme = config.apiCertFile !== undefined ? 'https' : 'http';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function machineRecord(config: DaemonConfig, id: string, apiPort?: number): MachineRecord {
  const publicIp = detectPublicIp(config.publicIp);
  const record: MachineRecord = {
    id,
    publicIp,
    metadata: config.metadata,
    version: VERSION,
    hostname: os.hostname(),
    bootId: readBootId(),
    since: new Date().toISOString(),
    // Published even when off (0): it tells the engine this agent fences (src/unit/fence.ts).
    fenceAfter: config.agentFenceAfter ?? 0,
  };
  const apiUrl = advertisedApiUrl(config, publicIp, apiPort);
  if (apiUrl !== undefined) record.apiUrl = apiUrl;
  return record;
}

export async function startDaemon(opts: DaemonOptions): Promise<DaemonHandle> {
  const warnings: string[] = [];
  let config = loadConfig({ ...opts.config, warn: (w) => warnings.push(w) });
  // The level follows verbosity, which a reload may change.
  const log = opts.log ?? createLogger('flotillad', { level: () => logLevel(config.verbosity), write: (l) => process.stdout.write(l) });
  for (const w of warnings) log.warn(w);
  const id = readMachineId(config.machineIdFile);
  // Every etcd request is counted (and its failures) for /metrics.
  const metrics = new MetricsRegistry();
  const registryOptions = {
    endpoints: config.etcdServers,
    prefix: config.etcdKeyPrefix,
    caFile: config.etcdCaFile,
    certFile: config.etcdCertFile,
    keyFile: config.etcdKeyFile,
    username: config.etcdUsername,
    password: config.etcdPassword,
    requestTimeoutMs: config.etcdRequestTimeout * 1000,
    logger: log.child('registry'),
  };
  const registry = new Registry(instrumentConnection(connect(registryOptions), metrics), registryOptions);
  // What this daemon receives grows with its own units unless its API is in use (docs/architecture.md, invariant 3).
  metrics.add(
    new Gauge('flotilla_watch_events_received_total', 'watch events received from etcd by this daemon (agent, engine, API cache)', () => [{ labels: {}, value: watchEventsReceived(registry) }], 'counter'),
  );
  let systemd: SystemdDriver | undefined;
  let agent: Agent | undefined;
  let engine: Engine | undefined;
  let api: ApiServer | undefined;
  const dns = new DnsService(registry, log);
  try {
    await registry.ensureSchema(`flotillad ${VERSION} on ${id}`);
    systemd = opts.systemd ?? (await connectSystemd({ unitDir: config.unitDir, logger: log.child('systemd') }));
    agent = new Agent({ registry, systemd, machine: machineRecord(config, id), ttlSeconds: config.agentTtl, logger: log });
    await agent.start();
    if (!config.disableEngine) {
      engine = new Engine({ registry, id, leaseTtlSeconds: config.engineTtl, logger: log });
      engine.start();
    }
    await dns.configure(config);
    if (config.apiSocket !== undefined || config.apiListen !== undefined) {
      api = new ApiServer({
        registry,
        metrics,
        logger: log,
        machineId: id,
        engine: () => engine,
        socketPath: config.apiSocket,
        tcp:
          config.apiListen === undefined
            ? undefined
            : {
                listen: config.apiListen,
                caFile: config.apiCaFile,
                certFile: config.apiCertFile,
                keyFile: config.apiKeyFile,
                tokenFile: config.apiTokenFile,
                insecure: config.apiInsecure,
              },
      });
      await api.start();
      // A port picked at start (api_listen with port 0) is advertised once known.
      if (api.tcpAddress && parseApiListen(config.apiListen!).port === 0) {
        await agent.updateMachine(machineRecord(config, id, api.tcpAddress.port));
      }
    }
  } catch (err) {
    await api?.stop().catch(() => undefined);
    await dns.stop().catch(() => undefined);
    await engine?.stop().catch(() => undefined);
    await agent?.stop({ purge: false }).catch(() => undefined);
    if (!opts.systemd) await systemd?.close().catch(() => undefined);
    registry.close();
    throw err;
  }
  log.info('flotillad started', { machine: id, engine: !config.disableEngine, version: VERSION });
  const a = agent;
  const e = engine;
  const sd = systemd;
  return {
    agent: a,
    engine: e,
    registry,
    api,
    get dns() {
      return dns.front;
    },
    async reload() {
      try {
        const plan = planReload(config, loadConfig({ ...opts.config, warn: (w) => log.warn(w) }));
        for (const option of plan.unapplied) log.warn('option changed; it takes effect after a restart', { option });
        config = plan.config;
        await a.updateMachine(machineRecord(config, id, api?.tcpAddress?.port));
        // The DNS front follows dns_listen, dns_domain, dns_ttl (and public_ip) at once.
        await dns.configure(config).catch((err: unknown) => log.error('DNS front not started', { error: (err as Error).message }));
        log.info('configuration reloaded', {
          metadata: JSON.stringify(config.metadata),
          applied: plan.applied.join(','),
          unapplied: plan.unapplied.join(','),
        });
      } catch (err) {
        // A JSON line like every other (the caller prints nothing more).
        log.error('configuration reload failed', { error: (err as Error).message });
        throw err;
      }
    },
    async stop(how = {}) {
      const shutdown = how.shutdown ?? config.shutdown;
      const purge = shutdown === 'drain';
      await api?.stop();
      await dns.stop();
      await e?.stop();
      await a.stop({ purge });
      if (!opts.systemd) await sd.close().catch(() => undefined);
      registry.close();
      log.info('flotillad stopped', { shutdown });
    },
  };
}

/** The DNS front and the endpoint cache it answers from, (re)started as the configuration says. */
class DnsService {
  front: DnsFront | undefined;
  private cache: EndpointCache | undefined;
  private current = '';

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {}

  async configure(config: DaemonConfig): Promise<void> {
    // public_ip too: ns.<domain> answers with it when listening on a wildcard address.
    const want = config.dnsListen === undefined ? '' : JSON.stringify([config.dnsListen, config.dnsDomain, config.dnsTtl, config.publicIp]);
    if (want === this.current) return;
    if (this.front) {
      await this.front.stop();
      this.front = undefined;
    }
    this.current = '';
    if (config.dnsListen === undefined) {
      await this.cache?.stop();
      this.cache = undefined;
      return;
    }
    if (!this.cache) {
      this.cache = new EndpointCache(this.registry, { logger: this.log.child('discovery') });
      await this.cache.start();
    }
    const { host, port } = parseListen(config.dnsListen);
    const nameServer = host === '0.0.0.0' || host === '::' ? detectPublicIp(config.publicIp) : host;
    const front = new DnsFront(this.cache, { host, port, domain: config.dnsDomain, ttl: config.dnsTtl, nameServer, logger: this.log.child('dns') });
    await front.start();
    this.front = front;
    this.current = want;
  }

  async stop(): Promise<void> {
    await this.front?.stop();
    this.front = undefined;
    await this.cache?.stop();
    this.cache = undefined;
    this.current = '';
  }
}
