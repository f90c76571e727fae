// The API's listening options and their checks (also run when the
// configuration is loaded, so a bad combination stops flotillad at once).
export interface ApiTcpOptions {
  /** host:port; port 0 picks a free one (tests). */
  listen: string;
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  tokenFile?: string | undefined;
  insecure?: boolean | undefined;
}

export class ApiConfigError extends Error {
  override readonly name = 'ApiConfigError';
}

/** Checks the TCP options; returns what is wrong, for the configuration's error. */
export function checkTcpOptions(t: ApiTcpOptions): void {
  parseListen(t.listen);
  const tls = t.certFile !== undefined || t.keyFile !== undefined;
  if (tls && (t.certFile === undefined || t.keyFile === undefined)) throw new ApiConfigError('api TLS needs both api_certfile and api_keyfile');
  if (t.caFile !== undefined && !tls) throw new ApiConfigError('api_cafile (client certificates) needs TLS: set api_certfile and api_keyfile');
  if (!t.insecure) {
    if (!tls) throw new ApiConfigError('api_listen needs TLS (api_certfile, api_keyfile) with api_cafile or api_token_file; or api_insecure=true for plain TCP');
    if (t.caFile === undefined && t.tokenFile === undefined) {
      throw new ApiConfigError('api_listen needs client authentication: api_cafile (client certificates) or api_token_file (bearer token); or api_insecure=true');
    }
  }
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ApiConfigError(`api_listen ${JSON.stringify(listen)} is not host:port such as 127.0.0.1:49153 or [::1]:49153`);
  return { host: (m[1] ?? m[2])!, port };
}

