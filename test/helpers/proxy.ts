// A TCP proxy (on loopback, or on a lab's bridge address) that a test can cut and restore, to disconnect a
// client from etcd deterministically without stopping etcd itself.
import net from 'node:net';

export interface CuttableProxy {
  readonly url: string;
  /** Drops every connection and refuses new ones until restore(). */
  cut(): void;
  /**
   * Stops forwarding without closing open connections, as a machine that
   * vanished would (no reset ever reaches the client); new connections are
   * refused.
   */
  freeze(): void;
  /** Bytes forwarded from the server to clients so far. */
  readonly bytesDown: number;
  restore(): void;
  close(): Promise<void>;
}

/** host: where it listens; a lab's nodes reach the host at its bridge address only. */
export async function startProxy(target: string, host = '127.0.0.1'): Promise<CuttableProxy> {
  const t = new URL(target);
  const sockets = new Set<net.Socket>();
  let open = true;
  let frozen = false;
  let bytesDown = 0;
  const server = net.createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(t.port), t.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    // forward by hand, so that a frozen proxy can swallow data silently
    client.on('data', (d: Buffer) => {
      if (!frozen) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (frozen) return;
      bytesDown += d.length;
      client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const addr = server.address() as net.AddressInfo;
  const cut = (): void => {
    open = false;
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    url: `http://${host}:${addr.port}`,
    cut,
    freeze() {
      frozen = true;
      open = false;
    },
    get bytesDown() {
      return bytesDown;
    },
    restore() {
      open = true;
      frozen = false;
    },
    async close() {
      cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
