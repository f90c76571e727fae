// Where flotillad's API is: the endpoints the API driver takes, checked
// without loading the driver (and Node's http and tls) for every command.
import { CtlError } from './errors.js';

export const DEFAULT_API_ENDPOINT = 'unix:///run/flotilla/flotilla.sock';

export interface Target {
  url: string;
  socketPath?: string;
  base: URL;
  tls: boolean;
}

export function parseApiEndpoint(e: string): Target {
  if (e.startsWith('unix://')) {
    const socketPath = e.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new CtlError(`--endpoint ${JSON.stringify(e)}: a unix socket needs an absolute path, as in ${DEFAULT_API_ENDPOINT}`);
    return { url: e, socketPath, base: new URL('http://localhost/'), tls: false };
  }
  let u: URL;
  try {
    u = new URL(e);
  } catch {
    throw new CtlError(`--endpoint ${JSON.stringify(e)} is not a URL such as ${DEFAULT_API_ENDPOINT} or https://10.0.0.1:49153`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CtlError(`--endpoint ${JSON.stringify(e)}: the api driver takes unix://, http:// or https:// URLs`);
  return { url: e, base: u, tls: u.protocol === 'https:' };
}
