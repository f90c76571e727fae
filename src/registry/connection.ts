// Connecting to etcd: endpoints, TLS, user name and password, a request
// timeout; failures to connect retried until the timeout and turned into
// errors that name the endpoints and the cause (cause.ts), so an
// unreachable etcd never hangs a caller.
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
// A timer that holds the process: a one-shot flotctl waiting out a retry must not exit meanwhile.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCInvalidArgumentError,
  GRPCUnauthenticatedError,
  type IOptions,
} from 'etcd3';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, isBrokenCircuitError, noop } from 'cockatiel';
import { isRecoverableError } from 'etcd3';
import { Backoff } from '../retry.js';
import { describeCause, isConnectionFailure, isTelling, type FailureContext } from './cause.js';
import { RegistryAuthError, RegistryError, RegistryUnavailableError } from './errors.js';

export interface ConnectionOptions {
  /** Client URLs, e.g. http://127.0.0.1:2379. */
  endpoints: string[];
  /** PEM files for TLS: the CA to trust, and the client certificate and key. */
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  /** Deadline for one request, and the bound for its retries. Default 3 s. */
  requestTimeoutMs?: number | undefined;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 3_000;
const HOST_RETRY_AFTER_MS = 1_000;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 800;

/** The deadline (epoch ms) of the request a unary etcd call belongs to. */
const requestDeadline = new AsyncLocalStorage<number>();

export interface Connection {
  readonly client: Etcd3;
  readonly endpoints: readonly string[];
  readonly requestTimeoutMs: number;
  /** Runs an etcd call with bounded retries of transient failures; errors come out as RegistryErrors. */
  call<T>(what: string, fn: () => PromiseLike<T>): Promise<T>;
  close(): void;
}

export function connect(opts: ConnectionOptions): Connection {
  if (opts.endpoints.length === 0) throw new RegistryError('no etcd endpoints given');
  const endpoints = opts.endpoints.map((e) => e.trim()).filter((e) => e !== '');
  const timeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const options: IOptions = {
    hosts: endpoints,
    dialTimeout: timeout,
    // Unary calls get the deadline of the request they belong to (call());
    // streams (watch, lease keep-alive) must not have one.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: requestDeadline.getStore() ?? Date.now() + timeout }),
    // Large pages of unit files must fit in one response.
    grpcOptions: {
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      // A member whose machine vanished sends no reset: without pings a
      // watch on it waits forever (seen with a destroyed VM). Ping every
      // 10 s, give up after 5 s of silence; and only while a call (a watch,
      // a lease keep-alive) is open. A default etcd (--grpc-keepalive-min-time
      // 5 s, no pings without a stream) closes a connection that pings more
      // often or while idle with GOAWAY "too_many_pings" ("rejected by server
      // because of excess pings"). grpc-js ignores C-core's
      // grpc.http2.min_time_between_pings_ms / max_pings_without_data.
      // (test/integration/etcd-keepalive.test.ts; informer.test.ts for the
      // vanished member)
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 0,
    },
    faultHandling: {
      // Retries are call()'s, bounded by the request's deadline; etcd3's own
      // (three tries of a full deadline each) would triple it.
      global: noop,
      // etcd3 skips a member after 3 failures in a row for 5 s. In a small
      // cluster that can skip every member at once (one is killed, the others
      // change leader), failing calls that a healthy majority could serve; try
      // a skipped member again after a second.
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: HOST_RETRY_AFTER_MS, breaker: new ConsecutiveBreaker(3) }),
    },
  };
  if (opts.caFile || opts.certFile || opts.keyFile) {
    if (!opts.caFile) throw new RegistryError('etcd TLS needs a CA file (etcd_cafile / --ca-file)');
    options.credentials = {
      rootCertificate: readPem(opts.caFile, 'CA'),
      ...(opts.keyFile ? { privateKey: readPem(opts.keyFile, 'key') } : {}),
      ...(opts.certFile ? { certChain: readPem(opts.certFile, 'certificate') } : {}),
    };
  }
  if (endpoints.some(httpsToIp)) muteIpServernameWarning();
  if (opts.username) options.auth = { username: opts.username, password: opts.password ?? '' };
  const client = new Etcd3(options);

  const failure: FailureContext = { endpoints, timeoutMs: timeout, caFile: opts.caFile, certFile: opts.certFile, username: opts.username };

  // One request has the request timeout, retries included (docs/configuration.md):
  // failures to connect are tried again until its deadline (the circuit
  // breaker refusing a host does not end it early), and the error names the
  // most telling cause seen, not the breaker's refusal.
  // The last telling failure of any request: a request shorter than the
  // breaker's pause may meet nothing but its refusals.
  let lastTelling: unknown;
  const call = async <T>(what: string, fn: () => PromiseLike<T>): Promise<T> => {
    const deadline = Date.now() + timeout;
    let cause: unknown;
    // The shared policy (src/retry.ts): jittered, so a cluster's clients do
    // not retry in lockstep; capped well inside the request timeout.
    const backoff = new Backoff({ initialMs: RETRY_MIN_MS, maxMs: RETRY_MAX_MS });
    for (;;) {
      try {
        return await requestDeadline.run(deadline, fn);
      } catch (err) {
        if (!isConnectionFailure(err)) throw mapError(err, failure);
        if (isTelling(err)) lastTelling = err;
        if (cause === undefined || isTelling(err)) cause = err;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        if (isBrokenCircuitError(cause) && lastTelling !== undefined) cause = lastTelling;
        const e = new RegistryUnavailableError(endpoints, describeCause(cause, failure));
        e.message = `${what}: ${e.message}`;
        throw e;
      }
      await sleep(Math.min(left, backoff.next()));
    }
  };

  return { client, endpoints, requestTimeoutMs: timeout, call, close: () => client.close() };
}

function httpsToIp(endpoint: string): boolean {
  try {
    const u = new URL(endpoint);
    return u.protocol === 'https:' && isIP(u.hostname.replace(/^\[|\]$/g, '')) !== 0;
  } catch {
    return false;
  }
}

// grpc-js gives TLS the endpoint's host as server name (SNI) even when it is
// an IP address, and Node prints a deprecation warning (DEP0123) about that
// on stderr at the first such connection. etcd does not pick its certificate
// by SNI, and the certificate is still checked against the address; so that
// one warning is dropped, and only it. Test: connection-errors.test.ts.
let ipServernameWarningMuted = false;
function muteIpServernameWarning(): void {
  if (ipServernameWarningMuted) return;
  ipServernameWarningMuted = true;
  const emit = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]): void {
    const [typeOrOptions, code] = rest;
    const warnCode = typeof typeOrOptions === 'object' && typeOrOptions !== null ? (typeOrOptions as { code?: unknown }).code : code;
    if (warnCode === 'DEP0123') return;
    Reflect.apply(emit, this, [warning, ...rest]);
  } as typeof process.emitWarning;
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new RegistryError(`cannot read etcd TLS ${what} file ${file}: ${(err as Error).message}`);
  }
}

/** Turns etcd3 and gRPC failures into the registry's errors. */
export function mapError(err: unknown, ctx: FailureContext): Error {
  if (err instanceof RegistryError) return err;
  if (isConnectionFailure(err)) return new RegistryUnavailableError(ctx.endpoints, describeCause(err, ctx));
  const at = `etcd at ${ctx.endpoints.join(', ')}`;
  const user = ctx.username ? `user ${JSON.stringify(ctx.username)}` : 'the client';
  if (err instanceof EtcdAuthenticationFailedError) {
    return new RegistryAuthError(`${at} refused ${user}: wrong user name or password`);
  }
  if (err instanceof GRPCInvalidArgumentError && /user name is empty/.test(err.message)) {
    return new RegistryAuthError(`${at} requires authentication; give a user name and password`);
  }
  if (err instanceof EtcdPermissionDeniedError) {
    return new RegistryAuthError(`${at} denied ${user} this request (permission denied); its role needs read-write access to the key prefix`);
  }
  if (err instanceof EtcdInvalidAuthTokenError || err instanceof GRPCUnauthenticatedError) {
    return new RegistryAuthError(`${at} refused access: ${shortMessage(err)}`);
  }
  if (err instanceof Error) return err;
  return new Error(String(err));
}

function shortMessage(err: Error): string {
  return err.message.split('\n')[0] ?? err.message;
}
