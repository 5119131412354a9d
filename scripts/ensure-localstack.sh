#!/usr/bin/env bash
# LocalStack, the SQS server of the original system, run natively (no Docker) for the tests:
# installed into .venv-localstack with a Python >= 3.12 of its own (localstack-core's SQS code
# does not parse on 3.11, the worker's minimum). Where no such Python exists this prints one
# line and exits 0; the tests that need LocalStack then skip, saying what is missing.
#   scripts/ensure-localstack.sh [VENV_DIR]      (default .venv-localstack)
# The pins are the last versions known to work together (newer ones break LocalStack 4.14).
set -uo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-localstack}"
pins=("localstack-core[base-runtime]==4.14.0" cbor2==5.8.0 pyOpenSSL==25.3.0 cryptography==46.0.7
      boto3==1.42.54 botocore==1.42.54)

at_least_312() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
  local candidate
  # PATH first (a pyenv shim of a version that is not selected fails the check and is skipped),
  # then every pyenv-installed version, newest first.
  for candidate in python3.13 python3.12 python3; do
    if command -v "$candidate" >/dev/null && at_least_312 "$candidate"; then
      command -v "$candidate"; return 0
    fi
  done
  local roots=("${PYENV_ROOT:-$HOME/.pyenv}")
  if command -v pyenv >/dev/null; then roots+=("$(pyenv root 2>/dev/null)"); fi
  local root
  for root in "${roots[@]}"; do
    [ -d "$root/versions" ] || continue
    while read -r candidate; do
      if [ -x "$candidate" ] && at_least_312 "$candidate"; then
        echo "$candidate"; return 0
      fi
    done < <(ls -1d "$root"/versions/*/bin/python3 2>/dev/null | sort -rV)
  done
  return 1
}

# Installed already with exactly these pins: nothing to do.
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.installed-stamp" 2>/dev/null)" = "${pins[*]}" ]; then
  exit 0
fi
if ! python=$(find_python); then
  echo "ensure-localstack: no Python >= 3.12 found (PATH, pyenv); the LocalStack tests will skip" >&2
  exit 0
fi
rm -rf "$venv"
if ! { "$python" -m venv "$venv" && "$venv/bin/pip" install --quiet --upgrade pip \
       && "$venv/bin/pip" install --quiet "${pins[@]}"; } >"$venv.log" 2>&1; then
  echo "ensure-localstack: installing LocalStack with $python failed (see $venv.log); the LocalStack tests will skip" >&2
  rm -rf "$venv"
  exit 0
fi
rm -f "$venv.log"
echo "${pins[*]}" >"$venv/.installed-stamp"
exit 0
