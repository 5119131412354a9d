#!/usr/bin/env bash
# The Node harness of tests/api (the API producer and the Prisma SQL generator): `npm ci` from the
# committed lockfile, then the Prisma Client of deploy/prisma/media.prisma, generated offline.
# Skipped when node_modules and the client already match the lockfile, the model and the
# generator script; a machine without node or npm gets a note (those tests skip) and exit 0.
set -euo pipefail
cd "$(dirname "$0")/../tests/api"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "ensure-node-packages: node or npm not found; the tests/api producer tests will skip" >&2
  exit 0
fi
exec 9>".ensure-node-packages.lock"
flock 9  # two test runs at once install once
stamp=node_modules/.media-worker-stamp
want="$(cat package-lock.json ../../deploy/prisma/media.prisma generate-client.mjs \
  | sha256sum | cut -d' ' -f1) node $(node --version)"
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -f generated/client/index.js ]]; then
  exit 0
fi
# No install scripts: prisma's would try to download native engines this harness never uses.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
node generate-client.mjs
echo "$want" >"$stamp"
