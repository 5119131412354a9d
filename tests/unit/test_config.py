"""Settings: defaults, the backend rule, and one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.config import Settings, SettingsError, load_settings
from media_worker.renditions import PreviewSpec, StoryboardSpec
from media_worker.settings_views import redact_url
from media_worker.types import ThumbnailSize

ALL_VARIABLES = [
    "DATABASE_URL", "MEDIA_TABLE", "SQS_QUEUE_URL", "SQS_ENDPOINT", "SQS_DLQ_URL",
    "SQS_WAIT_TIME_SECONDS", "SQS_POLL_INTERVAL_MS", "SQS_VISIBILITY_TIMEOUT", "SQS_MAX_MESSAGES",
    "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MINIO_ENDPOINT",
    "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_BUCKET", "MINIO_REGION", "THUMBNAIL_ENGINE",
    "THUMBNAIL_SIZES", "THUMBNAIL_FORMAT", "THUMBNAIL_QUALITY", "IMAGORVIDEO_URL",
    "IMAGORVIDEO_SECRET", "IMAGORVIDEO_SIGNER_TYPE", "IMAGORVIDEO_SIGNER_TRUNCATE",
    "IMAGORVIDEO_SOURCE", "WORKER_CONCURRENCY", "RENDER_PROCESSES", "WORKER_PREFETCH",
    "DECODE_MEMORY_MB", "MAX_ATTEMPTS", "MAX_INPUT_BYTES", "MAX_PIXELS",
    "MAX_HEADER_PIXELS",
    "MAX_VIDEO_SECONDS", "JOB_TIMEOUT_SECONDS", "SHUTDOWN_GRACE_SECONDS", "METRICS_PORT",
    "LOG_FORMAT", "LOG_LEVEL", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_S3", "MISSING_ROW_GRACE_SECONDS", "IMAGORVIDEO_RETRIES",
    "IMAGORVIDEO_SERVICE_METADATA", "RETRY_BASE_SECONDS", "RETRY_MAX_SECONDS",
    "RECONCILE_MAX_QUEUE_DEPTH",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable of the caller's shell and no .env leaks into these tests."""
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_nothing_configured_means_everything_embedded_under_var() -> None:
    settings = load_settings()
    assert settings.uses_embedded_queue
    assert settings.uses_embedded_storage
    assert settings.database_kind == "sqlite"
    assert settings.sqlite_database_path == Path("./var/media.db")


def test_every_design_variable_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert set(ALL_VARIABLES) <= fields


def test_default_sizes_are_small_medium_large() -> None:
    assert [str(s) for s in load_settings().thumbnail_sizes] == [
        "small:150x150", "medium:480x480", "large:1280x1280"]


def test_sizes_are_parsed_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUMBNAIL_SIZES", "tiny:64x32, huge:2048x2048")
    assert load_settings().thumbnail_sizes == [
        ThumbnailSize(name="tiny", width=64, height=32),
        ThumbnailSize(name="huge", width=2048, height=2048)]


def test_queue_url_selects_sqs_with_the_localstack_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SQS_QUEUE_URL", "http://localstack:4566/000000000000/media")
    settings = load_settings()
    assert not settings.uses_embedded_queue
    assert settings.sqs_endpoint == "http://localstack:4566"


def test_empty_sqs_endpoint_means_aws_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/media")
    monkeypatch.setenv("SQS_ENDPOINT", "")
    assert load_settings().sqs_endpoint == ""


def test_aws_queue_url_never_defaults_to_localstack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/media")
    assert load_settings().sqs_endpoint == ""
    assert load_settings().queue_access().is_aws


def test_botocore_sqs_endpoint_variable_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQS_QUEUE_URL", "http://elasticmq:9324/000000000000/media")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://everything:4566")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://elasticmq:9324")
    assert load_settings().sqs_endpoint == "http://elasticmq:9324"


def test_botocore_global_endpoint_variable_serves_sqs_and_s3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SQS_QUEUE_URL", "http://localstack:4566/000000000000/media")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    settings = load_settings()
    assert settings.sqs_endpoint == "http://127.0.0.1:4566"
    assert settings.storage_endpoint == "http://127.0.0.1:4566"
    assert not settings.uses_embedded_storage


def test_sqs_endpoint_wins_over_the_botocore_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQS_QUEUE_URL", "http://localstack:4566/000000000000/media")
    monkeypatch.setenv("SQS_ENDPOINT", "http://localstack:4566")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://elsewhere:1")
    assert load_settings().sqs_endpoint == "http://localstack:4566"


def test_botocore_s3_endpoint_variable_selects_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://seaweed:8333")
    assert load_settings().storage_endpoint == "http://seaweed:8333"


def test_no_keys_configured_leaves_credentials_to_boto3() -> None:
    settings = load_settings()
    assert settings.queue_access().access_key_id is None
    assert settings.storage_access().access_key_id is None


def test_storage_uses_minio_keys_before_the_aws_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "aws-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "aws-token")
    assert load_settings().storage_access().access_key_id == "aws-key"
    assert load_settings().storage_access().session_token == "aws-token"
    monkeypatch.setenv("MINIO_ACCESS_KEY", "minio-key")
    monkeypatch.setenv("MINIO_SECRET_KEY", "minio-secret")
    access = load_settings().storage_access()
    assert (access.access_key_id, access.secret_access_key, access.session_token) == (
        "minio-key", "minio-secret", None)
    assert access.key_variables == "MINIO_ACCESS_KEY/MINIO_SECRET_KEY"


def test_queue_passes_the_session_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "aws-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "aws-token")
    assert load_settings().queue_access().session_token == "aws-token"


def test_minio_endpoint_selects_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIO_ENDPOINT", "http://minio:9000")
    assert not load_settings().uses_embedded_storage


def test_postgres_url_selects_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/app")
    assert load_settings().database_kind == "postgresql"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MAX_ATTEMPTS=7\n")
    assert load_settings().max_attempts == 7


@pytest.mark.parametrize(("variable", "value"), [
    ("THUMBNAIL_SIZES", "small:150"),
    ("SQS_WAIT_TIME_SECONDS", "21"),
    ("SQS_MAX_MESSAGES", "11"),
    ("THUMBNAIL_FORMAT", "bmp"),
    ("WORKER_CONCURRENCY", "zero"),
    ("DATABASE_URL", "mysql://db/app"),
    ("LOG_FORMAT", "xml"),
])
def test_invalid_value_fails_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message


def test_invalid_database_url_does_not_echo_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://user:hunter2@db/app")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_secrets_are_hidden_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIO_SECRET_KEY", "hunter2")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@db/app")
    assert "hunter2" not in repr(load_settings())


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact_url("sqlite:///./var/media.db") == "sqlite:///./var/media.db"


def test_size_names_must_be_unique(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUMBNAIL_SIZES", "a:1x1,a:2x2")
    with pytest.raises(SettingsError, match="THUMBNAIL_SIZES"):
        load_settings()


def test_a_size_may_override_format_and_quality(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUMBNAIL_SIZES", "small:150x150,og:1200x630:jpeg:85")
    small, social = load_settings().thumbnail_sizes
    assert (small.format, small.quality) == (None, None)
    assert (social.format, social.quality) == ("jpeg", 85)
    assert str(social) == "og:1200x630:jpeg:85"


def test_background_is_parsed_from_hex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUMBNAIL_BACKGROUND", "#102030")
    assert load_settings().background_rgb == (16, 32, 48)


def test_render_processes_default_to_jobs_in_flight_but_never_more_than_cores(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("media_worker.settings_views.cpu_count", lambda: 2)
    monkeypatch.setenv("WORKER_CONCURRENCY", "3")
    assert load_settings().render_workers == 2
    monkeypatch.setenv("WORKER_CONCURRENCY", "1")
    assert load_settings().render_workers == 1


def test_render_processes_can_be_set_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_CONCURRENCY", "4")
    monkeypatch.setenv("RENDER_PROCESSES", "3")
    assert load_settings().render_workers == 3


def test_prefetch_defaults_to_the_concurrency_and_may_be_zero(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_CONCURRENCY", "3")
    assert load_settings().prefetch_messages == 3
    monkeypatch.setenv("WORKER_PREFETCH", "0")
    assert load_settings().prefetch_messages == 0


def test_http_connection_pools_grow_with_the_concurrency(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from media_worker.app import connection_pool_size

    monkeypatch.setenv("WORKER_CONCURRENCY", "2")
    assert connection_pool_size(load_settings()) == 10
    monkeypatch.setenv("WORKER_CONCURRENCY", "64")
    assert connection_pool_size(load_settings()) == 69


def test_the_database_pool_has_a_connection_for_every_job_and_background_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from media_worker.app.adapters import BACKGROUND_DATABASE_USERS, database_pool_size

    monkeypatch.setenv("WORKER_CONCURRENCY", "6")
    assert database_pool_size(load_settings()) == 6 + BACKGROUND_DATABASE_USERS


def test_the_imagor_engine_probes_in_decoder_processes_with_the_configured_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from media_worker.app import build_engine
    from media_worker.engines.imagor.original import IsolatedProbe

    monkeypatch.setenv("THUMBNAIL_ENGINE", "imagorvideo")
    monkeypatch.setenv("IMAGORVIDEO_SECRET", "a-secret-of-some-length")
    monkeypatch.setenv("IMAGORVIDEO_RETRIES", "0")
    engine = build_engine(load_settings())
    try:
        assert isinstance(engine._prober, IsolatedProbe)  # type: ignore[attr-defined]
        retry = engine._client._pool.connection_pool_kw["retries"]  # type: ignore[attr-defined]
        assert retry.total == 0
    finally:
        engine.close()


def test_max_read_bytes_defaults_to_256_mib() -> None:
    assert load_settings().max_read_bytes == 256 * 1024 * 1024


def test_max_read_bytes_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_READ_BYTES", "1048576")
    assert load_settings().max_read_bytes == 1024 * 1024


def test_a_max_read_bytes_of_zero_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_READ_BYTES", "0")
    with pytest.raises(SettingsError, match="MAX_READ_BYTES"):
        load_settings()


def test_an_animated_size_is_accepted_with_the_local_engine(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THUMBNAIL_SIZES", "small:150x150,loop:320x320:animated")
    monkeypatch.setenv("THUMBNAIL_PROFILES", '{"chat": "g:160x160:cover:gif:animated"}')
    settings = load_settings()
    assert [size.animated for size in settings.thumbnail_sizes] == [False, True]
    assert settings.thumbnail_profiles["chat"][0].format == "gif"


def test_a_preview_clip_and_a_storyboard_are_accepted_with_the_local_engine(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEO_PREVIEW", "480x480:3:12:mp4")
    monkeypatch.setenv("VIDEO_STORYBOARD", "160x90:auto")
    settings = load_settings()
    assert settings.video_preview == PreviewSpec(480, 480, 3.0, 12, "mp4")
    assert settings.video_storyboard == StoryboardSpec(160, 90, None)


def test_preview_clips_and_storyboards_are_off_by_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VIDEO_PREVIEW", "VIDEO_STORYBOARD"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.video_preview, settings.video_storyboard) == (None, None)


def test_an_invalid_preview_stops_start_up_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEO_PREVIEW", "480x480")
    with pytest.raises(SettingsError, match="VIDEO_PREVIEW"):
        load_settings()


def test_placeholders_are_chosen_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACEHOLDERS", "thumbhash, colors")
    assert load_settings().placeholders == frozenset({"thumbhash", "colors"})


def test_an_unknown_placeholder_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACEHOLDERS", "blurhash,webp")
    with pytest.raises(SettingsError, match="PLACEHOLDERS: unknown placeholder webp"):
        load_settings()
