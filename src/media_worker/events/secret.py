"""The webhook secret, checked when settings load: a secret that cannot sign must stop start-up
with one line, not fail every delivery later."""

from __future__ import annotations

import binascii

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook


def check_webhook_secret(secret: str) -> None:
    """Raise ValueError (naming the variable, never the value) unless Standard Webhooks can
    sign with `secret`: `whsec_` and base64, as Svix and the specification's libraries make
    it (24 to 64 random bytes, e.g. `echo whsec_$(openssl rand -base64 32)`)."""
    try:
        Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError):
        raise ValueError("EVENTS_WEBHOOK_SECRET is not a Standard Webhooks secret "
                         "(whsec_ and base64)") from None
