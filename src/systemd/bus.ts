// One connection to a D-Bus message bus, over dbus-next's low-level API:
// method calls with our own reply table (so a lost connection rejects every
// call in flight, which dbus-next alone never does, and so a caller can act
// on a reply synchronously, before any later message is handled), signals
// to one handler, and one close notification. dbus-next's loose types stay
// in this file; bodies leave it as plain values (values.ts).
import * as dbus from 'dbus-next';
import type { Socket } from 'node:net';
import { BusClosedError, SystemdError } from './errors.js';
import { plain } from './values.js';

export interface MethodCall {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

export interface CallOptions {
  /**
   * Runs synchronously with the reply's body, before the bus handles the
   * next message: a job's waiter registered here cannot miss a JobRemoved
   * that arrives right behind the reply.
   */
  onReply?: (body: unknown[]) => void;
  timeoutMs?: number;
}

export interface Signal {
  sender: string;
  path: string;
  interface: string;
  member: string;
  body: unknown[];
}

export interface BusOptions {
  /** How long connecting (socket, authentication, Hello) may take. */
  connectTimeoutMs?: number;
  /** Default time a method call may take until its reply. */
  callTimeoutMs?: number;
}

interface Pending {
  resolve: (body: unknown[]) => void;
  reject: (err: Error) => void;
  onReply?: (body: unknown[]) => void;
  timer: NodeJS.Timeout;
  what: string;
}

// dbus-next's MessageBus keeps its socket private and does not say when it
// closes; this is the part of it we reach into.
interface BusInternals {
  _connection?: { stream?: Socket };
  name?: string | null;
}

export class BusConnection {
  /** Opens a connection (authenticated, Hello answered) or rejects. */
  static open(address: string, opts: BusOptions = {}): Promise<BusConnection> {
    const bus = dbus.sessionBus({ busAddress: address });
    const conn = new BusConnection(bus, address, opts.callTimeoutMs ?? 60_000);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.close();
        reject(new BusClosedError(`D-Bus ${address}: no connection within ${opts.connectTimeoutMs ?? 10_000} ms`));
      }, opts.connectTimeoutMs ?? 10_000);
      bus.once('connect', () => {
        clearTimeout(timer);
        resolve(conn);
      });
      conn.onClose((err) => {
        clearTimeout(timer);
        reject(new BusClosedError(`D-Bus ${address}: ${err?.message ?? 'connection closed'}`));
      });
    });
  }

  private readonly pending = new Map<number, Pending>();
  private readonly closeHandlers: Array<(err: Error | undefined) => void> = [];
  private signalHandler: ((signal: Signal) => void) | undefined;
  private lastError: Error | undefined;
  private closedFlag = false;

  private constructor(
    private readonly bus: dbus.MessageBus,
    readonly address: string,
    private readonly callTimeoutMs: number,
  ) {
    // An 'error' without a listener would throw out of the event loop.
    bus.on('error', (err: unknown) => {
      this.lastError = err instanceof Error ? err : new Error(String(err));
    });
    bus.on('message', (msg: dbus.Message) => this.dispatch(msg));
    const stream = (bus as unknown as BusInternals)._connection?.stream;
    if (stream === undefined) throw new Error('dbus-next internals changed: no _connection.stream');
    stream.once('close', () => this.closed(this.lastError));
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  /** This connection's unique name on the bus (:1.42). */
  get uniqueName(): string {
    return (this.bus as unknown as BusInternals).name ?? '';
  }

  /** Calls a method; resolves with the reply's body as plain values, rejects with SystemdError or BusClosedError. */
  call(spec: MethodCall, opts: CallOptions = {}): Promise<unknown[]> {
    const what = `${spec.interface}.${spec.member}`;
    if (this.closedFlag) return Promise.reject(new BusClosedError(`${what}: D-Bus connection ${this.address} is closed`));
    const msg = new dbus.Message({
      destination: spec.destination,
      path: spec.path,
      interface: spec.interface,
      member: spec.member,
      signature: spec.signature ?? '',
      body: spec.body ?? [],
    });
    // Our own serial, so that the reply is matched in dispatch() below.
    const serial = this.bus.newSerial();
    msg.serial = serial;
    return new Promise((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.callTimeoutMs;
      const timer = setTimeout(() => {
        this.pending.delete(serial);
        reject(new SystemdError(`${what}: no reply within ${timeoutMs} ms`, 'org.freedesktop.DBus.Error.Timeout'));
      }, timeoutMs);
      this.pending.set(serial, { resolve, reject, onReply: opts.onReply, timer, what });
      try {
        this.bus.send(msg);
      } catch (err) {
        this.pending.delete(serial);
        clearTimeout(timer);
        reject(new BusClosedError(`${what}: ${(err as Error).message}`));
      }
    });
  }

  /** Adds a match rule on the bus daemon, so that the signals it names are delivered to us. */
  async addMatch(rule: string): Promise<void> {
    await this.call({
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'AddMatch',
      signature: 's',
      body: [rule],
    });
  }

  /** The one handler for signals (synchronous, in arrival order). */
  setSignalHandler(handler: (signal: Signal) => void): void {
    this.signalHandler = handler;
  }

  /** Called once when the connection ends, with the error that ended it if any. */
  onClose(handler: (err: Error | undefined) => void): void {
    if (this.closedFlag) handler(this.lastError);
    else this.closeHandlers.push(handler);
  }

  close(): void {
    if (this.closedFlag) return;
    const stream = (this.bus as unknown as BusInternals)._connection?.stream;
    // destroy, not end: a peer that no longer reads must not keep us open.
    stream?.destroy();
    this.closed(undefined);
  }

  private dispatch(msg: dbus.Message): void {
    if (msg.type === dbus.MessageType.METHOD_RETURN || msg.type === dbus.MessageType.ERROR) {
      const serial = Number(msg.replySerial);
      const pending = this.pending.get(serial);
      if (pending === undefined) return;
      this.pending.delete(serial);
      clearTimeout(pending.timer);
      if (msg.type === dbus.MessageType.ERROR) {
        const text = typeof msg.body[0] === 'string' ? msg.body[0] : msg.errorName;
        pending.reject(new SystemdError(`${pending.what}: ${text}`, msg.errorName));
        return;
      }
      const body = plain(msg.body) as unknown[];
      try {
        pending.onReply?.(body);
      } catch (err) {
        pending.reject(err as Error);
        return;
      }
      pending.resolve(body);
    } else if (msg.type === dbus.MessageType.SIGNAL) {
      this.signalHandler?.({
        sender: msg.sender,
        path: msg.path,
        interface: msg.interface,
        member: msg.member,
        body: plain(msg.body) as unknown[],
      });
    }
  }

  private closed(err: Error | undefined): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const [serial, p] of this.pending) {
      this.pending.delete(serial);
      clearTimeout(p.timer);
      p.reject(new BusClosedError(`${p.what}: D-Bus connection ${this.address} lost${err ? ` (${err.message})` : ''}`));
    }
    for (const handler of this.closeHandlers.splice(0)) handler(err);
  }
}
