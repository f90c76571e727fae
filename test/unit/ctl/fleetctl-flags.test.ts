// fleetctl's scripts keep working (issue 17.4): every global flag fleetctl
// v1.0.0 accepted is accepted by flotctl, its FLEETCTL_* variables are read
// beside FLOTCTL_* (FLOTCTL_ winning), and the one flag flotctl cannot honour
// yet, --tunnel, is refused by name instead of being ignored.
import { describe, expect, it } from 'vitest';
import { runFlotctl } from '../../../cli/flotctl/run.js';
import { captureIO } from '../../../src/ctl/io.js';
import { GLOBAL_FLAGS, envDefault, envValue } from '../../../src/ctl/options.js';

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIO({ env });
  const code = await runFlotctl(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

const flag = (name: string) => GLOBAL_FLAGS.find((f) => f.flag === name)!;
const NO_SOCKET = 'unix:///nonexistent/flotilla-test.sock';
const API_UNREACHABLE = `flotctl: the flotilla API is unreachable at ${NO_SOCKET}: no socket at /nonexistent/flotilla-test.sock`;

// fleetctl v1.0.0's persistent flags (fleetctl/fleetctl.go), each with a value of its type.
const FLEETCTL_GLOBALS: string[][] = [
  ['--debug'],
  ['--driver', 'API'],
  ['--driver=etcd'],
  ['--endpoint', 'http://127.0.0.1:2379'],
  ['--etcd-key-prefix', '/_coreos.com/fleet/'],
  ['--key-file', '/k.pem'],
  ['--cert-file', '/c.pem'],
  ['--ca-file', '/ca.pem'],
  ['--known-hosts-file', '/root/.fleetctl/known_hosts'],
  ['--strict-host-key-checking=false'],
  ['--strict-host-key-checking'],
  ['--ssh-timeout', '10.5'],
  ['--tunnel', ''],
  ['--request-timeout', '2.5'],
  ['--ssh-username', 'core'],
  ['--experimental-api'],
  ['--experimental-api=false'],
  ['--etcd-keyfile', '/k.pem'],
  ['--etcd-certfile', '/c.pem'],
  ['--etcd-cafile', '/ca.pem'],
  // per command in fleetctl (status, journal, ssh); global here
  ['--ssh-port', '2222'],
];

describe("fleetctl v1.0.0's global flags", () => {
  for (const args of FLEETCTL_GLOBALS) {
    it(`accepts ${args.join(' ')}`, async () => {
      expect(await run([...args, 'version'])).toEqual({ code: 0, stdout: expect.stringMatching(/^flotctl version /), stderr: '' });
    });
  }

  it('accepts them all at once, before and after the command', async () => {
    const once = FLEETCTL_GLOBALS.filter(([a]) => !['--tunnel', '--driver=etcd', '--strict-host-key-checking', '--experimental-api=false'].includes(a!));
    const all = once.flat();
    expect((await run([...all, 'version'])).code).toBe(0);
    expect((await run(['version', ...all])).code).toBe(0);
  });

  it('takes --driver API (fleetctl\'s spelling of its default) as the api driver', async () => {
    const r = await run(['--driver', 'API', '--endpoint', NO_SOCKET, 'list-machines']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^${API_UNREACHABLE.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  });

  it('uses --etcd-cafile as --ca-file', async () => {
    const r = await run(['--etcd-cafile', '/nonexistent/ca.pem', '--endpoint', 'https://127.0.0.1:1', 'list-machines']);
    expect(r).toMatchObject({ code: 1, stderr: expect.stringMatching(/^flotctl: cannot read etcd TLS CA file \/nonexistent\/ca\.pem: /) });
  });

  it('refuses --tunnel by name, from the flag or either variable, rather than reach another cluster', async () => {
    const msg = "SSH tunnels are not supported by flotctl yet; reach the cluster with --endpoint (etcd, or flotillad's API with --driver api); see flotctl help list-units";
    expect(await run(['--tunnel', 'bastion:22', 'list-units'])).toEqual({ code: 2, stdout: '', stderr: `flotctl: --tunnel bastion:22: ${msg}\n` });
    expect(await run(['list-units', '--tunnel=bastion'])).toEqual({ code: 2, stdout: '', stderr: `flotctl: --tunnel bastion: ${msg}\n` });
    expect(await run(['list-units'], { FLEETCTL_TUNNEL: 'bastion' })).toEqual({ code: 2, stdout: '', stderr: `flotctl: FLEETCTL_TUNNEL=bastion: ${msg}\n` });
    expect(await run(['list-units'], { FLOTCTL_TUNNEL: 'b2', FLEETCTL_TUNNEL: 'b1' })).toEqual({ code: 2, stdout: '', stderr: `flotctl: FLOTCTL_TUNNEL=b2: ${msg}\n` });
    // an empty one is no tunnel, as in fleetctl
    expect((await run(['version'], { FLEETCTL_TUNNEL: '' })).code).toBe(0);
  });

  it('checks the values of the flags it accepts without using them', async () => {
    expect(await run(['--ssh-timeout', 'soon', 'version'])).toEqual({ code: 2, stdout: '', stderr: 'flotctl: --ssh-timeout must be a number; see flotctl help version\n' });
    expect(await run(['version'], { FLEETCTL_STRICT_HOST_KEY_CHECKING: 'maybe' })).toEqual({
      code: 2,
      stdout: '',
      stderr: 'flotctl: FLEETCTL_STRICT_HOST_KEY_CHECKING=maybe is not a boolean (use true or false); see flotctl help version\n',
    });
  });
});

describe("fleetctl's command flags", () => {
  it('journal takes --sudo (flotillad reads the journal as root): the next check is reached', async () => {
    expect(await run(['journal', '--sudo', 'a.service', '--lines', '-1'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'flotctl: --lines must be a whole number from 0 to 100000; see flotctl help journal\n',
    });
  });
});

describe('FLEETCTL_* variables beside FLOTCTL_*', () => {
  it('reads FLEETCTL_<FLAG>, and FLOTCTL_<FLAG> first', () => {
    expect(envDefault(flag('etcd-key-prefix'), { FLEETCTL_ETCD_KEY_PREFIX: '/fleet/' })).toBe('/fleet/');
    expect(envDefault(flag('etcd-key-prefix'), { FLEETCTL_ETCD_KEY_PREFIX: '/fleet/', FLOTCTL_ETCD_KEY_PREFIX: '/flot/' })).toBe('/flot/');
    expect(envDefault(flag('request-timeout'), { FLEETCTL_REQUEST_TIMEOUT: '7' })).toBe(7);
    expect(envDefault(flag('debug'), { FLEETCTL_DEBUG: 'true' })).toBe(true);
    expect(envDefault(flag('driver'), { FLEETCTL_DRIVER: 'API' })).toBe('api');
    expect(envDefault(flag('etcd-key-prefix'), {})).toBe('/flotilla/');
  });

  it("reads fleetctl's deprecated names of a flag as that flag's variables", () => {
    expect(envDefault(flag('key-file'), { FLEETCTL_ETCD_KEYFILE: '/k.pem' })).toBe('/k.pem');
    expect(envDefault(flag('ca-file'), { FLEETCTL_ETCD_CAFILE: '/a.pem', FLEETCTL_CA_FILE: '/b.pem' })).toBe('/b.pem');
    expect(envDefault(flag('ca-file'), { FLEETCTL_ETCD_CAFILE: '/a.pem', FLOTCTL_ETCD_CAFILE: '/c.pem' })).toBe('/c.pem');
    expect(envValue(flag('version'), { FLEETCTL_VERSION: '1' })).toBeUndefined();
  });

  it('drives flotctl: FLEETCTL_DRIVER and FLEETCTL_ENDPOINT reach the API, a flag still wins', async () => {
    const r = await run(['list-machines'], { FLEETCTL_DRIVER: 'API', FLEETCTL_ENDPOINT: NO_SOCKET });
    expect(r.code).toBe(1);
    expect(r.stderr.startsWith(API_UNREACHABLE)).toBe(true);
    const other = 'unix:///nonexistent/other.sock';
    const flagWins = await run(['--endpoint', other, 'list-machines'], { FLEETCTL_DRIVER: 'API', FLEETCTL_ENDPOINT: NO_SOCKET });
    expect(flagWins.stderr).toMatch(/^flotctl: the flotilla API is unreachable at unix:\/\/\/nonexistent\/other\.sock: /);
    const flotctlWins = await run(['list-machines'], { FLOTCTL_ENDPOINT: other, FLOTCTL_DRIVER: 'api', FLEETCTL_ENDPOINT: NO_SOCKET });
    expect(flotctlWins.stderr).toMatch(/^flotctl: the flotilla API is unreachable at unix:\/\/\/nonexistent\/other\.sock: /);
  });

  it('FLEETCTL_DEBUG prints the stack trace as FLOTCTL_DEBUG does', async () => {
    const r = await run(['list-machines'], { FLEETCTL_DRIVER: 'API', FLEETCTL_ENDPOINT: NO_SOCKET, FLEETCTL_DEBUG: '1' });
    expect(r.stderr.split('\n').length).toBeGreaterThan(3);
    expect(r.stderr).toMatch(/\n {4}at /);
    const quiet = await run(['list-machines'], { FLEETCTL_DRIVER: 'API', FLEETCTL_ENDPOINT: NO_SOCKET, FLEETCTL_DEBUG: '1', FLOTCTL_DEBUG: '0' });
    expect(quiet.stderr.trim().split('\n')).toHaveLength(1);
  });
});
