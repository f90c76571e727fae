// Connecting to etcd: endpoints, TLS, user name and password, a request
// timeout; transient failures retried (bounded) and turned into errors that
// name the endpoints, so an unreachable etcd never hangs a caller.
import { readFileSync } from 'node:fs';
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  type IOptions,
} from 'etcd3';
import { ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import { isRecoverableError } from 'etcd3';
import pRetry, { AbortError } from 'p-retry';
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
    // Unary calls get the deadline; streams (watch, lease keep-alive) must not.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
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
    // etcd3 skips a member after 3 failures in a row for 5 s. In a small
    // cluster that can skip every member at once (one is killed, the others
    // change leader), failing calls that a healthy majority could serve; try
    // a skipped member again after a second.
    faultHandling: {
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
  if (opts.username) options.auth = { username: opts.username, password: opts.password ?? '' };
  const client = new Etcd3(options);

  const call = async <T>(what: string, fn: () => PromiseLike<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await pRetry(
        async () => {
          try {
            return await fn();
          } catch (err) {
            const mapped = mapError(err, endpoints);
            // Only unavailability is worth another try, and only within the timeout.
            if (mapped instanceof RegistryUnavailableError && Date.now() - started < timeout) throw mapped;
            throw new AbortError(mapped);
          }
        },
        { retries: 4, minTimeout: 50, maxTimeout: 500, maxRetryTime: timeout },
      );
    } catch (err) {
      const e = err instanceof RegistryError ? err : mapError(err, endpoints);
      if (e instanceof RegistryUnavailableError) e.message = `${what}: ${e.message}`;
      throw e;
    }
  };

  return { client, endpoints, requestTimeoutMs: timeout, call, close: () => client.close() };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new RegistryError(`cannot read etcd TLS ${what} file ${file}: ${(err as Error).message}`);
  }
}

/** Turns etcd3 and gRPC failures into the registry's errors. */
export function mapError(err: unknown, endpoints: readonly string[]): Error {
  if (err instanceof RegistryError) return err;
  if (err instanceof GRPCUnavailableError || err instanceof GRPCDeadlineExceededError) {
    return new RegistryUnavailableError(endpoints, shortMessage(err));
  }
  if (
    err instanceof EtcdAuthenticationFailedError ||
    err instanceof EtcdInvalidAuthTokenError ||
    err instanceof EtcdPermissionDeniedError ||
    err instanceof GRPCUnauthenticatedError
  ) {
    return new RegistryAuthError(`etcd at ${endpoints.join(', ')} refused access: ${shortMessage(err)}`);
  }
  if (err instanceof Error) {
    // etcd3's circuit breaker and dial failures carry no gRPC class.
    if (/isolated|circuit|UNAVAILABLE|ECONNREFUSED|DEADLINE|No connection established|Failed to connect/i.test(err.message)) {
      return new RegistryUnavailableError(endpoints, shortMessage(err));
    }
    return err;
  }
  return new Error(String(err));
}

function shortMessage(err: Error): string {
  return err.message.split('\n')[0] ?? err.message;
}
