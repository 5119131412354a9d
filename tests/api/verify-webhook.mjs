#!/usr/bin/env node
// What the API's webhook endpoint does with a status event of the worker (docs/events.md):
// verify it with the `standardwebhooks` npm package, the reference implementation of the
// Standard Webhooks specification for TypeScript/JavaScript, on the raw body as received.
//
//   echo '{"secret": "whsec_…", "body": "<raw body>", "headers": {"webhook-id": …}}' \
//     | node tests/api/verify-webhook.mjs
//
// Prints {"ok": true, "id", "type", "mediaId"} (exit 0), or {"ok": false, "error"} (exit 1).
// tests/contract/test_event_target_contract.py runs it on what WebhookTarget sends.

import { readFileSync } from "node:fs";

import { Webhook } from "standardwebhooks";

const { secret, body, headers } = JSON.parse(readFileSync(0, "utf8"));
try {
  const event = new Webhook(secret).verify(body, headers);
  process.stdout.write(JSON.stringify({ ok: true, id: event.id, type: event.type,
    mediaId: event.mediaId }) + "\n");
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error.message ?? error) }) + "\n");
  process.exit(1);
}
