#!/usr/bin/env bash
# Debian tools some tests compare against: vipsthumbnail (libvips-tools) for the fidelity
# reference. Installed when missing and we are root with apt-get; otherwise those tests skip.
set -uo pipefail
command -v vipsthumbnail >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "ensure-tools: installing libvips-tools" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools) \
    >/dev/null 2>&1 || echo "ensure-tools: could not install libvips-tools; fidelity tests will skip" >&2
else
  echo "ensure-tools: vipsthumbnail missing; fidelity tests will skip" >&2
fi
exit 0
