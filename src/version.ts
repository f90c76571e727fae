// flotilla's version, written once: package.json's "version". flotillad and
// flotctl find package.json by walking up from this module, which works from
// src/ under tsx, from dist/src/ after the build, in lab nodes (which see the
// checkout) and in Vagrant VMs (vagrant/stage.sh ships dist/ with package.json).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface PackageJson {
  name?: unknown;
  version?: unknown;
}

function readPackage(file: string): PackageJson {
  return JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
}

/** The checkout this module belongs to: the nearest folder up with flotilla's package.json. */
export function findCheckout(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && readPackage(pkg).name === 'flotilla') return dir;
    if (dir === path.dirname(dir)) throw new Error(`no flotilla checkout (package.json) above ${from}`);
  }
}

function packageVersion(): string {
  const version = readPackage(path.join(findCheckout(), 'package.json')).version;
  if (typeof version !== 'string' || version === '') throw new Error('flotilla package.json has no "version"');
  return version;
}

/** flotilla's version (package.json's), shared by flotillad and flotctl. */
export const VERSION: string = packageVersion();
