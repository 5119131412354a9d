#!/usr/bin/env bash
# The whole test suite. The tests start their own S3 and SQS servers (moto, SeaweedFS from the
# dev extras, LocalStack from .venv-localstack); PostgreSQL is the machine's server on
# 127.0.0.1:5432, started here if it is installed but not running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
scripts/ensure-tools.sh
.venv/bin/ruff check .
# Two test processes (pytest-xdist): much of the suite waits on servers, subprocesses and
# timeouts, so two overlap well even on two cores. Each process starts its own servers and
# databases; a test file stays on one process (--dist loadfile), so module fixtures such as
# the corpus drain run once. TEST_WORKERS=0 runs everything in this process.
exec .venv/bin/pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
