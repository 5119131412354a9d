#!/usr/bin/env bash
# The whole test suite. The tests start their own S3 and SQS servers (moto, SeaweedFS from the
# dev extras, LocalStack from .venv-localstack); PostgreSQL is the machine's server on
# 127.0.0.1:5432, started here if it is installed but not running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
scripts/ensure-tools.sh
.venv/bin/ruff check .
exec .venv/bin/pytest "$@"
