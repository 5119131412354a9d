#!/usr/bin/env bash
# The worker's main job on the embedded default: make sample media, submit it as the API would,
# drain the queue, and show where every thumbnail went. Everything lives under ./var/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
MW=.venv/bin/media-worker
DEMO=var/demo
rm -rf "$DEMO"
mkdir -p "$DEMO"
# Only the embedded default: ignore any service configuration in the caller's environment.
unset SQS_QUEUE_URL MINIO_ENDPOINT DATABASE_URL
export DATABASE_URL="sqlite:///./$DEMO/media.db"
export EMBEDDED_QUEUE_PATH="$DEMO/queue.db" EMBEDDED_STORAGE_PATH="$DEMO/storage"
export SQS_WAIT_TIME_SECONDS=1 SQS_POLL_INTERVAL_MS=200

echo "== making sample media in $DEMO/samples"
"$MW" samples "$DEMO/samples"
echo "== enqueueing (what the API does: store, insert PENDING, send a message)"
"$MW" enqueue "$DEMO"/samples/* | tee "$DEMO/enqueued.tsv"
echo "== draining the queue"
"$MW" run --drain
echo "== result"
"$MW" status
cut -f1 "$DEMO/enqueued.tsv" | while read -r id; do "$MW" status "$id" --where; done
