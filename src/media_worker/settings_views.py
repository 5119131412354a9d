"""What Settings derive from their fields: the backends they select, the access each client
gets, the figures several modules need. Kept apart from the fields and their validation
(config.py) so each reads in one sitting; `Settings` inherits these views."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from media_worker.aws_access import (
    QUEUE_DEVELOPMENT_KEYS,
    QUEUE_KEY_VARIABLES,
    STORAGE_DEVELOPMENT_KEYS,
    STORAGE_KEY_VARIABLES,
    ServiceAccess,
    is_aws_endpoint,
)
from media_worker.renditions import MOTION_PHOTO_CLIP

if TYPE_CHECKING:
    from media_worker.renditions import PreviewSpec
    from media_worker.types import ThumbnailSize


def cpu_count() -> int:
    """CPUs this process may use (its affinity), not the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class SettingsViews:
    """Derived views over the fields `Settings` declares (annotations only, for readers)."""

    worker_concurrency: int
    render_processes: int | None
    worker_prefetch: int | None
    sqs_queue_url: str | None
    sqs_endpoint: str | None
    aws_region: str
    aws_access_key_id: str | None
    aws_secret_access_key: SecretStr | None
    aws_session_token: SecretStr | None
    aws_endpoint_url: str | None
    aws_endpoint_url_s3: str | None
    minio_endpoint: str | None
    minio_access_key: str | None
    minio_secret_key: SecretStr | None
    minio_region: str
    database_url: SecretStr
    sqs_visibility_timeout: int
    thumbnail_background: str
    retry_max_seconds: float
    thumbnail_sizes: list[ThumbnailSize]
    aws_endpoint_url_sqs: str | None
    aws_endpoint_url_sns: str | None
    events_pg_channel: str
    events_sqs_url: str | None
    events_sns_topic_arn: str | None
    events_webhook_url: str | None
    video_preview: PreviewSpec | None
    motion_photo_preview: str

    @property
    def render_workers(self) -> int:
        """How many decoder processes render at once (RENDER_PROCESSES or its default)."""
        return self.render_processes or min(self.worker_concurrency, cpu_count())

    @property
    def prefetch_messages(self) -> int:
        """Messages held ready beyond the running jobs (WORKER_PREFETCH or its default)."""
        return self.worker_concurrency if self.worker_prefetch is None else self.worker_prefetch

    @property
    def uses_embedded_queue(self) -> bool:
        return self.sqs_queue_url is None

    @property
    def uses_embedded_storage(self) -> bool:
        return self.storage_endpoint is None

    @property
    def storage_endpoint(self) -> str | None:
        """MINIO_ENDPOINT, else botocore's AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL; None means
        the embedded directory. An amazonaws.com URL is S3 on AWS itself."""
        return self.minio_endpoint or self.aws_endpoint_url_s3 or self.aws_endpoint_url

    def queue_access(self) -> ServiceAccess:
        """Where and as whom the SQS client connects."""
        return ServiceAccess(
            service="queue", endpoint_url=self.sqs_endpoint or None, region=self.aws_region,
            access_key_id=self.aws_access_key_id,
            secret_access_key=_secret(self.aws_secret_access_key),
            session_token=_secret(self.aws_session_token),
            key_variables=QUEUE_KEY_VARIABLES,
            development_keys=QUEUE_DEVELOPMENT_KEYS,
        )

    def storage_access(self) -> ServiceAccess:
        """Where and as whom the S3 client connects: MINIO_* keys, else the AWS_* ones."""
        explicit = self.minio_access_key is not None or self.minio_secret_key is not None
        return ServiceAccess(
            service="storage", endpoint_url=self.storage_endpoint, region=self.minio_region,
            access_key_id=self.minio_access_key if explicit else self.aws_access_key_id,
            secret_access_key=_secret(self.minio_secret_key if explicit
                                      else self.aws_secret_access_key),
            session_token=None if explicit else _secret(self.aws_session_token),
            key_variables=(STORAGE_KEY_VARIABLES if explicit or not self.aws_access_key_id
                           else QUEUE_KEY_VARIABLES),
            development_keys=STORAGE_DEVELOPMENT_KEYS,
        )

    @property
    def database_kind(self) -> Literal["postgresql", "sqlite"]:
        url = self.database_url.get_secret_value()
        return "sqlite" if url.lower().startswith("sqlite") else "postgresql"

    @property
    def sqlite_database_path(self) -> Path:
        """`sqlite:///./var/media.db` → `./var/media.db`; `sqlite:////abs/x.db` → `/abs/x.db`."""
        url = self.database_url.get_secret_value()
        return Path(url.split(":///", 1)[1]) if ":///" in url else Path(url.split(":", 1)[1])

    @property
    def job_lease_seconds(self) -> int:
        """How long a claim holds a row; the heartbeat renews it like the message's visibility."""
        return self.sqs_visibility_timeout

    @property
    def motion_photo_clip(self) -> PreviewSpec | None:
        """The clip of a motion photo's embedded video (MOTION_PHOTO_PREVIEW=on): VIDEO_PREVIEW's
        box, seconds, fps and format when that is set, else MOTION_PHOTO_CLIP's; None: off."""
        if self.motion_photo_preview != "on":
            return None
        return self.video_preview or MOTION_PHOTO_CLIP

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        """THUMBNAIL_BACKGROUND as (r, g, b): what transparent pixels become in a JPEG."""
        text = self.thumbnail_background.lstrip("#")
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)

    @property
    def stranded_after_seconds(self) -> float:
        """A PENDING row untouched this long has no message left: longer than the largest
        retry backoff (RETRY_MAX_SECONDS) plus two visibility timeouts."""
        return self.retry_max_seconds + 2 * self.sqs_visibility_timeout

    @property
    def event_targets(self) -> tuple[str, ...]:
        """The status-event targets configured (outbox rows are written for these only)."""
        return tuple(name for name, where in (("webhook", self.events_webhook_url),
                                              ("sqs", self.events_sqs_url),
                                              ("sns", self.events_sns_topic_arn)) if where)

    @property
    def events_notify_channel(self) -> str | None:
        """EVENTS_PG_CHANNEL where it applies: PostgreSQL (SQLite has no NOTIFY)."""
        return (self.events_pg_channel or None) if self.database_kind == "postgresql" else None

    def events_access(self, service: Literal["sqs", "sns"]) -> ServiceAccess:
        """Where and as whom the events' SQS or SNS client connects: the AWS_* keys (as the job
        queue's), and SQS_ENDPOINT or botocore's endpoint variables; else AWS itself for an
        AWS queue URL or topic ARN, or the queue URL's own host (SQS), or the job queue's
        non-AWS endpoint (SNS: LocalStack and moto serve both on one port)."""
        if service == "sqs":
            url = self.events_sqs_url or ""
            endpoint = (self.sqs_endpoint if self.sqs_endpoint is not None
                        else self.aws_endpoint_url_sqs or self.aws_endpoint_url
                        or (None if is_aws_endpoint(url) else _origin(url)))
            region = self.aws_region
        else:
            local_sqs = self.sqs_endpoint if not is_aws_endpoint(self.sqs_endpoint) else None
            endpoint = self.aws_endpoint_url_sns or self.aws_endpoint_url or local_sqs
            region = _arn_region(self.events_sns_topic_arn) or self.aws_region
        return ServiceAccess(
            service=f"events ({service.upper()})", endpoint_url=endpoint or None, region=region,
            access_key_id=self.aws_access_key_id,
            secret_access_key=_secret(self.aws_secret_access_key),
            session_token=_secret(self.aws_session_token),
            key_variables=QUEUE_KEY_VARIABLES,
            development_keys=QUEUE_DEVELOPMENT_KEYS,
        )

    def redacted_database_url(self) -> str:
        """The database URL with any password replaced, safe to print."""
        return redact_url(self.database_url.get_secret_value())



def _origin(url: str) -> str | None:
    """`scheme://host:port` of a URL (an SQS queue URL names its server)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _arn_region(arn: str | None) -> str | None:
    """The region of `arn:aws:sns:REGION:ACCOUNT:NAME`."""
    parts = (arn or "").split(":")
    return parts[3] if len(parts) >= 6 and parts[3] else None


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def redact_url(url: str) -> str:
    """Replace the password of a URL's userinfo by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


