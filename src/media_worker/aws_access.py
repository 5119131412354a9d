"""How the worker reaches AWS and AWS-compatible servers: which endpoint, which credentials.

The rule is the AWS ecosystem's own. Keys given to the worker are used as they are. Otherwise
boto3's default chain decides, unchanged (environment, shared credentials and `AWS_PROFILE`,
web identity for EKS IRSA, container credentials for ECS and EKS Pod Identity, EC2 instance
roles), and credentials it finds that expire are refreshed by botocore. Only when that chain
finds nothing and the endpoint is not AWS itself does the worker fall back to the original
system's development keys (LocalStack's `test`, MinIO's `minioadmin`), and says so once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # settings import this module; boto3 loads only where a client is built
    import boto3

AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
# The settings that give each client explicit keys (named in errors), and the original
# system's development keys (LocalStack's, MinIO's) for a non-AWS endpoint with none found.
QUEUE_KEY_VARIABLES = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
STORAGE_KEY_VARIABLES = "MINIO_ACCESS_KEY/MINIO_SECRET_KEY"
QUEUE_DEVELOPMENT_KEYS = ("test", "test")
STORAGE_DEVELOPMENT_KEYS = ("minioadmin", "minioadmin")


def is_aws_endpoint(url: str | None) -> bool:
    """No endpoint (boto3 resolves AWS's own) or a host of AWS's domains."""
    if not url:
        return True
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(AWS_HOST_SUFFIXES)


@dataclass(frozen=True)
class ServiceAccess:
    """What one client (storage or queue) is told: where, in which region, with which keys.

    `key_variables` names the settings that supply explicit keys, for error messages;
    `development_keys` is the pair used against a non-AWS endpoint when nothing else is found.
    """

    service: str
    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    key_variables: str
    development_keys: tuple[str, str]

    @property
    def is_aws(self) -> bool:
        return is_aws_endpoint(self.endpoint_url)


@dataclass(frozen=True)
class OpenedSession:
    """A boto3 session, where its credentials came from (for messages), and the one warning
    to log at start-up, if any."""

    session: boto3.session.Session
    credential_source: str
    warning: str | None = None
    # The strings of static credentials, to scrub from error texts. Credentials from the
    # chain are not read here: reading them would freeze refreshable ones.
    secrets: tuple[str, ...] = ()


def open_session(access: ServiceAccess) -> OpenedSession:
    """A session of our own (boto3's default session is shared global state, and creating
    clients from it is not thread-safe) with the credentials the rule above picks."""
    import boto3

    if access.access_key_id and access.secret_access_key:
        session = boto3.session.Session(
            aws_access_key_id=access.access_key_id,
            aws_secret_access_key=access.secret_access_key,
            aws_session_token=access.session_token or None,
            region_name=access.region,
        )
        return OpenedSession(session, access.key_variables,
                             secrets=tuple(value for value in (
                                 access.secret_access_key, access.access_key_id,
                                 access.session_token) if value))
    session = boto3.session.Session(region_name=access.region)
    found = session.get_credentials()
    if found is not None:
        return OpenedSession(session, f"boto3's default credential chain ({found.method})")
    if access.is_aws:
        # Nothing to fall back to on AWS: requests fail with boto3's NoCredentialsError, which
        # the adapters report naming the variables to set.
        return OpenedSession(session, f"no credentials found (set {access.key_variables}, "
                                      "AWS_PROFILE or a role)")
    key, secret = access.development_keys
    warning = (f"{access.service}: no credentials in the settings or boto3's chain; using the "
               f"development default access key {key!r} for {access.endpoint_url} "
               f"(set {access.key_variables} for anything but a local test server)")
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                    region_name=access.region)
    return OpenedSession(session, f"development default keys ({key})", warning,
                         secrets=(secret,))
