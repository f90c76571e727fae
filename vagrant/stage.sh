#!/usr/bin/env bash
# Stages what a VM needs of the checkout into vagrant/.stage/flotilla (the
# Vagrantfile rsyncs that folder to /opt/flotilla in every VM at `vagrant up`
# and `vagrant rsync`): dist/ (built now), package.json, units/ and only the
# production packages of node_modules/ (about 20 MB instead of 120).
set -euo pipefail
cd "$(dirname "$0")/.."
stage=vagrant/.stage/flotilla

[ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund
npm run --silent build
mkdir -p "$stage/node_modules"
rsync -a --delete dist units package.json "$stage/"
# npm ls lists the production dependency tree, one installed folder a line.
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | sed "s#^$PWD/node_modules/##" |
  rsync -a --delete --files-from=- -r node_modules/ "$stage/node_modules/"
echo "stage: $(du -sh "$stage" | cut -f1) in $stage" >&2
