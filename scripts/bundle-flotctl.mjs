// Bundles flotctl after `tsc` (npm run build): dist/cli/flotctl.js becomes
// one ES module with its dependencies, and each dynamic import() (a
// command's code, the etcd driver, yargs) a chunk of its own under
// dist/cli/flotctl-chunks/, loaded when that command runs. Node then reads a
// few files instead of hundreds and resolves no package paths: most of
// flotctl's start was spent there (docs/flotctl.md, Speed; npm run bench:cli).
// Then records flotctl's help texts for the installed flotctl to print
// without yargs (cli/flotctl/help-cache.ts).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(repo, 'dist/cli');

// etcd3 reads its .proto files from beside its own module; bundled, that
// module's __dirname would be dist/cli. Point it at the installed package.
const etcd3Protos = {
  name: 'etcd3-protos',
  setup(build) {
    build.onLoad({ filter: /[\\/]etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const from = '`${__dirname}/../proto/rpc.proto`';
      if (!source.includes(from)) throw new Error(`${args.path}: etcd3 no longer loads ${from}; update scripts/bundle-flotctl.mjs`);
      return { contents: source.replace(from, "require('node:path').join(require('node:path').dirname(require.resolve('etcd3/package.json')), 'proto/rpc.proto')"), loader: 'js' };
    });
  },
};

// yargs measures every line of its help (rendered for each command run, to
// show it later if asked) with string-width, whose module builds an
// Intl.Segmenter and Unicode property regexes as it loads: some 80 ms per
// start. Every import of string-width gets this stand-in instead: printable
// ASCII, all flotctl's help is made of, is one column per character, and
// anything else goes to the real string-width, loaded (require() of a
// bundled module: evaluated on first call) only then.
const asciiStringWidth = {
  name: 'ascii-string-width',
  setup(build) {
    build.onResolve({ filter: /^string-width$/ }, (args) => {
      if (args.namespace === 'ascii-string-width') return undefined;
      return { path: args.resolveDir, namespace: 'ascii-string-width' };
    });
    build.onLoad({ filter: /.*/, namespace: 'ascii-string-width' }, (args) => ({
      resolveDir: args.path,
      loader: 'js',
      contents: `let full;
export default function stringWidth(text, options) {
  if (typeof text === 'string' && /^[\\x20-\\x7e]*$/.test(text)) return text.length;
  full ??= require('string-width').default;
  return full(text, options);
}
`,
    }));
  },
};

rmSync(path.join(outdir, 'flotctl-chunks'), { recursive: true, force: true });
rmSync(path.join(outdir, 'flotctl.js.map'), { force: true });
await esbuild.build({
  absWorkingDir: repo,
  entryPoints: ['cli/flotctl.ts'],
  outdir,
  entryNames: '[name]',
  chunkNames: 'flotctl-chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // The CommonJS packages inside (etcd3, gRPC) call require().
  banner: { js: "import { createRequire as __flotctlRequire } from 'node:module';\nconst require = __flotctlRequire(import.meta.url);" },
  plugins: [etcd3Protos, asciiStringWidth],
  // Less to parse at each start; names are kept for --debug's stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});

// The help texts, rendered by the runner tsc just built, with no FLOTCTL_* or FLEETCTL_* environment.
const load = (file) => import(pathToFileURL(path.join(repo, 'dist', file)).href);
const [{ runFlotctl }, { COMMANDS }, { helpCommandLines }, { captureIO }] = await Promise.all([
  load('cli/flotctl/run.js'),
  load('cli/flotctl/commands.js'),
  load('cli/flotctl/help-cache.js'),
  load('src/ctl/io.js'),
]);
const table = { keys: {}, texts: [] };
for (const args of helpCommandLines(COMMANDS.map((c) => c.name))) {
  const io = captureIO({ env: {} });
  const code = await runFlotctl(args, io);
  if (code !== 0 || io.stderr !== '' || io.stdout === '') throw new Error(`flotctl ${args.join(' ')}: exit ${code}, ${io.stderr.trim()}`);
  let i = table.texts.indexOf(io.stdout);
  if (i < 0) i = table.texts.push(io.stdout) - 1;
  table.keys[args.join(' ')] = i;
}
writeFileSync(path.join(outdir, 'flotctl-help.json'), `${JSON.stringify(table)}\n`);
