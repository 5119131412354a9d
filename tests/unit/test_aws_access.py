"""Which credentials a client gets: explicit keys, else boto3's chain, else (off AWS only) the
development defaults with a warning. No request is made: botocore resolves locally."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.aws_access import ServiceAccess, is_aws_endpoint, open_session

CHAIN_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
)


@pytest.fixture(autouse=True)
def empty_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A machine where boto3's chain finds nothing (and never asks instance metadata)."""
    for name in CHAIN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path / "credentials"


def access(endpoint: str | None, key: str | None = None, secret: str | None = None,
           token: str | None = None) -> ServiceAccess:
    return ServiceAccess("storage", endpoint, "us-east-1", key, secret, token,
                         "MINIO_ACCESS_KEY/MINIO_SECRET_KEY", ("minioadmin", "minioadmin"))


def test_explicit_keys_are_used_as_given() -> None:
    opened = open_session(access("http://minio:9000", "key-id", "s3cr3t-value", "token"))
    frozen = opened.session.get_credentials().get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        "key-id", "s3cr3t-value", "token")
    assert opened.credential_source == "MINIO_ACCESS_KEY/MINIO_SECRET_KEY"
    assert opened.warning is None


def test_a_shared_credentials_file_is_found_by_the_chain(empty_chain: Path) -> None:
    empty_chain.write_text("[default]\naws_access_key_id = from-file\n"
                           "aws_secret_access_key = file-secret\n")
    opened = open_session(access("http://minio:9000"))
    assert opened.session.get_credentials().access_key == "from-file"
    assert "shared-credentials-file" in opened.credential_source
    assert opened.warning is None


def test_aws_profile_picks_a_named_profile(empty_chain: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    empty_chain.write_text("[default]\naws_access_key_id = a\naws_secret_access_key = b\n"
                           "[worker]\naws_access_key_id = profiled\naws_secret_access_key = c\n")
    monkeypatch.setenv("AWS_PROFILE", "worker")
    assert open_session(access(None)).session.get_credentials().access_key == "profiled"


def test_nothing_found_off_aws_falls_back_to_development_keys_with_a_warning() -> None:
    opened = open_session(access("http://minio:9000"))
    assert opened.session.get_credentials().access_key == "minioadmin"
    assert opened.warning is not None
    assert "MINIO_ACCESS_KEY/MINIO_SECRET_KEY" in opened.warning


def test_nothing_found_on_aws_never_uses_development_keys() -> None:
    opened = open_session(access("https://s3.eu-west-1.amazonaws.com"))
    assert opened.session.get_credentials() is None
    assert opened.warning is None
    assert "MINIO_ACCESS_KEY/MINIO_SECRET_KEY" in opened.credential_source


@pytest.mark.parametrize(("url", "expected"), [
    (None, True), ("https://sqs.us-east-1.amazonaws.com", True),
    ("https://s3.cn-north-1.amazonaws.com.cn", True), ("http://localstack:4566", False),
    ("http://127.0.0.1:8333", False), ("https://amazonaws.com.evil.example", False),
])
def test_aws_endpoints_are_told_by_their_host(url: str | None, expected: bool) -> None:
    assert is_aws_endpoint(url) is expected
