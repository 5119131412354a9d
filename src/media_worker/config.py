"""Settings: one typed object, read once from the environment (and `.env`), passed down.

The variable names are the ones operators of the original system use (see README). Nothing
configured at all means the embedded default: every backend is a file under `./var/`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from media_worker.aws_access import is_aws_endpoint
from media_worker.events.secret import check_webhook_secret
from media_worker.renditions import (
    DEFAULT_PLACEHOLDERS,
    PreviewSpec,
    StoryboardSpec,
    parse_placeholders,
    parse_preview,
    parse_profiles,
    parse_storyboard,
)
from media_worker.settings_views import SettingsViews, cpu_count
from media_worker.types import ThumbnailSize

DEFAULT_SIZES = "small:150x150,medium:480x480,large:1280x1280"
LOCALSTACK_ENDPOINT = "http://localstack:4566"


class ThumbnailFormat(StrEnum):
    """Output encodings the engines can produce."""

    WEBP = "webp"
    JPEG = "jpeg"
    AVIF = "avif"
    PNG = "png"


class EngineKind(StrEnum):
    """Which thumbnail engine renders: in-process or an imagor-protocol service."""

    LOCAL = "local"
    IMAGORVIDEO = "imagorvideo"


class Settings(SettingsViews, BaseSettings):
    """Every knob of the worker. Field `foo_bar` is read from the variable `FOO_BAR`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- media repository -------------------------------------------------------------
    database_url: SecretStr = SecretStr("sqlite:///./var/media.db")
    media_table: str = Field("Media", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

    # --- queue --------------------------------------------------------------------------
    sqs_queue_url: str | None = None
    sqs_endpoint: str | None = None
    sqs_dlq_url: str | None = None
    sqs_wait_time_seconds: int = Field(10, ge=0, le=20)
    sqs_poll_interval_ms: int = Field(5000, ge=0, le=600_000)
    sqs_visibility_timeout: int = Field(300, ge=1, le=43_200)
    sqs_max_messages: int = Field(10, ge=1, le=10)
    aws_region: str = "us-east-1"
    # Unset: boto3's default credential chain (profiles, IRSA, container and instance roles);
    # LocalStack's test/test only when that finds nothing and the endpoint is not AWS.
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    # botocore's standard endpoint variables, used where SQS_ENDPOINT / MINIO_ENDPOINT are unset.
    aws_endpoint_url: str | None = None
    aws_endpoint_url_sqs: str | None = None
    aws_endpoint_url_s3: str | None = None
    embedded_queue_path: Path = Path("./var/queue.db")

    # --- storage ------------------------------------------------------------------------
    minio_endpoint: str | None = None
    # Unset: the AWS_* keys, then boto3's chain, then MinIO's minioadmin off AWS.
    minio_access_key: str | None = None
    minio_secret_key: SecretStr | None = None
    minio_bucket: str = Field("media", min_length=3, max_length=63)
    minio_region: str = "us-east-1"
    embedded_storage_path: Path = Path("./var/storage")

    # --- thumbnails ---------------------------------------------------------------------
    thumbnail_engine: EngineKind = EngineKind.LOCAL
    thumbnail_sizes: Annotated[list[ThumbnailSize], NoDecode] = Field(
        default_factory=lambda: ThumbnailSize.parse_list(DEFAULT_SIZES)
    )
    # Named size lists a message may pick with `profile` (JSON: name → sizes string).
    thumbnail_profiles: Annotated[dict[str, list[ThumbnailSize]], NoDecode] = Field(
        default_factory=dict)
    # A looping clip of every video (`WxH:SECONDS[:FPS][:webp|mp4]`), and scrubbing sprites
    # with their WebVTT (`TILEWxTILEH:INTERVAL|auto`); `off` by default.
    video_preview: Annotated[PreviewSpec | None, NoDecode] = None
    video_storyboard: Annotated[StoryboardSpec | None, NoDecode] = None
    # `on`: a motion photo's embedded video also gets its preview clip, drawn as VIDEO_PREVIEW
    # draws a video's (docs/media.md, "Motion photos").
    motion_photo_preview: Literal["off", "on"] = "off"
    # Animated sizes are cut (not failed) past either limit; `frames` says how many were kept.
    max_animation_frames: int = Field(300, ge=1, le=10_000)
    max_animation_pixels: int = Field(50_000_000, ge=1)
    thumbnail_format: ThumbnailFormat = ThumbnailFormat.WEBP
    thumbnail_quality: int = Field(80, ge=1, le=100)
    thumbnail_background: str = Field("ffffff", pattern=r"^#?[0-9A-Fa-f]{6}$")
    thumbnail_key_template: str = "thumbnails/{media_id}/{size}.{ext}"
    # HDR originals (PQ, HLG) become SDR with this tone curve (BT.2390's EETF by default).
    tonemap: Literal["bt2390", "hable", "mobius", "clip"] = "bt2390"
    # `gainmap`: JPEG sizes of an HDR original are Ultra HDR JPEGs (SDR + a gain map).
    hdr_output: Literal["sdr", "gainmap"] = "sdr"
    # `keep-p3`: Display P3 originals keep P3 (a compact ICC profile embedded).
    thumbnail_color: Literal["srgb", "keep-p3"] = "srgb"
    # `linear`: downscale in linear light (fine bright detail keeps its brightness).
    resize_light: Literal["gamma", "linear"] = "gamma"
    # `keep`: the original's GPS position is stored in the row's metadata (`gps`); `drop`
    # never stores it. Thumbnails carry no position either way (metadata is stripped).
    metadata_gps: Literal["drop", "keep"] = "drop"
    # Which placeholders the row's metadata gets (comma-separated; empty: none); the
    # perceptual hash `phash` is always computed.
    placeholders: Annotated[frozenset[str], NoDecode] = frozenset(parse_placeholders(
        DEFAULT_PLACEHOLDERS))
    imagorvideo_url: str = "http://imagorvideo:8080"
    imagorvideo_secret: SecretStr | None = None
    imagorvideo_signer_type: Literal["sha1", "sha256", "sha512"] = "sha1"
    imagorvideo_signer_truncate: int = Field(0, ge=0)
    imagorvideo_source: Literal["s3", "presigned"] = "s3"
    # Ask the service's /meta for the original's facts instead of only the local probe.
    imagorvideo_service_metadata: bool = False
    # Tries of one request after the first, for 408/429/5xx and timeouts.
    imagorvideo_retries: int = Field(3, ge=0, le=10)

    # --- work and limits ----------------------------------------------------------------
    worker_concurrency: int = Field(default_factory=cpu_count, ge=1, le=256)
    # Decoder child processes; unset: min(WORKER_CONCURRENCY, CPU count). Jobs in flight may
    # exceed the cores (one downloads or uploads while the others render), renders may not: a
    # third decoder on two cores only adds memory and switching (docs/performance.md).
    render_processes: int | None = Field(None, ge=1, le=256)
    # Messages received ahead of a free slot; unset: WORKER_CONCURRENCY. 0 = receive only for
    # free slots (strictest sharing of the queue between replicas, one receive per job).
    worker_prefetch: int | None = Field(None, ge=0, le=256)
    # Megabytes of decodes that cannot stream (progressive JPEG, interlaced PNG, HEIC and
    # other Pillow decodes) allowed at once across the decoder processes; 0 = no budget.
    decode_memory_mb: int = Field(128, ge=0)
    max_attempts: int = Field(5, ge=1, le=100)
    max_input_bytes: int = Field(512 * 1024 * 1024, ge=1)
    # Bytes one job may fetch of an original read in place (storage's open_reader: a video's
    # index and the packets around its frames), however large the original; MAX_INPUT_BYTES
    # bounds a whole download instead. Checked before each fetch and counted across them.
    max_read_bytes: int = Field(256 * 1024 * 1024, ge=1)
    # What a decode may hold: the whole picture's pixels where it cannot stream; a tiled HEIC
    # or a baseline JPEG holds less (a row of tiles, the shrink-on-load scale) and is bounded
    # by that, with MAX_HEADER_PIXELS on its header (docs/media.md, "Limits and isolation").
    max_pixels: int = Field(100_000_000, ge=1)
    max_header_pixels: int = Field(1_000_000_000, ge=1)
    max_video_seconds: float = Field(4 * 3600, gt=0)
    job_timeout_seconds: float = Field(600, gt=0)
    shutdown_grace_seconds: float = Field(30, ge=0)
    reconcile_interval_seconds: float = Field(300, ge=0)
    # The sweep stays off while more messages than this wait (rows behind a backlog only
    # look stranded; re-sending them would inflate the depth autoscaling reads).
    reconcile_max_queue_depth: int = Field(100, ge=0)
    # A retry's backoff doubles from RETRY_BASE_SECONDS per receive up to RETRY_MAX_SECONDS
    # (at most SQS's 12 h visibility); the sweep's idea of "stranded" follows the cap.
    retry_base_seconds: float = Field(10, gt=0, le=43_200)
    retry_max_seconds: float = Field(900, gt=0, le=43_200)
    # How long a job whose row does not exist yet is looked for again, counted from the
    # message's SentTimestamp: an API that sends inside its transaction commits a moment later.
    missing_row_grace_seconds: float = Field(120, ge=0, le=43_200)

    # --- status events (docs/events.md) ---------------------------------------------------
    # No target set: no outbox rows are written at all (an outbox nobody drains never grows);
    # PostgreSQL's NOTIFY needs no outbox and is on by default.
    events_pg_channel: str = Field("media_status", pattern=r"^([A-Za-z_][A-Za-z0-9_]{0,62})?$",
                                   description="PostgreSQL NOTIFY channel of every status "
                                   "change (payload: id and status); empty: no NOTIFY")
    events_sqs_url: str | None = Field(None, description="SQS queue receiving every status "
                                       "event (FIFO: group = media id, dedup = event id)")
    events_sns_topic_arn: str | None = Field(None, description="SNS topic receiving every "
                                             "status event (FIFO like EVENTS_SQS_URL)")
    events_webhook_url: str | None = Field(None, pattern=r"^https?://", description="URL "
                                           "receiving every status event, POSTed and signed")
    events_webhook_secret: SecretStr | None = Field(None, description="Standard Webhooks "
                                                    "secret (whsec_ + base64) signing them")
    events_webhook_timeout_seconds: float = Field(10, gt=0, le=60, description="one POST's "
                                                  "limit; a slower receiver is tried again")
    events_max_age_seconds: float = Field(86_400, gt=0, description="an event undelivered "
                                          "this long is dropped, with a log line and a metric")
    events_poll_interval_ms: int = Field(500, ge=10, le=60_000, description="how often the "
                                         "dispatchers look for new events")
    aws_endpoint_url_sns: str | None = None  # botocore's variable, for EVENTS_SNS_TOPIC_ARN

    # --- observability ------------------------------------------------------------------
    metrics_port: int | None = Field(None, ge=1, le=65535)
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("placeholders", mode="before")
    @classmethod
    def _parse_placeholders(cls, value: object) -> object:
        return parse_placeholders(value) if isinstance(value, str) else value

    @field_validator("thumbnail_sizes", mode="before")
    @classmethod
    def _parse_sizes(cls, value: object) -> object:
        return ThumbnailSize.parse_list(value) if isinstance(value, str) else value

    @field_validator("thumbnail_profiles", mode="before")
    @classmethod
    def _parse_profiles(cls, value: object) -> object:
        return parse_profiles(value) if isinstance(value, str) else value

    @field_validator("video_preview", mode="before")
    @classmethod
    def _parse_preview(cls, value: object) -> object:
        return parse_preview(value) if isinstance(value, str) else value

    @field_validator("video_storyboard", mode="before")
    @classmethod
    def _parse_storyboard(cls, value: object) -> object:
        return parse_storyboard(value) if isinstance(value, str) else value

    @field_validator("log_level", "log_format", "thumbnail_format", "thumbnail_engine",
                     "imagorvideo_signer_type", "imagorvideo_source", "tonemap", "hdr_output",
                     "thumbnail_color", "resize_light", "metadata_gps", "motion_photo_preview",
                     mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("sqs_queue_url", "sqs_dlq_url", "minio_endpoint", "metrics_port",
                     "imagorvideo_secret", "render_processes", "worker_prefetch",
                     "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                     "minio_access_key", "minio_secret_key", "aws_endpoint_url",
                     "aws_endpoint_url_sqs", "aws_endpoint_url_s3", "aws_endpoint_url_sns",
                     "events_sqs_url", "events_sns_topic_arn", "events_webhook_url",
                     "events_webhook_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: SecretStr) -> SecretStr:
        scheme = value.get_secret_value().split(":", 1)[0].lower()
        if scheme not in {"postgresql", "postgres", "sqlite"}:
            raise ValueError("must start with postgresql:// or sqlite:///")
        return value

    @field_validator("thumbnail_key_template")
    @classmethod
    def _template_is_deterministic(cls, value: str) -> str:
        for placeholder in ("{media_id}", "{size}"):
            if placeholder not in value:
                raise ValueError(f"must contain {placeholder} so keys are unique per thumbnail")
        return value

    @model_validator(mode="after")
    def _default_sqs_endpoint(self) -> Settings:
        """SQS_ENDPOINT unset: botocore's AWS_ENDPOINT_URL_SQS, then AWS_ENDPOINT_URL; then AWS
        itself ("") for an amazonaws.com queue URL, else the original system's LocalStack."""
        if self.sqs_queue_url and self.sqs_endpoint is None:
            configured = self.aws_endpoint_url_sqs or self.aws_endpoint_url
            if configured:
                self.sqs_endpoint = configured
            elif is_aws_endpoint(self.sqs_queue_url):
                self.sqs_endpoint = ""
            else:
                self.sqs_endpoint = LOCALSTACK_ENDPOINT
        return self

    @model_validator(mode="after")
    def _webhook_is_signed(self) -> Settings:
        """A webhook is never called unsigned, and a secret that cannot sign stops start-up."""
        if self.events_webhook_url and self.events_webhook_secret is None:
            raise ValueError("EVENTS_WEBHOOK_SECRET is required with EVENTS_WEBHOOK_URL "
                             "(events are always signed)")
        if self.events_webhook_secret is not None:
            check_webhook_secret(self.events_webhook_secret.get_secret_value())
        return self

    def _animated_sizes(self) -> list[str]:
        """Names of the animated sizes, in THUMBNAIL_SIZES and every profile."""
        return [size.name for sizes in (self.thumbnail_sizes, *self.thumbnail_profiles.values())
                for size in sizes if size.animated]

    @model_validator(mode="after")
    def _imagor_can_express_it(self) -> Settings:
        """The imagor protocol has no storyboard, clip or per-size animation: say so at
        start-up instead of failing job after job."""
        if self.thumbnail_engine is not EngineKind.IMAGORVIDEO:
            return self
        animated = self._animated_sizes()
        if animated:
            raise ValueError(f"THUMBNAIL_SIZES/THUMBNAIL_PROFILES: animated sizes "
                             f"({', '.join(animated)}) need THUMBNAIL_ENGINE=local; the imagor "
                             "protocol renders one frame per request")
        for name, value in (("VIDEO_STORYBOARD", self.video_storyboard),
                            ("VIDEO_PREVIEW", self.video_preview),
                            ("MOTION_PHOTO_PREVIEW", self.motion_photo_clip)):
            if value is not None:
                raise ValueError(f"{name} needs THUMBNAIL_ENGINE=local; the imagor protocol "
                                 "has no storyboards or preview clips")
        return self


class SettingsError(Exception):
    """Settings could not be loaded; the message is one line naming the variable."""


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, turning validation errors into one readable line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    if not first["loc"]:  # a rule across settings: its message names the variables
        return f"invalid settings: {message}"
    variable = str(first["loc"][0]).upper()
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more invalid setting{'s' if more > 1 else ''})" if more else ""
    return f"invalid setting {variable}: {message}{suffix}"
