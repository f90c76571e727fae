// Private etcd servers on loopback (or each member in a network namespace of a
// lab, network.ts), from Debian's etcd binary: one member or a small cluster, each
// member stoppable, killable and restartable on its own data directory.
// Used by the test harness and by flotilla-lab; etcd-leftovers.ts sweeps
// what a crashed run left.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OWNER_FILE, PID_FILE } from './etcd-leftovers.js';

export { cleanupEtcdLeftovers } from './etcd-leftovers.js';

export interface EtcdClusterOptions {
  /** Folder that holds every member's data, log and pid file. Created if missing. */
  dir: string;
  /** Number of members (1 or 3 in practice). */
  members?: number;
  /** Loopback address to listen on. */
  host?: string;
  /** The etcd binary; defaults to $ETCD_BIN or `etcd` on the PATH. */
  binary?: string;
  /** How long to wait for the cluster to become healthy. */
  startTimeoutMs?: number;
  /** Fixed client ports, one per member (the lab uses well-known ports); free ports otherwise. */
  clientPorts?: number[];
  /** Fixed peer ports, one per member; free ports otherwise. */
  peerPorts?: number[];
  /**
   * The lab's network: member i listens on hosts[i] inside the network
   * namespace netns[i] (a path under /run/netns). Needs clientPorts and peerPorts.
   */
  network?: { hosts: string[]; netns: string[] };
  /** Member names are this plus 1, 2, ...; default 'm'. */
  namePrefix?: string;
  /** Extra command-line flags for every member. */
  extraArgs?: string[];
  /** Serve clients on https and require certificates signed by caFile (peers stay plain http). */
  tls?: EtcdTls | undefined;
  /**
   * Start members in sessions of their own and let them outlive this process
   * (flotilla-lab: the lab runs on after the CLI exits; its pid files find them).
   */
  detached?: boolean;
}

/** PEM files: etcd's own certificate, and the client certificate the harness checks health with. */
export interface EtcdTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

export class EtcdHarnessError extends Error {
  override readonly name = 'EtcdHarnessError';
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** PID of the running etcd, or undefined while stopped. */
  readonly pid: number | undefined;
}

interface MemberState {
  name: string;
  clientUrl: string;
  peerUrl: string;
  home: string;
  dataDir: string;
  logFile: string;
  pidFile: string;
  /** Network namespace to run in (nsenter --net), or the caller's. */
  netns: string | undefined;
  child: ChildProcess | undefined;
  exited: Promise<void> | undefined;
  spawnError?: Error;
}


/** A running private etcd cluster. */
export class EtcdCluster {
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly binary: string,
    private readonly state: MemberState[],
    private readonly initialCluster: string,
    private readonly extraArgs: string[],
    private readonly detached: boolean,
    private readonly tls: EtcdTls | undefined = undefined,
  ) {}

  /** Client URLs of every member, in member order. */
  get endpoints(): string[] {
    return this.state.map((m) => m.clientUrl);
  }

  get members(): EtcdMember[] {
    return this.state.map((m) => ({
      name: m.name,
      clientUrl: m.clientUrl,
      peerUrl: m.peerUrl,
      dataDir: m.dataDir,
      logFile: m.logFile,
      pid: m.child?.pid,
    }));
  }

  /** Starts the members and waits until every one reports healthy. */
  static async start(opts: EtcdClusterOptions): Promise<EtcdCluster> {
    const binary = resolveBinary(opts.binary);
    const count = opts.members ?? 1;
    const host = opts.host ?? '127.0.0.1';
    const timeoutMs = opts.startTimeoutMs ?? 30_000;
    if (opts.network && !(opts.clientPorts && opts.peerPorts)) throw new EtcdHarnessError('etcd in network namespaces needs fixed client and peer ports');
    mkdirSync(opts.dir, { recursive: true });
    // cleanupEtcdLeftovers spares clusters whose owner still runs
    writeFileSync(path.join(opts.dir, OWNER_FILE), `${process.pid}\n`);

    // A free port can be taken by someone else between probing and binding:
    // try again with fresh ports rather than failing the caller.
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const clientPorts = opts.clientPorts ?? (await freePorts(host, count));
      const peerPorts = opts.peerPorts ?? (await freePorts(host, count));
      const state: MemberState[] = [];
      for (let i = 0; i < count; i++) {
        const name = `${opts.namePrefix ?? 'm'}${i + 1}`;
        const memberHost = opts.network?.hosts[i] ?? host;
        const home = path.join(opts.dir, name);
        rmSync(home, { recursive: true, force: true });
        mkdirSync(home, { recursive: true });
        state.push({
          name,
          clientUrl: `${opts.tls ? 'https' : 'http'}://${memberHost}:${clientPorts[i]}`,
          peerUrl: `http://${memberHost}:${peerPorts[i]}`,
          home,
          dataDir: path.join(home, 'data'),
          logFile: path.join(home, 'etcd.log'),
          pidFile: path.join(home, PID_FILE),
          netns: opts.network?.netns[i],
          child: undefined,
          exited: undefined,
        });
      }
      const initialCluster = state.map((m) => `${m.name}=${m.peerUrl}`).join(',');
      const cluster = new EtcdCluster(opts.dir, binary, state, initialCluster, opts.extraArgs ?? [], opts.detached ?? false, opts.tls);
      try {
        for (let i = 0; i < count; i++) cluster.spawnMember(i);
        await Promise.all(state.map((_, i) => cluster.waitHealthy(i, timeoutMs)));
        return cluster;
      } catch (err) {
        lastError = err;
        await cluster.close({ keepDir: true });
        if (opts.clientPorts) break;
      }
    }
    throw lastError instanceof Error ? lastError : new EtcdHarnessError(String(lastError));
  }

  /** Stops a member gracefully (SIGTERM) and waits for it to exit. */
  async stopMember(index: number): Promise<void> {
    await this.signalMember(index, 'SIGTERM');
  }

  /** Kills a member abruptly (SIGKILL), as a crash would. */
  async killMember(index: number): Promise<void> {
    await this.signalMember(index, 'SIGKILL');
  }

  /** Starts a stopped member again on its existing data directory and waits for health. */
  async startMember(index: number, timeoutMs = 30_000): Promise<void> {
    const m = this.member(index);
    if (m.child) throw new EtcdHarnessError(`etcd member ${m.name} is already running`);
    this.spawnMember(index);
    await this.waitHealthy(index, timeoutMs);
  }

  async restartMember(index: number): Promise<void> {
    await this.stopMember(index);
    await this.startMember(index);
  }

  /** Stops every member; removes the folder unless keepDir. Idempotent. */
  async close(opts: { keepDir?: boolean } = {}): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await Promise.all(this.state.map((_, i) => this.signalMember(i, 'SIGKILL')));
    }
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last-resort kill for process exit handlers. */
  killAllSync(): void {
    for (const m of this.state) {
      if (m.child?.pid !== undefined && m.child.exitCode === null && m.child.signalCode === null) {
        try {
          process.kill(m.child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }

  private member(index: number): MemberState {
    const m = this.state[index];
    if (!m) throw new EtcdHarnessError(`no etcd member ${index}; the cluster has ${this.state.length}`);
    return m;
  }

  private spawnMember(index: number): void {
    const m = this.member(index);
    const args = [
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl,
      '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl,
      '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', this.initialCluster,
      '--initial-cluster-state', 'new',
      // one token per cluster, so members of two test clusters never merge
      '--initial-cluster-token', `flotilla-${path.basename(this.dir)}-${new URL(this.state[0]?.peerUrl ?? 'http://x:0').host}`,
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      ...(this.tls
        ? ['--cert-file', this.tls.certFile, '--key-file', this.tls.keyFile, '--client-cert-auth', '--trusted-ca-file', this.tls.caFile]
        : []),
      ...this.extraArgs,
    ];
    const log = openSync(m.logFile, 'a');
    let child: ChildProcess;
    try {
      // nsenter execs etcd in the member's network namespace: same PID, etcd's own command line.
      const argv = m.netns === undefined ? [this.binary, ...args] : ['nsenter', `--net=${m.netns}`, '--', this.binary, ...args];
      child = spawn(argv[0] ?? this.binary, argv.slice(1), { stdio: ['ignore', log, log], detached: this.detached });
      // A detached member must not keep this process alive, nor die with it.
      if (this.detached) child.unref();
    } finally {
      closeSync(log);
    }
    m.child = child;
    m.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    child.once('exit', () => {
      if (m.child === child) m.child = undefined;
      rmSync(m.pidFile, { force: true });
    });
    // spawn() reports a missing binary asynchronously; surface it as our error.
    child.once('error', (err) => {
      if (m.child === child) m.child = undefined;
      m.spawnError = err;
    });
    if (child.pid !== undefined) writeFileSync(m.pidFile, `${child.pid}\n${m.dataDir}\n`);
  }

  private async signalMember(index: number, signal: NodeJS.Signals): Promise<void> {
    const m = this.member(index);
    const child = m.child;
    if (!child || child.pid === undefined) return;
    try {
      process.kill(child.pid, signal);
    } catch {
      // already gone
    }
    const deadline = signal === 'SIGKILL' ? 10_000 : 15_000;
    const exited = await Promise.race([m.exited?.then(() => true), sleep(deadline).then(() => false)]);
    if (!exited) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await m.exited;
    }
  }

  private async waitHealthy(index: number, timeoutMs: number): Promise<void> {
    const m = this.member(index);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (m.spawnError) {
        throw new EtcdHarnessError(`cannot run etcd (${this.binary}): ${m.spawnError.message}`);
      }
      if (!m.child) {
        throw new EtcdHarnessError(`etcd member ${m.name} exited during start-up; log tail:\n${tail(m.logFile)}`);
      }
      if (await isHealthy(m.clientUrl, this.tls)) return;
      if (Date.now() > deadline) {
        throw new EtcdHarnessError(
          `etcd member ${m.name} at ${m.clientUrl} not healthy after ${timeoutMs} ms; log tail:\n${tail(m.logFile)}`,
        );
      }
      await sleep(50);
    }
  }
}

/** True when the member at clientUrl answers /health with health "true" (over https with tls's client certificate). */
export async function isHealthy(clientUrl: string, tls?: EtcdTls): Promise<boolean> {
  if (tls !== undefined && clientUrl.startsWith('https:')) return isHealthyTls(clientUrl, tls);
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
    if (!res.ok) return false;
    const body = (await res.json()) as { health?: unknown };
    return body.health === 'true' || body.health === true;
  } catch {
    return false;
  }
}

function isHealthyTls(clientUrl: string, tls: EtcdTls): Promise<boolean> {
  let ca: Buffer, cert: Buffer, key: Buffer;
  try {
    [ca, cert, key] = [readFileSync(tls.caFile), readFileSync(tls.clientCertFile), readFileSync(tls.clientKeyFile)];
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const req = httpsRequest(`${clientUrl}/health`, { ca, cert, key, timeout: 1_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          const health = (JSON.parse(body) as { health?: unknown }).health;
          resolve(res.statusCode === 200 && (health === 'true' || health === true));
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

function resolveBinary(explicit: string | undefined): string {
  const bin = explicit ?? process.env['ETCD_BIN'] ?? 'etcd';
  if (bin.includes('/')) {
    if (!existsSync(bin)) throw missingBinary(bin);
    return bin;
  }
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (dir && existsSync(path.join(dir, bin))) return path.join(dir, bin);
  }
  throw missingBinary(bin);
}

function missingBinary(bin: string): EtcdHarnessError {
  return new EtcdHarnessError(
    `etcd binary not found (${bin}); install it with 'bash scripts/system-deps' (Debian: apt-get install etcd-server etcd-client) or set ETCD_BIN`,
  );
}

/** Asks the kernel for n distinct free TCP ports on host. */
export async function freePorts(host: string, n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, host, () => resolve(s));
    })),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new EtcdHarnessError('no TCP port from the kernel');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
