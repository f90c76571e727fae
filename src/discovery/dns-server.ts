// The DNS front: answers A, AAAA and SRV queries for `<service>.<domain>` on
// UDP and TCP from the endpoint cache (see dns-answer.ts), so a query never
// reaches etcd.
import dgram from 'node:dgram';
import net from 'node:net';
import { silentLogger, type Logger } from '../log.js';
import { DEFAULT_DNS_DOMAIN, DEFAULT_DNS_TTL, DnsAnswerer, type EndpointSource } from './dns-answer.js';

export interface DnsFrontOptions {
  /** Address to listen on, e.g. 127.0.0.1 or ::1. */
  host: string;
  /** Port; 0 picks a free one (see .port after start). */
  port: number;
  domain?: string | undefined;
  /** Seconds, default 5. */
  ttl?: number | undefined;
  /**
   * The address `ns.<domain>` answers with; default the listen address.
   * Needed when listening on 0.0.0.0 or :: (flotillad gives its public IP).
   */
  nameServer?: string | undefined;
  logger?: Logger | undefined;
}

/** `HOST`, `HOST:PORT` or `[V6]:PORT` (default port 53). */
export function parseListen(s: string, defaultPort = 53): { host: string; port: number } {
  const v = s.trim();
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(v) ?? /^([^:[\]\s]+)(?::(\d+))?$/.exec(v);
  const host = m?.[1];
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (!host || !net.isIP(host) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${JSON.stringify(s)} is not an address to listen on such as 127.0.0.1:53`);
  }
  return { host, port };
}

export class DnsFront {
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly answerer: DnsAnswerer;
  private readonly log: Logger;
  /** Queries answered (UDP and TCP). */
  queries = 0;
  port = 0;

  constructor(
    source: EndpointSource,
    private readonly opts: DnsFrontOptions,
  ) {
    const wildcard = opts.host === '0.0.0.0' || opts.host === '::';
    this.answerer = new DnsAnswerer(source, {
      domain: opts.domain ?? DEFAULT_DNS_DOMAIN,
      ttl: opts.ttl ?? DEFAULT_DNS_TTL,
      nameServer: opts.nameServer ?? (wildcard ? undefined : opts.host),
    });
    this.log = opts.logger ?? silentLogger;
  }

  get domain(): string {
    return this.answerer.domain;
  }

  /** Binds UDP and TCP on the same port; rejects (naming the address) if either cannot be bound. */
  async start(): Promise<void> {
    // With port 0 the kernel picks the UDP port, and TCP must take the same
    // number, which another program may hold: pick again a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.bind();
        break;
      } catch (err) {
        const inUse = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
        if (this.opts.port !== 0 || !inUse || attempt >= 5) throw err;
      }
    }
    this.log.info('DNS front listening', { address: `${this.opts.host}:${this.port}`, domain: this.domain });
  }

  private async bind(): Promise<void> {
    const { host } = this.opts;
    const udp = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4' });
    udp.on('message', (msg, rinfo) => {
      const res = this.answer(msg, 'udp');
      if (res) udp.send(res, rinfo.port, rinfo.address);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(this.opts.port, host, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      udp.on('error', (err) => this.log.warn('DNS UDP socket error', { error: err.message }));
      this.port = udp.address().port;
      const tcp = net.createServer((sock) => this.serveTcp(sock));
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(this.port, host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      tcp.on('error', (err) => this.log.warn('DNS TCP server error', { error: err.message }));
      this.udp = udp;
      this.tcp = tcp;
    } catch (err) {
      udp.close();
      throw new Error(`DNS front cannot listen on ${host}:${this.opts.port}: ${(err as Error).message}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await Promise.all([
      udp ? new Promise<void>((r) => udp.close(() => r())) : undefined,
      tcp ? new Promise<void>((r) => tcp.close(() => r())) : undefined,
    ]);
  }

  private answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    try {
      const res = this.answerer.respond(msg, transport);
      if (res) this.queries++;
      return res;
    } catch (err) {
      this.log.warn('DNS query failed', { error: (err as Error).message });
      return undefined;
    }
  }

  /** TCP: each message is preceded by its length (2 bytes); a connection may carry several. */
  private serveTcp(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.setTimeout(10_000, () => sock.destroy());
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const res = this.answer(msg, 'tcp');
        if (!res) {
          sock.destroy();
          return;
        }
        const out = Buffer.alloc(2 + res.length);
        out.writeUInt16BE(res.length, 0);
        res.copy(out, 2);
        sock.write(out);
      }
    });
  }
}
