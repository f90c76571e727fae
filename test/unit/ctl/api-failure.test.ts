// The api driver's socket errors, including the ones a test running as
// root cannot provoke (EACCES on the root-only socket): each names the
// socket and what to try.
import { describe, expect, it } from 'vitest';
import { describeApiFailure } from '../../../src/ctl/api-failure.js';

const SOCK = '/run/flotilla/flotilla.sock';
const errno = (code: string, message = `connect ${code} ${SOCK}`): Error => Object.assign(new Error(message), { code });
const onSocket = { url: `unix://${SOCK}`, socketPath: SOCK, timeoutMs: 3_000 };
const onTcp = { url: 'http://10.0.0.1:49153', timeoutMs: 3_000 };

describe('api failures', () => {
  const cases: [string, Error, typeof onSocket | typeof onTcp, string][] = [
    ['socket missing', errno('ENOENT'), onSocket, `no socket at ${SOCK}: is flotillad running on this machine (api_socket)? Or use --driver etcd`],
    ['socket not served', errno('ECONNREFUSED'), onSocket, `nothing listens on ${SOCK} (flotillad stopped?): is flotillad running on this machine? Or use --driver etcd`],
    ['socket not ours', errno('EACCES'), onSocket, `permission denied on ${SOCK} (it is root's only): run flotctl as root, or use --driver etcd`],
    ['no answer', errno('ETIMEDOUT', 'no answer within 3000 ms'), onTcp, 'no answer within 3 s; check the address, and that flotillad is up and no firewall drops the packets'],
    ['refused', errno('ECONNREFUSED'), onTcp, 'connection refused; is flotillad serving its API there (api_listen)?'],
    ['untrusted', errno('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'), onTcp, "TLS: the API's certificate is not trusted (unable to verify the first certificate); give the CA that signed it with --ca-file"],
  ];
  for (const [name, err, at, want] of cases) {
    it(name, () => expect(describeApiFailure(err, at)).toBe(want));
  }
});
