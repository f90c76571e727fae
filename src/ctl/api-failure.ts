// Why flotctl could not talk to a flotillad API (the api driver's endpoint,
// or a machine's API for status and journal): Node's socket and TLS errors
// (`connect ENOENT /run/flotilla/flotilla.sock`) turned into what happened
// there and what to try. Table test: test/integration/connection-errors.test.ts.

export interface ApiPlace {
  /** The endpoint as the user gave it (unix:///..., http://..., https://...). */
  url: string;
  socketPath?: string | undefined;
  timeoutMs: number;
}

/** Codes that mean this endpoint cannot be reached (another one may be). */
export const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'EPERM',
  'ENOTDIR',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** The cause, then what to try: `connection refused; is flotillad serving its API there (api_listen)?` */
export function describeApiFailure(err: Error, at: ApiPlace): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const seconds = `${+(at.timeoutMs / 1000).toFixed(3)} s`;
  const sock = at.socketPath;
  if (sock !== undefined) {
    if (code === 'ENOENT' || code === 'ENOTDIR') return `no socket at ${sock}: is flotillad running on this machine (api_socket)? Or use --driver etcd`;
    if (code === 'ECONNREFUSED') return `nothing listens on ${sock} (flotillad stopped?): is flotillad running on this machine? Or use --driver etcd`;
    if (code === 'EACCES' || code === 'EPERM') return `permission denied on ${sock} (it is root's only): run flotctl as root, or use --driver etcd`;
  }
  if (code === 'ECONNREFUSED') return 'connection refused; is flotillad serving its API there (api_listen)?';
  if (code === 'ETIMEDOUT') return `no answer within ${seconds}; check the address, and that flotillad is up and no firewall drops the packets`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve; check its spelling or use an IP address';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'no route to the host; check the address and the network';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `TLS: the API's certificate is not issued for this host name or address; use a name or address it lists`;
  if (/CERT|unable to verify|self[- ]signed|local issuer/i.test(`${code} ${err.message}`)) {
    return `TLS: the API's certificate is not trusted (${err.message}); give the CA that signed it with --ca-file`;
  }
  if (/before secure TLS connection|wrong version number|packet length too long/i.test(err.message)) {
    return 'TLS handshake failed: the server there does not speak TLS; use an http:// URL for it';
  }
  if (/alert/i.test(err.message)) return `TLS: the server refused the client certificate (${err.message.replace(/^.*alert /, 'alert ')}); check --cert-file and --key-file`;
  if (code === 'ECONNRESET' || /socket hang up/.test(err.message)) {
    return at.url.startsWith('http:') ? 'the server closed the connection without answering; if it serves TLS, use an https:// URL' : 'the server closed the connection without answering';
  }
  return err.message;
}
