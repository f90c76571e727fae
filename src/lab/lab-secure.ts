// Secure labs (flotilla-lab up --secure): etcd with TLS, client certificates
// and authentication. At `up`, openssl makes a CA, a server certificate for
// etcd (SAN: every member's address) and a client certificate in the lab's folder
// (etcd-tls/, mode 0700, keys and passwords 0600); etcd serves its clients on
// https and requires a certificate signed by that CA (peer URLs stay plain
// http on the lab's bridge); etcdctl then creates the root user and a `flotilla`
// user with read-write access to the key prefix only, and turns auth on.
// Nodes get copies of the CA, the client certificate and key and the
// password under /etc/flotilla/etcd/ (a lab folder under /tmp would be
// hidden in them by nspawn's tmpfs), and their flotilla.conf names them.
// Every program runs with an argument array; nothing goes through a shell.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_PREFIX } from '../registry/keys.js';
import { run } from './exec.js';

/** The lab's user in etcd; its role reads and writes the key prefix only. */
export const LAB_ETCD_USER = 'flotilla';
/** Where nodes find their copies of the credentials. */
export const NODE_ETCD_DIR = '/etc/flotilla/etcd';

/** Host paths of a secure lab's credentials (all under one 0700 folder). */
export interface LabCredentials {
  dir: string;
  caFile: string;
  caKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  certFile: string;
  keyFile: string;
  username: string;
  password: string;
  rootPassword: string;
}

/** The credentials folder inside a lab's folder. */
export function credentialsDir(labDir: string): string {
  return path.join(labDir, 'etcd-tls');
}

function paths(labDir: string): Omit<LabCredentials, 'password' | 'rootPassword'> {
  const dir = credentialsDir(labDir);
  const f = (n: string): string => path.join(dir, n);
  return {
    dir,
    caFile: f('ca.crt'),
    caKeyFile: f('ca.key'),
    serverCertFile: f('server.crt'),
    serverKeyFile: f('server.key'),
    certFile: f('client.crt'),
    keyFile: f('client.key'),
    username: LAB_ETCD_USER,
  };
}

/** The lab's credentials, or undefined when the lab is not a secure one. */
export function readCredentials(labDir: string): LabCredentials | undefined {
  const p = paths(labDir);
  const pw = (n: string): string | undefined => {
    try {
      return readFileSync(path.join(p.dir, n), 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const password = pw('flotilla.password');
  const rootPassword = pw('root.password');
  if (password === undefined || rootPassword === undefined || !existsSync(p.caFile)) return undefined;
  return { ...p, password, rootPassword };
}

/** Makes a CA, etcd's server certificate (for the members' addresses) and a client certificate, and two passwords. */
export async function makeCredentials(labDir: string, memberIps: readonly string[]): Promise<LabCredentials> {
  const p = paths(labDir);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  chmodSync(p.dir, 0o700);
  const creds: LabCredentials = { ...p, password: randomBytes(18).toString('base64url'), rootPassword: randomBytes(18).toString('base64url') };
  const secret = (file: string, text: string): void => writeFileSync(file, text, { mode: 0o600 });
  secret(path.join(p.dir, 'flotilla.password'), `${creds.password}\n`);
  secret(path.join(p.dir, 'root.password'), `${creds.rootPassword}\n`);
  const openssl = async (...args: string[]): Promise<void> => {
    const r = await run(['openssl', ...args], { timeoutMs: 30_000 }).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
    if (r.code !== 0) throw new Error(`openssl ${args[0] ?? ''} failed (${r.code}): ${r.stderr.trim()}`);
  };
  // P-256 keys: quick to make, and both etcd and flotilla's gRPC client take them.
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', ...newKey, '-keyout', p.caKeyFile, '-out', p.caFile, '-days', '365', '-subj', '/CN=flotilla-lab-ca');
  // The client certificate's CN must not name an etcd user: with
  // --client-cert-auth, etcd would take it as that user without a password.
  const leaves: [string, string, string, string][] = [
    [p.serverKeyFile, p.serverCertFile, '/CN=flotilla-lab-etcd', `subjectAltName=${memberIps.map((ip) => `IP:${ip},`).join('')}IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n`],
    [p.keyFile, p.certFile, '/CN=flotilla-lab-client', 'extendedKeyUsage=clientAuth\n'],
  ];
  for (const [key, cert, subj, ext] of leaves) {
    const csr = `${cert}.csr`;
    const extFile = `${cert}.ext`;
    writeFileSync(extFile, ext);
    await openssl('req', ...newKey, '-keyout', key, '-out', csr, '-subj', subj);
    await openssl('x509', '-req', '-in', csr, '-CA', p.caFile, '-CAkey', p.caKeyFile, '-CAcreateserial', '-out', cert, '-days', '365', '-extfile', extFile);
    rmSync(csr);
    rmSync(extFile);
  }
  for (const key of [p.caKeyFile, p.serverKeyFile, p.keyFile]) chmodSync(key, 0o600);
  return creds;
}

/** etcd's TLS settings (EtcdClusterOptions.tls): https for clients, certificates required. */
export function etcdTls(creds: LabCredentials): { caFile: string; certFile: string; keyFile: string; clientCertFile: string; clientKeyFile: string } {
  return { caFile: creds.caFile, certFile: creds.serverCertFile, keyFile: creds.serverKeyFile, clientCertFile: creds.certFile, clientKeyFile: creds.keyFile };
}

/**
 * Creates root (with its password) and the flotilla user and role
 * (read-write on the key prefix), then turns authentication on.
 */
export async function enableAuth(creds: LabCredentials, endpoints: readonly string[], prefix: string = DEFAULT_PREFIX): Promise<void> {
  const etcdctl = async (...args: string[]): Promise<void> => {
    const argv = ['etcdctl', '--endpoints', endpoints.join(','), '--cacert', creds.caFile, '--cert', creds.certFile, '--key', creds.keyFile, ...args];
    const r = await run(argv, { timeoutMs: 15_000, env: { ...process.env, ETCDCTL_API: '3' } });
    if (r.code !== 0) throw new Error(`etcdctl ${args.slice(0, 2).join(' ')} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
  };
  await etcdctl('user', 'add', 'root', `--new-user-password=${creds.rootPassword}`, '--interactive=false');
  await etcdctl('user', 'grant-role', 'root', 'root');
  await etcdctl('role', 'add', LAB_ETCD_USER);
  await etcdctl('role', 'grant-permission', LAB_ETCD_USER, '--prefix=true', 'readwrite', prefix);
  await etcdctl('user', 'add', LAB_ETCD_USER, `--new-user-password=${creds.password}`, '--interactive=false');
  await etcdctl('user', 'grant-role', LAB_ETCD_USER, LAB_ETCD_USER);
  await etcdctl('auth', 'enable');
}

/** What the lab's own etcd clients (Registry connection options) need. */
export function clientOptions(creds: LabCredentials | undefined): {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
  password?: string;
} {
  if (creds === undefined) return {};
  return { caFile: creds.caFile, certFile: creds.certFile, keyFile: creds.keyFile, username: creds.username, password: creds.password };
}

/** Shell `export` lines for flotctl (FLOTCTL_*: src/ctl/options.ts) in a secure lab. */
export function credentialsEnvText(creds: LabCredentials): string {
  return [
    `export FLOTCTL_CA_FILE=${shq(creds.caFile)}`,
    `export FLOTCTL_CERT_FILE=${shq(creds.certFile)}`,
    `export FLOTCTL_KEY_FILE=${shq(creds.keyFile)}`,
    `export FLOTCTL_USERNAME=${creds.username}`,
    `export FLOTCTL_PASSWORD=${shq(creds.password)}`,
    '',
  ].join('\n');
}

/** A node's copies of the credentials, and what its flotilla.conf and flotctl.env say about them. */
export interface NodeEtcdCredentials {
  /** Files by path inside the node. */
  files: Record<string, string>;
  /** Of those, the ones to write with mode 0600. */
  privateFiles: string[];
  /** flotilla.conf lines. */
  conf: string[];
  /** flotctl.env lines (systemd EnvironmentFile). */
  env: string[];
}

export function nodeEtcdCredentials(creds: LabCredentials): NodeEtcdCredentials {
  const n = (name: string): string => `${NODE_ETCD_DIR}/${name}`;
  const files = {
    [n('ca.crt')]: readFileSync(creds.caFile, 'utf8'),
    [n('client.crt')]: readFileSync(creds.certFile, 'utf8'),
    [n('client.key')]: readFileSync(creds.keyFile, 'utf8'),
    [n('password')]: `${creds.password}\n`,
  };
  return {
    files,
    // flotilla.conf and flotctl.env hold the password too
    privateFiles: [n('client.key'), n('password'), '/etc/flotilla/flotilla.conf', '/etc/flotilla/flotctl.env'],
    conf: [
      `etcd_cafile=${n('ca.crt')}`,
      `etcd_certfile=${n('client.crt')}`,
      `etcd_keyfile=${n('client.key')}`,
      `etcd_username=${creds.username}`,
      `etcd_password=${creds.password}`,
    ],
    env: [
      `FLOTCTL_CA_FILE=${n('ca.crt')}`,
      `FLOTCTL_CERT_FILE=${n('client.crt')}`,
      `FLOTCTL_KEY_FILE=${n('client.key')}`,
      `FLOTCTL_USERNAME=${creds.username}`,
      `FLOTCTL_PASSWORD=${creds.password}`,
    ],
  };
}

// One shell word.
function shq(s: string): string {
  return /^[A-Za-z0-9/._+@:=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * A node's files (flotilladFiles) for a secure lab: the credentials added
 * under NODE_ETCD_DIR, and flotilla.conf and flotctl.env naming them.
 */
export function secureNodeFiles(files: Readonly<Record<string, string>>, creds: LabCredentials): { files: Record<string, string>; privateFiles: string[] } {
  const node = nodeEtcdCredentials(creds);
  const out: Record<string, string> = { ...files, ...node.files };
  const append = (file: string, lines: string[]): void => {
    const text = out[file] ?? '';
    out[file] = `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${lines.join('\n')}\n`;
  };
  append('/etc/flotilla/flotilla.conf', node.conf);
  append('/etc/flotilla/flotctl.env', node.env);
  return { files: out, privateFiles: node.privateFiles };
}
