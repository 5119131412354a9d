"""The status events' settings: nothing changes for a user who sets nothing (except NOTIFY on
PostgreSQL), a webhook is never unsigned, and each target finds its endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.app.events import build_event_targets, event_recording
from media_worker.config import Settings, SettingsError, load_settings
from media_worker.events.aws_batch import AwsBatchTarget
from media_worker.events.outbox import EventRecording

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PG = "postgresql://app@db:5432/app"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable of the caller's shell and no .env leaks into these tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def test_nothing_configured_writes_no_outbox_rows() -> None:
    assert event_recording(load_settings()) == EventRecording(targets=(), channel=None)


def test_postgresql_notifies_on_media_status_by_default() -> None:
    settings = load_settings(database_url=PG)
    assert event_recording(settings) == EventRecording(targets=(), channel="media_status")


def test_an_empty_channel_turns_notify_off() -> None:
    assert event_recording(load_settings(database_url=PG, events_pg_channel="")).channel is None


def test_a_channel_that_is_no_identifier_is_refused() -> None:
    with pytest.raises(SettingsError, match="EVENTS_PG_CHANNEL"):
        load_settings(events_pg_channel="media-status")


def test_each_configured_destination_is_a_target() -> None:
    settings = load_settings(events_webhook_url="https://api.example/hooks",
                             events_webhook_secret=SECRET,
                             events_sqs_url="https://sqs.eu-west-1.amazonaws.com/1/ev.fifo",
                             events_sns_topic_arn="arn:aws:sns:eu-west-1:1:ev.fifo")
    assert event_recording(settings).targets == ("webhook", "sqs", "sns")
    targets = build_event_targets(settings)
    assert [t.name for t in targets] == ["webhook", "sqs", "sns"]
    for target in targets:
        target.close()


def test_the_aws_targets_are_signed_for_their_region_at_its_endpoint() -> None:
    settings = load_settings(events_sqs_url="https://sqs.eu-west-1.amazonaws.com/1/ev.fifo",
                             events_sns_topic_arn="arn:aws:sns:eu-west-3:1:ev.fifo",
                             aws_region="eu-west-1", aws_access_key_id="AKIDEXAMPLE",
                             aws_secret_access_key="wJalrXUtnFEMI")
    sqs, sns = build_event_targets(settings)
    assert isinstance(sqs, AwsBatchTarget)
    assert isinstance(sns, AwsBatchTarget)
    assert (sqs.poster.endpoint_url, sqs.poster.region, sqs.poster.service) == (
        "https://sqs.eu-west-1.amazonaws.com/", "eu-west-1", "sqs")
    assert (sns.poster.endpoint_url, sns.poster.region, sns.poster.service) == (
        "https://sns.eu-west-3.amazonaws.com/", "eu-west-3", "sns")
    sqs.close()
    sns.close()


def test_a_webhook_without_a_secret_is_refused() -> None:
    with pytest.raises(SettingsError, match="EVENTS_WEBHOOK_SECRET is required"):
        load_settings(events_webhook_url="https://api.example/hooks")


def test_a_secret_that_cannot_sign_is_refused_without_being_shown() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(events_webhook_url="https://api.example/hooks",
                      events_webhook_secret="whsec_not*base64")
    assert "EVENTS_WEBHOOK_SECRET" in str(caught.value)
    assert "not*base64" not in str(caught.value)


def test_a_webhook_url_must_be_http() -> None:
    with pytest.raises(SettingsError, match="EVENTS_WEBHOOK_URL"):
        load_settings(events_webhook_url="ftp://api.example/hooks",
                      events_webhook_secret=SECRET)


def test_the_events_queue_is_reached_at_its_own_host_off_aws() -> None:
    settings = load_settings(events_sqs_url="http://elasticmq:9324/000000000000/ev.fifo")
    assert settings.events_access("sqs").endpoint_url == "http://elasticmq:9324"


def test_the_events_queue_follows_sqs_endpoint_when_set() -> None:
    settings = load_settings(sqs_queue_url="http://localstack:4566/000000000000/jobs",
                             sqs_endpoint="http://localstack:4566",
                             events_sqs_url="http://localstack:4566/000000000000/ev.fifo")
    assert settings.events_access("sqs").endpoint_url == "http://localstack:4566"


def test_an_aws_events_queue_goes_to_aws_itself() -> None:
    settings = load_settings(events_sqs_url="https://sqs.eu-west-1.amazonaws.com/1/ev.fifo")
    assert settings.events_access("sqs").endpoint_url is None


def test_the_topic_takes_its_region_from_its_arn_and_the_local_sqs_endpoint() -> None:
    settings = load_settings(sqs_queue_url="http://localstack:4566/000000000000/jobs",
                             events_sns_topic_arn="arn:aws:sns:eu-west-3:000000000000:ev.fifo")
    access = settings.events_access("sns")
    assert (access.region, access.endpoint_url) == ("eu-west-3", "http://localstack:4566")


def test_botocores_sns_endpoint_variable_wins_for_the_topic() -> None:
    settings = load_settings(events_sns_topic_arn="arn:aws:sns:us-east-1:1:ev",
                             aws_endpoint_url_sns="http://sns.local:4575")
    assert settings.events_access("sns").endpoint_url == "http://sns.local:4575"
