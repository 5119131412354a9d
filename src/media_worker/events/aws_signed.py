"""Signed POSTs to one AWS service endpoint over events/http_post.py: what the SQS and SNS
event targets send their batches with.

Why not a botocore client: a `SendMessageBatch` through botocore costs a few milliseconds of
CPU (its request pipeline, urllib3 and http.client, each a share; docs/performance.md,
"Status events"), which alone spent the events' budget of 1 ms of worker CPU per job. What
stays botocore's: SigV4 signing (botocore.auth.SigV4Auth), the credentials (the session's
provider chain, refreshed before they expire: IRSA, Pod Identity, instance roles) and the
endpoint (resolved once by a boto3 client: region, FIPS, dual-stack, or the configured one).
What this gives up: botocore's quick retries inside a call (the dispatcher's row and target
backoffs retry instead) and proxies (HTTPS_PROXY is not used, as for the webhook: reach AWS
directly or through a VPC endpoint).
"""

from __future__ import annotations

import threading
from typing import Any, Final, Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from media_worker.events.http_post import Answer, HttpPoster

TIMEOUT_SECONDS: Final = 10.0  # connecting, and each wait for the service's answer
# A call may connect, send, wait, find the kept connection stale and do it all again.
CALL_TIMEOUT_SECONDS: Final = 4 * TIMEOUT_SECONDS + 5


class NoCredentialsError(OSError):
    """No AWS credentials were found when the call was to be signed."""


class CredentialSource(Protocol):
    """botocore's Credentials (or RefreshableCredentials): `get_frozen_credentials` refreshes
    them first when they are about to expire."""

    def get_frozen_credentials(self) -> Any: ...


class SignedPoster:
    """POSTs signed with SigV4 for `service` in `region` to `endpoint_url`, one at a time
    (the dispatcher's thread, and the stopping worker's last flush)."""

    call_timeout_seconds = CALL_TIMEOUT_SECONDS

    def __init__(self, endpoint_url: str, *, service: str, region: str,
                 credentials: CredentialSource | None,
                 timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self.endpoint_url = endpoint_url.rstrip("/") + "/"
        self.service = service
        self.region = region
        self._credentials = credentials
        self._poster = HttpPoster(self.endpoint_url, timeout_seconds)
        self._lock = threading.Lock()

    def post(self, body: bytes, headers: dict[str, str]) -> Answer:
        """The service's answer. Raises OSError (TimeoutError, NoCredentialsError, refused
        connections) and botocore's errors from refreshing credentials."""
        if self._credentials is None:
            raise NoCredentialsError("no AWS credentials found to sign the call with")
        request = AWSRequest("POST", self.endpoint_url, data=body, headers=headers)
        SigV4Auth(self._credentials.get_frozen_credentials(), self.service,
                  self.region).add_auth(request)
        with self._lock:
            return self._poster.exchange(body, dict(request.headers.items()))

    def close(self) -> None:
        with self._lock:
            self._poster.close()
