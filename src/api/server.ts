// flotillad's API server: the same routes on a unix socket (the default,
// root-only) and, when configured, on TCP. TCP requires TLS and either
// client certificates or a bearer token; plain TCP only with an explicit
// insecure option, which warns at every start.
import { createHash, timingSafeEqual } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { silentLogger, type Logger } from '../log.js';
import type { Registry } from '../registry/index.js';
import { ApiCache } from './cache.js';
import { ClusterMetrics, type EngineProbe } from './cluster-metrics.js';
import { ApiError, errorBody, toApiError } from './errors.js';
import { ApiHandlers, type Reply } from './handlers.js';
import type { LocalCommands } from './local-units.js';
import { Counter, MetricsRegistry } from './metrics.js';
import { ApiConfigError, checkTcpOptions, parseListen, type ApiTcpOptions } from './options.js';

export const DEFAULT_API_SOCKET = '/run/flotilla/flotilla.sock';

export interface ApiServerOptions {
  registry: Registry;
  /** Unix socket path; undefined serves no socket. */
  socketPath?: string | undefined;
  tcp?: ApiTcpOptions | undefined;
  logger?: Logger | undefined;
  metrics?: MetricsRegistry | undefined;
  machineId?: string | undefined;
  engine?: (() => EngineProbe | undefined) | undefined;
  /** Stand-ins for systemctl and journalctl (tests). */
  commands?: LocalCommands | undefined;
  /** The cache's cluster view is dropped after this long unused (default 5 minutes). */
  cacheIdleMs?: number | undefined;
}

function readFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ApiConfigError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

export class ApiServer {
  readonly cache: ApiCache;
  readonly metrics: MetricsRegistry;
  private readonly handlers: ApiHandlers;
  private readonly log: Logger;
  private readonly servers: Server[] = [];
  private clusterMetrics: ClusterMetrics | undefined;
  private tokenDigest: Buffer | undefined;
  private readonly requests: Counter;
  /** The TCP address actually bound (port 0 resolved). */
  tcpAddress: { host: string; port: number } | undefined;

  constructor(private readonly opts: ApiServerOptions) {
    this.log = (opts.logger ?? silentLogger).child('api');
    this.metrics = opts.metrics ?? new MetricsRegistry();
    this.requests = this.metrics.add(new Counter('flotilla_api_requests_total', 'API requests answered, by method and status code'));
    this.cache = new ApiCache({ registry: opts.registry, logger: this.log, idleMs: opts.cacheIdleMs });
    this.handlers = new ApiHandlers({ registry: opts.registry, cache: this.cache, metrics: this.metrics, machineId: opts.machineId, commands: opts.commands });
  }

  /**
   * Listens; throws (having closed what it opened) when it cannot. The
   * cache's cluster view is not listed here but on first use.
   */
  async start(): Promise<void> {
    const t = this.opts.tcp;
    let tcpServer: Server | undefined;
    if (t) {
      checkTcpOptions(t);
      tcpServer = this.tcpServer(t);
    }
    this.clusterMetrics = new ClusterMetrics({ cache: this.cache, metrics: this.metrics, machineId: this.opts.machineId, engine: this.opts.engine });
    try {
      if (this.opts.socketPath !== undefined) await this.listenSocket(this.opts.socketPath);
      if (t && tcpServer) {
        const { host, port } = parseListen(t.listen);
        await listen(tcpServer, { host, port });
        this.servers.push(tcpServer);
        const a = tcpServer.address() as net.AddressInfo;
        this.tcpAddress = { host: a.address, port: a.port };
        const auth = [t.caFile ? 'client certificates' : '', this.tokenDigest ? 'bearer token' : ''].filter(Boolean).join(' or ') || 'none';
        this.log.info('API listening on TCP', { address: `${a.address}:${a.port}`, tls: t.certFile !== undefined, auth });
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const servers = this.servers.splice(0);
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    if (this.opts.socketPath !== undefined && servers.length > 0) {
      try {
        if (lstatSync(this.opts.socketPath).isSocket()) unlinkSync(this.opts.socketPath);
      } catch {
        // already gone
      }
    }
    this.clusterMetrics?.close();
    this.clusterMetrics = undefined;
    await this.cache.stop();
  }

  private tcpServer(t: ApiTcpOptions): Server {
    if (t.tokenFile !== undefined) {
      const token = readFile(t.tokenFile, 'API token file').toString('utf8').trim();
      if (token.length < 16) throw new ApiConfigError(`the API token in ${t.tokenFile} is too short (at least 16 characters)`);
      this.tokenDigest = digest(token);
    }
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.serve(req, res, true);
    let server: Server;
    if (t.certFile !== undefined && t.keyFile !== undefined) {
      const clientCerts = t.caFile !== undefined;
      server = https.createServer(
        {
          cert: readFile(t.certFile, 'API certificate file'),
          key: readFile(t.keyFile, 'API key file'),
          ...(clientCerts ? { ca: readFile(t.caFile!, 'API CA file'), requestCert: true } : {}),
          // With a token as the alternative, a client without a certificate
          // is let through the handshake and must then show the token.
          rejectUnauthorized: clientCerts && this.tokenDigest === undefined,
          minVersion: 'TLSv1.2',
        },
        handler,
      );
    } else {
      server = http.createServer(handler);
    }
    if (t.insecure) {
      this.log.warn('API on TCP is insecure (api_insecure=true): anyone who can reach it can run code as root on every machine', {
        listen: t.listen,
        tls: t.certFile !== undefined,
        token: this.tokenDigest !== undefined,
      });
    }
    this.harden(server);
    return server;
  }

  private async listenSocket(socketPath: string): Promise<void> {
    mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
    await removeStaleSocket(socketPath);
    const server = http.createServer((req, res) => this.serve(req, res, false));
    this.harden(server);
    // Created with no access for group and others, then made 0600 explicitly.
    const old = process.umask(0o177);
    try {
      await listen(server, { path: socketPath });
    } finally {
      process.umask(old);
    }
    this.servers.push(server);
    chmodSync(socketPath, 0o600);
    this.log.info('API listening on unix socket', { path: socketPath });
  }

  private harden(server: Server): void {
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    server.maxHeadersCount = 100;
    const refuse = (socket: net.Socket, status: number, reason: string, message: string): void => {
      const body = errorBody(status, message);
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') refuse(socket, 400, 'Bad Request', 'malformed HTTP request');
      else socket.destroy();
    });
    // CONNECT and protocol upgrades are not part of the API.
    server.on('connect', (_req: IncomingMessage, socket: net.Socket) => refuse(socket, 405, 'Method Not Allowed', 'CONNECT is not supported'));
    server.on('upgrade', (_req: IncomingMessage, socket: net.Socket) => refuse(socket, 400, 'Bad Request', 'protocol upgrades are not supported'));
  }

  private authorized(req: IncomingMessage): boolean {
    const socket = req.socket as Partial<TLSSocket>;
    if (socket.authorized === true) return true;
    if (this.tokenDigest === undefined) return this.opts.tcp?.insecure === true && this.opts.tcp.caFile === undefined;
    const header = req.headers['authorization'];
    const m = header === undefined ? null : /^Bearer ([!-~]+)$/.exec(header);
    return m !== null && timingSafeEqual(digest(m[1]!), this.tokenDigest);
  }

  private serve(req: IncomingMessage, res: ServerResponse, tcp: boolean): void {
    const send = (reply: Reply, headers: Record<string, string> = {}): void => {
      this.requests.inc({ method: req.method ?? '', code: String(reply.status) });
      if (res.headersSent || res.destroyed) return;
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      if (reply.stream) {
        // Chunked; no idle timeout: a followed journal may be quiet for long.
        res.writeHead(reply.status, { 'Content-Type': reply.stream.type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
        res.flushHeaders();
        req.socket.setTimeout(0);
        reply.stream.start(res);
      } else if (reply.text) {
        res.writeHead(reply.status, { 'Content-Type': reply.text.type, 'Content-Length': Buffer.byteLength(reply.text.body) });
        res.end(reply.text.body);
      } else if (reply.body !== undefined) {
        const body = JSON.stringify(reply.body);
        res.writeHead(reply.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      } else {
        res.writeHead(reply.status);
        res.end();
      }
    };
    const fail = (err: unknown): void => {
      const e = toApiError(err);
      if (e.status >= 500) this.log.error('request failed', { method: req.method, url: req.url?.slice(0, 200), error: (err as Error)?.message ?? String(err) });
      send({ status: e.status, body: { error: { code: e.status, message: e.message } } }, e.headers);
    };
    if (tcp && !this.authorized(req)) {
      fail(new ApiError(401, 'authentication required: a client certificate or a valid bearer token', { 'WWW-Authenticate': 'Bearer' }));
      return;
    }
    this.handlers.route(req).then(send, fail);
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function listen(server: Server, where: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Removes a socket file no process listens on; refuses when one does. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(socketPath).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new ApiConfigError(`${socketPath} exists and is not a socket; remove it or set api_socket`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new ApiConfigError(`another process serves the API on ${socketPath}`);
  unlinkSync(socketPath);
}
