// Why an etcd request found no etcd to answer it, in words a user can act
// on. gRPC reports every connection failure as `14 UNAVAILABLE: No
// connection established. Last error: ...` (or a bare deadline, or etcd3's
// circuit breaker refusing a host it gave up on); the cause (refused, no
// answer, not etcd, TLS) is buried in the text or lost. This reads it back
// out and says what to try. Table test: test/integration/connection-errors.test.ts.
import { isBrokenCircuitError } from 'cockatiel';
import { GRPCDeadlineExceededError, GRPCNotImplementedError, GRPCUnavailableError } from 'etcd3';

export type CauseKind =
  | 'refused'
  | 'no-answer'
  | 'not-etcd'
  | 'tls-untrusted'
  | 'tls-name'
  | 'tls-client-cert'
  | 'tls-not-tls'
  | 'closed'
  | 'unresolved'
  | 'unreachable'
  | 'no-quorum'
  | 'other';

export interface FailureContext {
  endpoints: readonly string[];
  timeoutMs: number;
  caFile?: string | undefined;
  certFile?: string | undefined;
  username?: string | undefined;
}

export interface ConnectionCause {
  kind: CauseKind;
  /** What happened, then what to try: `connection refused; is etcd running ...?` */
  text: string;
}

/** A failure to reach etcd at all (as opposed to etcd answering with an error). */
export function isConnectionFailure(err: unknown): boolean {
  if (isBrokenCircuitError(err)) return true;
  if (err instanceof GRPCUnavailableError || err instanceof GRPCDeadlineExceededError) return true;
  if (err instanceof GRPCNotImplementedError) return /HTTP status code/i.test(err.message);
  return err instanceof Error && /No connection established|Failed to connect|ECONNREFUSED|Name resolution failed/i.test(err.message);
}

/**
 * Whether the failure says why: a circuit breaker's refusal, an empty "Last
 * error: null" and a deadline say nothing that an earlier failure did not.
 */
export function isTelling(err: unknown): boolean {
  if (isBrokenCircuitError(err) || err instanceof GRPCDeadlineExceededError) return false;
  return err instanceof Error && !/Last error: null/.test(err.message);
}

/** The cause of a connection failure, from the most telling failure seen (isTelling). */
export function describeCause(err: unknown, ctx: FailureContext): ConnectionCause {
  const seconds = `${+(ctx.timeoutMs / 1000).toFixed(3)} s`;
  if (isBrokenCircuitError(err)) {
    return { kind: 'other', text: 'it failed several times in a row just before and is skipped for a second; check that etcd is up' };
  }
  if (err === undefined || err instanceof GRPCDeadlineExceededError || /DEADLINE_EXCEEDED/.test(String((err as Error).message))) {
    return { kind: 'no-answer', text: `no answer within ${seconds}; check the address, and that etcd is up and no firewall drops the packets` };
  }
  const raw = lastError(err as Error);
  const busy = /etcdserver: (request timed out[^.]*|no leader|leader changed|too many requests)/.exec(raw);
  if (busy) return { kind: 'no-quorum', text: `etcd answered but cannot serve requests now (${busy[0]}); is a majority of its members up?` };
  const tls = ctx.endpoints.some((e) => e.startsWith('https:'));
  const http = /HTTP status code (\d+)/i.exec(raw);
  if (http || /Protocol error/i.test(raw)) {
    const said = http ? `HTTP ${http[1]}` : 'something other than gRPC';
    return { kind: 'not-etcd', text: `the server there is not etcd (it answered ${said}); check the port: etcd's client port is usually 2379` };
  }
  if (/ECONNREFUSED/.test(raw)) return { kind: 'refused', text: 'connection refused; is etcd running and listening on that address and port?' };
  if (/ETIMEDOUT/.test(raw)) return { kind: 'no-answer', text: `no answer within ${seconds}; check the address, and that etcd is up and no firewall drops the packets` };
  if (/ENOTFOUND|EAI_AGAIN|Name resolution failed/i.test(raw)) return { kind: 'unresolved', text: 'the host name does not resolve; check its spelling or use an IP address' };
  if (/EHOSTUNREACH|ENETUNREACH/.test(raw)) return { kind: 'unreachable', text: 'no route to the host; check the address and the network' };
  if (/ALTNAME_INVALID|does not match certificate/i.test(raw)) {
    return { kind: 'tls-name', text: `TLS: etcd's certificate is not issued for this host name or address (${tail(raw)}); use a name or address the certificate lists` };
  }
  if (/unable to verify|self[- ]signed|local issuer|certificate has expired|certificate is not yet valid|CERT_/i.test(raw)) {
    const ca = ctx.caFile ? `the CA file ${ctx.caFile}` : 'the CA file';
    return { kind: 'tls-untrusted', text: `TLS: etcd's certificate is not trusted (${tail(raw)}); check that ${ca} is the CA that signed it` };
  }
  if (/alert (bad certificate|certificate required|unknown ca|certificate unknown|handshake failure)/i.test(raw)) {
    const what = /alert ([a-z ]+)/i.exec(raw)?.[1] ?? 'bad certificate';
    return {
      kind: 'tls-client-cert',
      text: ctx.certFile
        ? `TLS: etcd refused the client certificate ${ctx.certFile} (alert: ${what}); it must be signed by a CA etcd trusts, with its key file`
        : `TLS: etcd requires a client certificate (alert: ${what}); give a certificate and key file`,
    };
  }
  if (/before secure TLS connection|wrong version number|packet length too long|unknown protocol/i.test(raw)) {
    return { kind: 'tls-not-tls', text: 'TLS handshake failed: the server there does not speak TLS; use an http:// URL for it' };
  }
  if (/Failed to connect|ECONNRESET|socket hang up|closed/i.test(raw)) {
    return {
      kind: 'closed',
      text: tls ? 'the server closed the connection without answering' : 'the server closed the connection without answering; if etcd serves TLS there, use an https:// URL and a CA file',
    };
  }
  return { kind: 'other', text: raw };
}

// gRPC's "14 UNAVAILABLE: No connection established. Last error: X (time).
// Resolution note: " down to X.
function lastError(err: Error): string {
  const first = err.message.split('\n')[0] ?? err.message;
  const m = /Last error: (.*?)(?: \(\d{4}-\d\d-\d\dT[^)]*\))?\.? ?(?:Resolution note:.*)?$/.exec(first);
  return (m?.[1] ?? first).replace(/^Error(?: \[\w+\])?: /, '').trim();
}

// The readable end of an OpenSSL or Node TLS message.
function tail(raw: string): string {
  return raw.replace(/^[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:/, '').replace(/^Hostname\/IP does not match certificate's altnames: /, '');
}
